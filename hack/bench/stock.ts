/**
 * `make bench-stock`: how many stock reservations per second the real HTTP endpoint takes for
 * one hot goods, set beside (a) the ceiling, the reservation Lua script driven straight at Redis
 * by redis-benchmark, and (b) what this project replaces, a MySQL transaction that locks the goods
 * row (SELECT ... FOR UPDATE) and decrements it; then (c) the HTTP phase again with goods-service
 * on a Redis Cluster of three primaries and several hot goods at once; and (d) the framework
 * ceiling, a bare Hono route on @hono/node-server that parses the same JSON body and answers a
 * fixed one, driven by the same load generator at the same concurrency. The HTTP phase (closed
 * loop) ends with an open-loop stretch: reservations at a fixed arrival rate, each timed from
 * its intended send time, so a queue shows as latency. Every reservation phase
 * offers more attempts than stock, so each also proves it sold nothing twice. The HTTP requests
 * come from undici pools in worker threads (load.ts); goods-service and the bare Hono process are
 * profiled over their phase, and the CPU seconds of every process involved are read from /proc.
 *
 * Everything runs on loopback against the local servers, bounded in count and time. It uses a
 * database (`timedeal_test_bench_*`) and a Redis key prefix of its own and removes both after.
 * Writes a report and an SVG chart under bench-results/ and ends with one JSON line.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  bool,
  createLogger,
  createRedis,
  createSequelize,
  INTERNAL_CREDENTIAL_HEADER,
  loadSettingsOrExit,
  mysqlSettings,
  positiveInt,
  type Redis,
  redisSettings,
} from '@timedeal/platform'
import {
  eventually,
  freePort,
  type ServiceProcess,
  spawnService,
  startTestIssuer,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { startTestRedisCluster, stopTestRedisCluster } from '@timedeal/platform/testing/redis-cluster'
import { createStockStore, reserveScript, type StockStore, stockKeys } from '@timedeal/stock'
import { QueryTypes, type Sequelize } from 'sequelize'
import { z } from 'zod'
import {
  childRunning,
  cpuMeter,
  infraPid,
  type ProfileFigures,
  profileMarkdown,
  profileServices,
  topOf,
} from './cpu-usage.ts'
import { goal, percentile, quickMode, round } from './figures.ts'
import { type LoadMode, type LoadResults, mergeResults, type RequestPlan, runLoad, shareOf } from './load.ts'
import { barChartSvg, markdownReport, type PhaseResult } from './report.ts'

const quick = quickMode()

const settings = loadSettingsOrExit(
  z.object({
    ...mysqlSettings('timedeal_goods'),
    ...redisSettings(),
    /** Reservation requests sent to the HTTP endpoint (after a warm-up of a tenth as many); also to the bare Hono route. */
    BENCH_HTTP_REQUESTS: positiveInt(quick ? 5_000 : 20_000),
    /** Concurrent HTTP clients, each with one request in flight. */
    BENCH_HTTP_CLIENTS: positiveInt(64),
    /** Worker threads of the load generator. */
    BENCH_LOAD_THREADS: positiveInt(1),
    /**
     * Rounds the HTTP phase and the bare Hono route take turns in, back to back, so a neighbour's
     * load on the shared machine falls on both alike.
     */
    BENCH_ROUNDS: positiveInt(4),
    /** CPU profiles of goods-service and the bare Hono process over their phase (1 ms sampling). */
    BENCH_PROFILE: bool(true),
    /** Hot goods reserved at once, round robin, in the phase on a Redis Cluster. */
    BENCH_CLUSTER_HOT_GOODS: positiveInt(4),
    /** Calls of the Lua script made by redis-benchmark. */
    BENCH_LUA_CALLS: positiveInt(quick ? 20_000 : 100_000),
    BENCH_LUA_CLIENTS: positiveInt(50),
    /** Row-locking MySQL transactions. */
    BENCH_MYSQL_TRANSACTIONS: positiveInt(quick ? 1_000 : 4_000),
    BENCH_MYSQL_CLIENTS: positiveInt(32),
    /** Each phase stops after this long, whatever it has left. */
    BENCH_PHASE_SECONDS: positiveInt(90),
    /**
     * The open-loop stretch of the HTTP phase: reservations arriving at this fixed rate whatever
     * the answers do, each timed from its intended send time, so a backlog shows as latency.
     */
    BENCH_OPEN_RATE: positiveInt(2_000),
    BENCH_OPEN_SECONDS: positiveInt(quick ? 5 : 15),
  }),
)

/** Every phase offers more attempts than it has stock: three of four can succeed. */
const STOCK_SHARE = 0.75
const SECRET = 'bench-internal-secret-value'
const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const logger = createLogger('bench-stock', 'warn')
const say = (line: string) => process.stdout.write(`[bench-stock] ${line}\n`)

interface Attempts {
  readonly outcomes: Map<string, number>
  readonly latenciesMs: number[]
  readonly seconds: number
}

/**
 * Runs `attempt` `total` times from `clients` concurrent loops (each waits for its answer before
 * the next), stopping early at the deadline. Each answer is an outcome code.
 */
async function drive(total: number, clients: number, attempt: (index: number) => Promise<string>): Promise<Attempts> {
  const outcomes = new Map<string, number>()
  const latenciesMs: number[] = []
  const deadline = Date.now() + settings.BENCH_PHASE_SECONDS * 1000
  let next = 0
  const started = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total && Date.now() < deadline) {
        const index = next++
        const sent = process.hrtime.bigint()
        let outcome: string
        try {
          outcome = await attempt(index)
        } catch (error) {
          outcome = `ERROR ${error instanceof Error ? error.message : String(error)}`
        }
        latenciesMs.push(Number(process.hrtime.bigint() - sent) / 1e6)
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
      }
    }),
  )
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  latenciesMs.sort((a, b) => a - b)
  return { outcomes, latenciesMs, seconds }
}

function phaseResult(label: string, stock: number, run: Attempts, oversold: number): PhaseResult {
  const attempts = run.latenciesMs.length
  const reserved = run.outcomes.get('RESERVED') ?? 0
  const soldOut = run.outcomes.get('SOLD_OUT') ?? 0
  return {
    label,
    attempts,
    reserved,
    soldOut,
    errors: attempts - reserved - soldOut,
    seconds: round(run.seconds, 3),
    attemptsPerSecond: round(attempts / run.seconds, 1),
    reservedPerSecond: round(reserved / run.seconds, 1),
    p50Ms: round(percentile(run.latenciesMs, 0.5), 3),
    p99Ms: round(percentile(run.latenciesMs, 0.99), 3),
    stock,
    oversold,
  }
}

function showErrors(run: Attempts): void {
  for (const [outcome, count] of run.outcomes) {
    if (outcome !== 'RESERVED' && outcome !== 'SOLD_OUT') say(`  unexpected answer ×${count}: ${outcome}`)
  }
}

/** The generator's records as a phase's outcomes: 201 is a reservation, a refusal counts by its problem code. */
function attemptsOf(results: LoadResults): Attempts {
  const outcomes = new Map<string, number>()
  results.status.forEach((status, index) => {
    const kept = results.kept[index] ?? ''
    const outcome = status === 201 ? 'RESERVED' : kept !== '' ? kept : `HTTP ${status}`
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
  })
  return { outcomes, latenciesMs: [...results.latencyMs].sort((a, b) => a - b), seconds: results.seconds }
}

/**
 * Reservations of `goodsIds` (round robin), each with a fresh reservation id: closed-loop from the
 * bench's clients unless an open-loop `mode` is given.
 */
function reservationLoad(
  origin: string,
  goodsIds: readonly string[],
  total: number,
  mode: LoadMode = {
    kind: 'closed',
    clients: settings.BENCH_HTTP_CLIENTS,
    total,
    seconds: settings.BENCH_PHASE_SECONDS,
  },
) {
  const plan: RequestPlan = {
    origin,
    method: 'POST',
    path: '/internal/reservations',
    headers: { [INTERNAL_CREDENTIAL_HEADER]: SECRET },
    body: '{"reservationId":"{{uuid}}","goodsId":"{{goods}}","userId":"bench-user-{{index}}","quantity":1}',
    rotate: { goods: goodsIds },
  }
  return runLoad({
    plan,
    mode,
    threads: settings.BENCH_LOAD_THREADS,
    connections: settings.BENCH_HTTP_CLIENTS,
  })
}

/** What a profiled HTTP phase adds to its figures: CPU seconds per process and the top self-time functions. */
interface PhaseCost {
  readonly cpuSeconds: Record<string, number>
  readonly profile: ProfileFigures | undefined
}

/** Measures `measured` with the CPU of `pids` (and the generator's own) and, if asked, a profile of `inspector`. */
async function measuredStretch(
  label: string,
  pids: Record<string, number | undefined>,
  inspector: Record<string, number>,
  measured: () => Promise<LoadResults>,
): Promise<{ results: LoadResults } & PhaseCost> {
  const stopProfile = Object.keys(inspector).length > 0 ? await profileServices(inspector, label) : undefined
  const meter = cpuMeter(pids)
  const results = await measured()
  const cpuSeconds = meter({ loadGenerator: results.cpuMicros / 1e6 })
  const profile = await stopProfile?.()
  return { results, cpuSeconds, profile }
}

/** Settings that open a process's inspector on a loopback port when profiling is on. */
async function inspectorEnv(): Promise<{ env: Record<string, string>; port: number | undefined }> {
  if (!settings.BENCH_PROFILE) return { env: {}, port: undefined }
  const port = await freePort()
  return { env: { NODE_OPTIONS: `--inspect=127.0.0.1:${port}` }, port }
}

async function scalar<T>(sequelize: Sequelize, sql: string, replacements: unknown[] = []): Promise<T | undefined> {
  const [row] = await sequelize.query<Record<string, T>>(sql, { replacements, type: QueryTypes.SELECT })
  return row ? Object.values(row)[0] : undefined
}

/** Where the HTTP phase's goods-service keeps its stock, and how many hot goods it serves at once. */
interface HttpTarget {
  readonly label: string
  /** Settings pointing goods-service at its Redis (`REDIS_CLUSTER_NODES` for a cluster). */
  readonly env: Record<string, string>
  readonly hotGoods: number
  /** Profile goods-service and meter its CPU over the measured stretch. */
  readonly profiled: boolean
}

const goodsEntry = join(repoRoot, 'services/goods/src/main.ts')

/** (1) The real endpoint: goods-service as its own process, reservations over keep-alive HTTP. */
async function httpPhase(
  database: string,
  prefix: string,
  mysql: Sequelize,
  redis: Redis,
  target: HttpTarget = {
    label: 'HTTP endpoint (goods-service)',
    env: { REDIS_CLUSTER_NODES: '' },
    hotGoods: 1,
    profiled: true,
  },
  beside?: BareHono,
): Promise<{ result: PhaseResult; rounds: LoadResults[]; open: OpenLoopResult | undefined } & PhaseCost> {
  const issuer = await startTestIssuer()
  const inspector = target.profiled ? await inspectorEnv() : { env: {}, port: undefined }
  const service = await spawnService(goodsEntry, {
    ...target.env,
    ...inspector.env,
    MYSQL_DATABASE: database,
    STOCK_KEY_PREFIX: prefix,
    JWT_JWKS_URL: issuer.jwksUrl,
    INTERNAL_API_SECRET: SECRET,
    ORDER_EVENTS_ENABLED: 'false',
    LOG_LEVEL: 'warn',
  })
  try {
    await waitUntilReady(service, 60_000)
    const seller = await issuer.sign({ sub: 'bench-seller', role: 'SELLER' })
    const [seconds] = await redis.time()
    const createGoods = async (stock: number) => {
      const response = await fetch(`${service.url}/api/goods`, {
        method: 'POST',
        headers: { authorization: `Bearer ${seller}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'Bench hot item',
          price: 10_000,
          initialStock: stock,
          saleStartsAt: new Date(Number(seconds) * 1000 - 60_000).toISOString(),
          saleEndsAt: new Date(Number(seconds) * 1000 + 3_600_000).toISOString(),
        }),
      })
      if (response.status !== 201) throw new Error(`creating the bench goods failed: ${await response.text()}`)
      return ((await response.json()) as { id: string }).id
    }
    const warmUp = Math.ceil(settings.BENCH_HTTP_REQUESTS / 10)
    say(`${target.label}: warming up with ${warmUp} reservations`)
    await reservationLoad(service.internalUrl, [await createGoods(warmUp)], warmUp)

    const total = settings.BENCH_HTTP_REQUESTS
    const { hotGoods } = target
    const stockEach = Math.floor((total * STOCK_SHARE) / hotGoods)
    const stock = stockEach * hotGoods
    const goodsIds: string[] = []
    for (let index = 0; index < hotGoods; index += 1) goodsIds.push(await createGoods(stockEach))
    say(
      `${target.label}: ${total} reservations of ${hotGoods} hot goods (stock ${stockEach} each) from ${settings.BENCH_HTTP_CLIENTS} clients`,
    )
    const pids = target.profiled
      ? { goodsService: childRunning(goodsEntry), redis: infraPid('redis'), mariadb: infraPid('mariadb') }
      : {}
    const inspected: Record<string, number> = inspector.port === undefined ? {} : { goods: inspector.port }
    // With the bare Hono route beside it, the two take turns in rounds of an equal share each.
    const rounds = beside ? settings.BENCH_ROUNDS : 1
    const parts: LoadResults[] = []
    await beside?.startMeasuring()
    const stretch = await measuredStretch('stock-http', pids, inspected, async () => {
      for (let round = 0; round < rounds; round += 1) {
        parts.push(await reservationLoad(service.internalUrl, goodsIds, shareOf(total, rounds, round)))
        await beside?.round(shareOf(total, rounds, round))
      }
      await beside?.stopMeasuring()
      return mergeResults(parts, 'consecutive')
    })
    const run = attemptsOf(stretch.results)
    showErrors(run)

    const reserved = run.outcomes.get('RESERVED') ?? 0
    let available = 0
    let oversold = Math.max(0, reserved - stock)
    for (const goodsId of goodsIds) {
      const left = Number(await redis.get(stockKeys(prefix).available(goodsId)))
      available += left
      oversold += Math.max(0, -left)
    }
    oversold += Math.abs(stock - reserved - available)
    say(`${target.label}: waiting for the write-behind to bring MySQL level with Redis`)
    const writeBehind = await writeBehindLevel(mysql, redis, prefix, goodsIds, reserved)
    if (writeBehind !== 'level') {
      say(`${target.label}: ${writeBehind}`)
      process.exitCode = 1
    }
    // The main phase (the one beside the bare route) goes on with a fixed arrival rate.
    const open = beside ? await openLoopStretch(service.internalUrl, createGoods, mysql, redis, prefix) : undefined
    return {
      result: { ...phaseResult(target.label, stock, run, oversold), writeBehind },
      rounds: parts,
      open,
      cpuSeconds: stretch.cpuSeconds,
      profile: stretch.profile,
    }
  } finally {
    await service.stop('SIGTERM')
    await issuer.close()
  }
}

/** The open-loop stretch's figures: latencies count from each request's intended send time. */
interface OpenLoopResult {
  readonly offeredPerSecond: number
  readonly seconds: number
  readonly offered: number
  readonly answeredPerSecond: number
  readonly reserved: number
  readonly soldOut: number
  readonly errors: number
  readonly stock: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly oversold: number
  readonly writeBehind: string
}

/**
 * Reservations arriving at BENCH_OPEN_RATE for BENCH_OPEN_SECONDS on goods of their own (stock
 * for three of four), whatever the answers do: what a sale's opening looks like to goods-service.
 * A rate the service keeps up with shows a flat latency; one it does not shows a growing queue.
 */
async function openLoopStretch(
  origin: string,
  createGoods: (stock: number) => Promise<string>,
  mysql: Sequelize,
  redis: Redis,
  prefix: string,
): Promise<OpenLoopResult> {
  const rate = settings.BENCH_OPEN_RATE
  const seconds = settings.BENCH_OPEN_SECONDS
  const offered = rate * seconds
  const stock = Math.floor(offered * STOCK_SHARE)
  const goodsId = await createGoods(stock)
  say(`open loop: ${rate} reservations/s offered for ${seconds} s (stock ${stock})`)
  const results = await reservationLoad(origin, [goodsId], offered, { kind: 'open', rate, seconds })
  const run = attemptsOf(results)
  showErrors(run)
  const reserved = run.outcomes.get('RESERVED') ?? 0
  const soldOut = run.outcomes.get('SOLD_OUT') ?? 0
  const left = Number(await redis.get(stockKeys(prefix).available(goodsId)))
  const oversold = Math.max(0, reserved - stock) + Math.max(0, -left) + Math.abs(stock - reserved - left)
  const writeBehind = await writeBehindLevel(mysql, redis, prefix, [goodsId], reserved)
  if (writeBehind !== 'level') {
    say(`open loop: ${writeBehind}`)
    process.exitCode = 1
  }
  const result: OpenLoopResult = {
    offeredPerSecond: rate,
    seconds,
    offered: results.status.length,
    answeredPerSecond: round(results.status.length / results.seconds, 1),
    reserved,
    soldOut,
    errors: results.status.length - reserved - soldOut,
    stock,
    p50Ms: round(percentile(run.latenciesMs, 0.5), 3),
    p99Ms: round(percentile(run.latenciesMs, 0.99), 3),
    maxMs: round(run.latenciesMs.at(-1) ?? 0, 3),
    oversold,
    writeBehind,
  }
  say(`open loop: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms, oversold ${oversold}`)
  return result
}

/** 'level' once MySQL holds every reservation's ledger row and the same on-hand count as Redis; else what differs. */
async function writeBehindLevel(
  mysql: Sequelize,
  redis: Redis,
  prefix: string,
  goodsIds: readonly string[],
  reserved: number,
): Promise<string> {
  const ledgerRows = () =>
    scalar<number>(mysql, 'SELECT COUNT(*) AS n FROM stock_ledger WHERE goods_id IN (?)', [goodsIds]).then(Number)
  try {
    await eventually(async () => ((await ledgerRows()) === reserved ? true : undefined), 60_000, 'the ledger in MySQL')
  } catch {
    return `the write-behind did not catch up in 60 s: ${await ledgerRows()} ledger rows in MySQL for ${reserved} reservations`
  }
  for (const goodsId of goodsIds) {
    const onHand = Number(await scalar(mysql, 'SELECT stock_on_hand FROM goods WHERE id = ?', [goodsId]))
    const left = Number(await redis.get(stockKeys(prefix).available(goodsId)))
    if (onHand !== left) return `goods ${goodsId}: MySQL on-hand ${onHand} differs from Redis ${left}`
  }
  return 'level'
}

/** A phase that could not run: no attempts, no figures. */
const emptyPhase = (label: string): PhaseResult => ({
  label,
  attempts: 0,
  reserved: 0,
  soldOut: 0,
  errors: 0,
  seconds: 0,
  attemptsPerSecond: 0,
  reservedPerSecond: 0,
  p50Ms: 0,
  p99Ms: 0,
  stock: 0,
  oversold: 0,
})

/** (a) The ceiling: the same Lua script by EVALSHA from redis-benchmark, no HTTP, no Node. */
async function luaCeilingPhase(redis: Redis, store: StockStore): Promise<PhaseResult> {
  const total = settings.BENCH_LUA_CALLS
  const stock = Math.floor(total * STOCK_SHARE)
  const goodsId = `bench-${randomUUID()}`
  const [seconds] = await redis.time()
  await store.loadIfAbsent({
    goodsId,
    onHand: stock,
    initialStock: stock,
    startsAt: Number(seconds) * 1000 - 60_000,
    endsAt: Number(seconds) * 1000 + 3_600_000,
    purchaseLimit: null,
    version: 1,
  })
  const sha = String(await redis.script('LOAD', reserveScript.lua))
  const keys = store.keys
  // The goods' shard holds its ledger, expiry index and reservation lookup.
  const shard = keys.shardOf(goodsId)
  // redis-benchmark fills each __rand_int__ with its own random number, so the record, lookup and
  // argument ids differ from one another: every call still does a reservation's reads and writes.
  const command = [
    'EVALSHA',
    sha,
    '7',
    keys.available(goodsId),
    keys.sale(goodsId),
    keys.holders(goodsId),
    keys.reservation(goodsId, '__rand_int__'),
    shard.reservationGoods('__rand_int__'),
    shard.expiries,
    shard.ledger,
    goodsId,
    '__rand_int__',
    'bench-user-__rand_int__',
    '1',
    '600000',
  ]
  const url = new URL(settings.REDIS_URL)
  const args = [
    '-h',
    url.hostname,
    '-p',
    url.port || '6379',
    '-n',
    String(total),
    '-c',
    String(settings.BENCH_LUA_CLIENTS),
  ]
  if (url.password) args.push('-a', decodeURIComponent(url.password))
  args.push('-r', '1000000000', '--csv', ...command)
  say(
    `Lua ceiling: redis-benchmark, ${total} EVALSHA calls (stock ${stock}) from ${settings.BENCH_LUA_CLIENTS} clients`,
  )
  const csv = await new Promise<string>((resolve, reject) => {
    const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString()
    })
    const timer = setTimeout(() => child.kill('SIGTERM'), settings.BENCH_PHASE_SECONDS * 1000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`redis-benchmark exited with ${code}: ${err.trim() || out.trim()}`))
    })
  })
  const lines = csv.trim().split('\n')
  const headerLine = lines.find((line) => line.startsWith('"test"'))
  const valueLine = lines.at(-1)
  if (!headerLine || !valueLine || valueLine === headerLine)
    throw new Error(`unexpected redis-benchmark output: ${csv}`)
  const cells = (line: string) => line.split('","').map((cell) => cell.replaceAll('"', ''))
  const row = Object.fromEntries(cells(headerLine).map((name, index) => [name, cells(valueLine)[index] ?? '']))
  const rps = Number(row.rps)

  const reserved = await redis.xlen(shard.ledger)
  const available = Number(await redis.get(keys.available(goodsId)))
  const oversold = Math.max(0, reserved - stock) + Math.max(0, -available) + Math.abs(stock - reserved - available)
  const runSeconds = total / rps
  return {
    label: 'Lua script direct (ceiling)',
    attempts: total,
    reserved,
    soldOut: total - reserved,
    errors: 0,
    seconds: round(runSeconds, 3),
    attemptsPerSecond: round(rps, 1),
    reservedPerSecond: round(reserved / runSeconds, 1),
    p50Ms: Number(row.p50_latency_ms),
    p99Ms: Number(row.p99_latency_ms),
    stock,
    oversold,
  }
}

/** (b) The approach replaced: lock the goods row, check, decrement, record, commit. */
async function mysqlRowLockPhase(database: string): Promise<PhaseResult> {
  const clients = settings.BENCH_MYSQL_CLIENTS
  const mysql = createSequelize({
    host: settings.MYSQL_HOST,
    port: settings.MYSQL_PORT,
    user: settings.MYSQL_USER,
    password: settings.MYSQL_PASSWORD,
    database,
    poolMax: clients,
    logger,
  })
  try {
    await mysql.query('CREATE TABLE bench_goods (id VARCHAR(64) PRIMARY KEY, stock INT NOT NULL) ENGINE=InnoDB')
    await mysql.query(
      `CREATE TABLE bench_reservations (id VARCHAR(64) PRIMARY KEY, goods_id VARCHAR(64) NOT NULL,
         user_id VARCHAR(64) NOT NULL, quantity INT NOT NULL, created_at DATETIME(3) NOT NULL) ENGINE=InnoDB`,
    )
    const total = settings.BENCH_MYSQL_TRANSACTIONS
    const stock = Math.floor(total * STOCK_SHARE)
    const goodsId = 'bench-hot-item'
    await mysql.query('INSERT INTO bench_goods (id, stock) VALUES (?, ?)', { replacements: [goodsId, stock] })
    say(`MySQL row lock: ${total} transactions (stock ${stock}) from ${clients} clients`)
    const run = await drive(total, clients, (index) =>
      mysql.transaction(async (transaction) => {
        const [row] = await mysql.query<{ stock: number }>('SELECT stock FROM bench_goods WHERE id = ? FOR UPDATE', {
          replacements: [goodsId],
          type: QueryTypes.SELECT,
          transaction,
        })
        if (!row || row.stock < 1) return 'SOLD_OUT'
        await mysql.query('UPDATE bench_goods SET stock = stock - 1 WHERE id = ?', {
          replacements: [goodsId],
          transaction,
        })
        await mysql.query(
          'INSERT INTO bench_reservations (id, goods_id, user_id, quantity, created_at) VALUES (?, ?, ?, 1, NOW(3))',
          { replacements: [randomUUID(), goodsId, `bench-user-${index}`], transaction },
        )
        return 'RESERVED'
      }),
    )
    showErrors(run)
    const left = Number(await scalar(mysql, 'SELECT stock FROM bench_goods WHERE id = ?', [goodsId]))
    const rows = Number(await scalar(mysql, 'SELECT COUNT(*) AS n FROM bench_reservations'))
    const oversold = Math.max(0, rows - stock) + Math.max(0, -left) + Math.abs(stock - rows - left)
    return phaseResult('MySQL SELECT … FOR UPDATE', stock, run, oversold)
  } finally {
    await mysql.close()
  }
}

async function dropKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000)
    // One key per command: on a cluster node the keys of one scan page lie in many slots.
    if (keys.length > 0) await redis.pipeline(keys.map((key) => ['unlink', key])).exec()
    cursor = next
  } while (cursor !== '0')
}

/**
 * (c) The HTTP phase on a Redis Cluster of three primaries, several hot goods at once: the nodes
 * of REDIS_CLUSTER_NODES, or the test cluster (started here if it is not running, and stopped
 * after). A database of its own: its ledger stream's entry ids are not those of the single Redis.
 */
async function clusterPhase(
  admin: Sequelize,
  connect: (name: string) => Sequelize,
  database: string,
  prefix: string,
): Promise<PhaseResult> {
  const given = settings.REDIS_CLUSTER_NODES
  const testCluster = given.length > 0 ? undefined : await startTestRedisCluster()
  const nodes = given.length > 0 ? given : (testCluster?.nodes ?? [])
  const cluster = createRedis({ url: settings.REDIS_URL, clusterNodes: nodes, logger, connectionName: 'bench-stock' })
  await admin.query(`CREATE DATABASE \`${database}\``)
  const mysql = connect(database)
  try {
    const phase = await httpPhase(database, prefix, mysql, cluster, {
      label: 'HTTP on a Redis Cluster',
      env: { REDIS_CLUSTER_NODES: nodes.join(',') },
      hotGoods: settings.BENCH_CLUSTER_HOT_GOODS,
      profiled: false,
    })
    return phase.result
  } finally {
    for (const primary of (cluster as unknown as { nodes(role: 'master'): Redis[] }).nodes('master')) {
      await dropKeys(primary, prefix)
    }
    cluster.disconnect()
    await mysql.close()
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``)
    if (testCluster?.started) await stopTestRedisCluster()
  }
}

const bareEntry = join(repoRoot, 'hack/bench/bare-hono.ts')

/** The bare Hono process, started and warmed up, measured in rounds between goods-service's. */
interface BareHono {
  startMeasuring(): Promise<void>
  round(total: number): Promise<void>
  /** Ends its CPU meter and profile at the last round, before any wait that follows. */
  stopMeasuring(): Promise<void>
  finish(): { result: PhaseResult; rounds: LoadResults[] } & PhaseCost
  stop(): Promise<void>
}

/**
 * (d) The framework ceiling: the same requests, from the same generator at the same concurrency,
 * to a bare Hono route that parses the JSON body and answers a fixed JSON body.
 */
async function startBareHono(): Promise<BareHono> {
  const inspector = await inspectorEnv()
  const server: ServiceProcess = await spawnService(bareEntry, inspector.env)
  try {
    await waitUntilReady(server, 30_000)
    const warmUp = Math.ceil(settings.BENCH_HTTP_REQUESTS / 10)
    say(`bare Hono: warming up with ${warmUp} requests`)
    await reservationLoad(server.url, ['bench-goods'], warmUp)
  } catch (error) {
    await server.stop('SIGTERM')
    throw error
  }
  const parts: LoadResults[] = []
  let meter: ReturnType<typeof cpuMeter> | undefined
  let stopProfile: (() => Promise<ProfileFigures>) | undefined
  let cost: PhaseCost = { cpuSeconds: {}, profile: undefined }
  return {
    async startMeasuring() {
      if (inspector.port !== undefined)
        stopProfile = await profileServices({ bareHono: inspector.port }, 'stock-bare-hono')
      meter = cpuMeter({ bareHono: childRunning(bareEntry) })
    },
    async round(total) {
      parts.push(await reservationLoad(server.url, ['bench-goods'], total))
    },
    async stopMeasuring() {
      const cpuMicros = parts.reduce((sum, part) => sum + part.cpuMicros, 0)
      cost = { cpuSeconds: meter?.({ loadGenerator: cpuMicros / 1e6 }) ?? {}, profile: await stopProfile?.() }
    },
    finish() {
      const run = attemptsOf(mergeResults(parts, 'consecutive'))
      showErrors(run)
      return { result: phaseResult('bare Hono route (framework ceiling)', 0, run, 0), rounds: parts, ...cost }
    },
    stop: async () => {
      await server.stop('SIGTERM')
    },
  }
}

async function main(): Promise<void> {
  const stamp = new Date()
  const tag = `${stamp.getTime().toString(36)}_${randomUUID().slice(0, 8)}`
  const database = `timedeal_test_bench_${tag}`
  const prefix = `bench_${tag}`
  const connect = (name: string, poolMax = 4) =>
    createSequelize({
      host: settings.MYSQL_HOST,
      port: settings.MYSQL_PORT,
      user: settings.MYSQL_USER,
      password: settings.MYSQL_PASSWORD,
      database: name,
      poolMax,
      logger,
    })
  const admin = connect(settings.MYSQL_DATABASE, 1)
  const redis = createRedis({ url: settings.REDIS_URL, logger, connectionName: 'bench-stock' })
  await admin.query(`CREATE DATABASE \`${database}\``)
  const mysql = connect(database)
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?'
    const mariadbVersion = String(await scalar(admin, 'SELECT VERSION() AS v'))

    const bareHono = await startBareHono()
    let httpRun: Awaited<ReturnType<typeof httpPhase>>
    let bareRun: ReturnType<BareHono['finish']>
    try {
      httpRun = await httpPhase(database, prefix, mysql, redis, undefined, bareHono)
      bareRun = bareHono.finish()
    } finally {
      await bareHono.stop()
    }
    const http = httpRun.result
    const bare = bareRun.result
    say(`HTTP: ${Math.round(http.attemptsPerSecond)} attempts/s, p50 ${http.p50Ms} ms, p99 ${http.p99Ms} ms`)
    say(`bare Hono: ${Math.round(bare.attemptsPerSecond)} requests/s, p50 ${bare.p50Ms} ms, p99 ${bare.p99Ms} ms`)
    const ceilingStore = createStockStore(redis, { prefix: `${prefix}_lua`, holdMs: 600_000, retentionMs: 600_000 })
    let ceiling: PhaseResult
    try {
      ceiling = await luaCeilingPhase(redis, ceilingStore)
    } finally {
      await dropKeys(redis, `${prefix}_lua`)
    }
    say(
      `Lua ceiling: ${Math.round(ceiling.attemptsPerSecond)} calls/s, p50 ${ceiling.p50Ms} ms, p99 ${ceiling.p99Ms} ms`,
    )
    const rowLock = await mysqlRowLockPhase(database)
    say(
      `MySQL row lock: ${Math.round(rowLock.attemptsPerSecond)} tx/s, p50 ${rowLock.p50Ms} ms, p99 ${rowLock.p99Ms} ms`,
    )
    // A cluster that cannot start (or a layout that cannot run on one) costs this phase, not the report.
    const onCluster = await clusterPhase(admin, connect, `${database}_cluster`, prefix).catch(
      (error: unknown): PhaseResult => {
        say(`HTTP on a Redis Cluster failed: ${error instanceof Error ? error.message : String(error)}`)
        process.exitCode = 1
        return { ...emptyPhase('HTTP on a Redis Cluster'), writeBehind: `failed: ${String(error)}` }
      },
    )
    say(
      `HTTP on a Redis Cluster: ${Math.round(onCluster.attemptsPerSecond)} attempts/s, p50 ${onCluster.p50Ms} ms, p99 ${onCluster.p99Ms} ms`,
    )

    // Each round's pair back to back: how far the neighbours' load moved the ratio.
    const httpVsBareHonoByRound = httpRun.rounds.map((part, index) => {
      const bareRound = bareRun.rounds[index]
      return bareRound ? round(part.status.length / part.seconds / (bareRound.status.length / bareRound.seconds), 3) : 0
    })
    const ratios = {
      httpVsBareHono: round(http.attemptsPerSecond / bare.attemptsPerSecond, 3),
      httpVsLuaCeiling: round(http.attemptsPerSecond / ceiling.attemptsPerSecond, 3),
      httpVsMysqlRowLock: round(http.attemptsPerSecond / rowLock.attemptsPerSecond, 3),
      luaCeilingVsMysqlRowLock: round(ceiling.attemptsPerSecond / rowLock.attemptsPerSecond, 3),
      httpClusterVsHttp: round(onCluster.attemptsPerSecond / http.attemptsPerSecond, 3),
    }
    say(
      `ratios: HTTP / bare Hono ${ratios.httpVsBareHono}, HTTP / ceiling ${ratios.httpVsLuaCeiling}, HTTP / MySQL row lock ${ratios.httpVsMysqlRowLock}, ceiling / MySQL row lock ${ratios.luaCeilingVsMysqlRowLock}`,
    )

    const environment = {
      cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
      node: process.version,
      redis: redisVersion,
      mariadb: mariadbVersion,
      'HTTP clients': String(settings.BENCH_HTTP_CLIENTS),
      'load generator': `undici keep-alive pools in ${settings.BENCH_LOAD_THREADS} worker thread(s), closed-loop, then open-loop at ${settings.BENCH_OPEN_RATE}/s`,
      mode: quick ? 'quick (BENCH_QUICK)' : 'full',
      'redis-benchmark clients': String(settings.BENCH_LUA_CLIENTS),
      'MySQL clients': String(settings.BENCH_MYSQL_CLIENTS),
    }
    const folder = join(repoRoot, 'bench-results')
    await mkdir(folder, { recursive: true })
    const base = `stock-${stamp.toISOString().replaceAll(':', '').replace(/\..*/, '')}`
    const phases = [http, bare, ceiling, rowLock, onCluster]
    const cpuSeconds = { http: httpRun.cpuSeconds, bareHono: bareRun.cpuSeconds }
    const goals = { httpVsBareHono: goal(ratios.httpVsBareHono, 0.7, 'atLeast') }
    const open = httpRun.open
    const profileSections = [
      ...(httpRun.profile
        ? profileMarkdown('Where goods-service spent its CPU in the HTTP phase', httpRun.profile, httpRun.cpuSeconds)
        : []),
      ...(bareRun.profile
        ? profileMarkdown('Where the bare Hono process spent its CPU', bareRun.profile, bareRun.cpuSeconds)
        : []),
    ]
    await writeFile(join(folder, `${base}.svg`), barChartSvg('Stock reservations of one hot goods', phases))
    await writeFile(
      join(folder, `${base}.md`),
      markdownReport({
        title: 'Stock reservation benchmark',
        when: stamp,
        environment,
        phases,
        ratios,
        chartFile: `${base}.svg`,
        notes: [
          'Every phase offers more attempts than stock (stock = 75% of attempts); "oversold" counts units handed out beyond it, and must be 0.',
          'HTTP: goods-service as its own process, POST /internal/reservations over keep-alive HTTP; after the run the write-behind drains and MySQL must equal Redis.',
          'Bare Hono: a Hono app on @hono/node-server alone in its process (hack/bench/bare-hono.ts) whose POST route parses the same small JSON body and answers a fixed JSON body with 201: what HTTP on Node can do here, the bar for the reservation route (httpVsBareHono ≥ 0.7). Same generator, same requests, same concurrency. Its "reserved" column counts 201 answers; it has no stock.',
          `The HTTP phase and the bare Hono route take turns in ${settings.BENCH_ROUNDS} rounds (BENCH_ROUNDS) of an equal share of the requests, back to back, so load from neighbours on the shared machine falls on both alike; the ratio of each round's pair: ${httpVsBareHonoByRound.join(', ')}. The HTTP phase's wall time and CPU figures span the bare rounds too (goods-service idles in them).`,
          `Load generator: undici keep-alive pools in worker threads of the bench process (load.ts), not redis-benchmark or wrk: every request needs a fresh reservation id, which a template fills in per request; its CPU is counted from the threads' own clocks. Goal met: ${goals.httpVsBareHono.met}.`,
          ...(open
            ? [
                `Open loop (after the rounds, same goods-service): ${open.offeredPerSecond} reservations/s offered for ${open.seconds} s (BENCH_OPEN_RATE, BENCH_OPEN_SECONDS), timed from each one's intended send time: p50 ${open.p50Ms} ms, p99 ${open.p99Ms} ms, max ${open.maxMs} ms; ${open.reserved} reserved of stock ${open.stock}, ${open.soldOut} sold out, ${open.errors} other answers; oversold ${open.oversold}; write-behind ${open.writeBehind}.`,
              ]
            : []),
          'Ceiling: redis-benchmark calling the reservation script by EVALSHA, no HTTP and no Node in the path.',
          'MySQL: one transaction per attempt that locks the goods row, decrements it and inserts a reservation row; commits are durable (fsync per commit).',
          `Redis Cluster: the HTTP phase again with goods-service on a three-primary Redis Cluster (REDIS_CLUSTER_NODES) and ${settings.BENCH_CLUSTER_HOT_GOODS} hot goods reserved at once, round robin; a goods' keys share the slot of its shard (STOCK_SHARDS of them per namespace), so the hot goods spread over the primaries as their shards fall.`,
          'All processes (load generators, service, Redis, MariaDB) share the same machine, so the numbers are relative, not absolute.',
          'CPU seconds per process come from /proc/<pid>/stat over the measured stretch; MariaDB, Kafka and Redis are the shared local servers, so theirs include anything else that used them meanwhile; machineBusyCores is the whole machine (/proc/stat).',
          "Profiles: V8's sampling profiler (1 ms) attached over the inspector for the measured stretch of the HTTP and bare Hono phases (BENCH_PROFILE=false turns it off); CPU seconds come from /proc/<pid>/stat over the same stretch.",
        ],
      }) + profileSections.join('\n'),
    )
    say(`report: bench-results/${base}.md (chart ${base}.svg)`)
    const figures = (phase: PhaseResult) => ({
      attempts: phase.attempts,
      reserved: phase.reserved,
      soldOut: phase.soldOut,
      errors: phase.errors,
      stock: phase.stock,
      attemptsPerSecond: phase.attemptsPerSecond,
      reservedPerSecond: phase.reservedPerSecond,
      p50Ms: phase.p50Ms,
      p99Ms: phase.p99Ms,
      oversold: phase.oversold,
      ...(phase.writeBehind === undefined ? {} : { writeBehind: phase.writeBehind }),
    })
    process.stdout.write(
      `${JSON.stringify({
        bench: 'stock',
        http: figures(http),
        ...(open ? { httpOpenLoop: open } : {}),
        luaCeiling: figures(ceiling),
        mysqlRowLock: figures(rowLock),
        httpCluster: { ...figures(onCluster), hotGoods: settings.BENCH_CLUSTER_HOT_GOODS },
        bareHono: figures(bare),
        ratios,
        httpVsBareHonoByRound,
        goals,
        cpuSeconds,
        profiles: {
          ...(httpRun.profile ? topOf(httpRun.profile, 5) : {}),
          ...(bareRun.profile ? topOf(bareRun.profile, 5) : {}),
        },
        quick,
      })}\n`,
    )
    if (phases.some((phase) => phase.oversold !== 0) || (open?.oversold ?? 0) !== 0) {
      process.stderr.write('[bench-stock] OVERSOLD: a phase handed out more units than its stock\n')
      process.exitCode = 1
    }
  } finally {
    await dropKeys(redis, prefix)
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await mysql.close()
    await admin.close()
    redis.disconnect()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench-stock] ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
