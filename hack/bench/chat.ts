/**
 * `make bench-chat`: how many chat deliveries per second chat-service keeps up with, and at what
 * SEND → MESSAGE latency, with one and with two instances, set beside RabbitMQ's Web-STOMP in the
 * same run and the same scenario. The client speaks raw STOMP frames over `ws` so it stays cheap.
 *
 * N connections are spread over rooms; every room has a buyer and a seller, each with
 * `BENCH_CHAT_SESSIONS_PER_MEMBER` sessions, all subscribed, so one SEND is delivered to every
 * session of the room (the sender's own included). Load is offered in steps of a fixed send rate,
 * doubled until p99 passes `BENCH_CHAT_P99_LIMIT_MS` or deliveries fall behind, then tried once at
 * three quarters of that rate; the figure is the highest delivered rate of a step that kept up. chat-service gets databases, Redis keys and a
 * consumer group of its own (the Makefile gives a fresh Kafka topic prefix); RabbitMQ runs as a
 * plain process with everything under the state folder. Writes a report and an SVG chart under
 * bench-results/ and ends with one JSON line.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { allTopics, TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import {
  createLogger,
  createMongo,
  eventBusFromSettings,
  kafkaSettings,
  loadSettingsOrExit,
  positiveInt,
} from '@timedeal/platform'
import {
  createTestDatabase,
  type ServiceProcess,
  spawnService,
  startGroupsAtEnd,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  testLogger,
  testSettings,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { createFrameDecoder, encodeFrame, type StompHeader } from '@timedeal/stomp'
import { WebSocket } from 'ws'
import { z } from 'zod'
import { escapeXml, percentile, round, saveReport } from './figures.ts'

const settings = loadSettingsOrExit(
  z.object({
    ...kafkaSettings(),
    /** Connections held during the run (two sessions per member, two members per room by default). */
    BENCH_CHAT_CONNECTIONS: positiveInt(1000),
    BENCH_CHAT_SESSIONS_PER_MEMBER: positiveInt(2),
    /** The first step's offered SENDs per second; each next step doubles it. */
    BENCH_CHAT_FIRST_RATE: positiveInt(50),
    BENCH_CHAT_MAX_STEPS: positiveInt(8),
    BENCH_CHAT_STEP_SECONDS: positiveInt(4),
    BENCH_CHAT_P99_LIMIT_MS: positiveInt(100),
    /** Whether to run the RabbitMQ Web-STOMP peer (`false` skips it). */
    BENCH_CHAT_RABBITMQ: z.enum(['true', 'false']).default('true'),
    TIMEDEAL_STATE_DIR: z.string().optional(),
  }),
)

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const stateDir = settings.TIMEDEAL_STATE_DIR ?? join(repoRoot, '.state')
const chatEntry = join(repoRoot, 'services/chat/src/main.ts')
const say = (line: string) => process.stdout.write(`[bench-chat] ${line}\n`)
const MEMBERS_PER_ROOM = 2
/** Deliveries still missing this long after a step's last SEND mean it did not keep up. */
const DRAIN_MS = 2000
const KEEP_UP_SHARE = 0.99

/** How one target is reached: its socket URLs, CONNECT headers and destinations. */
interface Target {
  readonly label: string
  readonly socketUrls: readonly string[]
  connectHeaders(userId: string): Promise<StompHeader[]>
  subscribeDestination(roomId: string): string
  sendDestination(roomId: string): string
  /** Resident memory of the server's processes, bytes. */
  rss(): number
}

interface Session {
  readonly socket: WebSocket
  readonly roomIndex: number
}

interface StepResult {
  readonly offeredSendsPerSecond: number
  readonly sent: number
  readonly delivered: number
  readonly expected: number
  readonly deliveriesPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly keptUp: boolean
}

interface TargetResult {
  readonly label: string
  readonly connections: number
  readonly held: number
  readonly rssPerConnectionKb: number
  readonly steps: readonly StepResult[]
  /** The best step that kept up (p99 within the limit and every delivery in), if any. */
  readonly best: StepResult | undefined
}

/** Every delivery's latency lands here, keyed by the step it belongs to. */
class Tally {
  step = -1
  delivered = 0
  latencies: number[] = []
  /** When any MESSAGE last came, whatever its step: a backlog still draining keeps this fresh. */
  lastArrival = 0
  record(step: number, sentAt: number): void {
    this.lastArrival = performance.now()
    if (step !== this.step) return
    this.delivered++
    this.latencies.push(performance.now() - sentAt)
  }
}

const encoder = new TextEncoder()
const frame = (command: string, headers: StompHeader[], body = '') =>
  encodeFrame({ command, headers, body: encoder.encode(body) }, { escape: command !== 'CONNECT' })

/** Opens one session: CONNECT, SUBSCRIBE with a receipt, then counts every MESSAGE in `tally`. */
async function openSession(target: Target, url: string, userId: string, roomId: string, tally: Tally) {
  const socket = new WebSocket(url, ['v12.stomp'], { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  const decoder = createFrameDecoder({ maxBodyBytes: 1 << 20, maxFrameBytes: 2 << 20 })
  let subscribed: (() => void) | undefined
  let failed: ((error: Error) => void) | undefined
  socket.on('message', (data: Buffer) => {
    for (const received of decoder.push(new Uint8Array(data)).frames) {
      if (received.command === 'MESSAGE') {
        const stamp = received.headers.find(([name]) => name === 'bench-sent')?.[1]
        const [step, sentAt] = (stamp ?? '').split('@')
        if (stamp) tally.record(Number(step), Number(sentAt))
      } else if (received.command === 'RECEIPT') subscribed?.()
      else if (received.command === 'ERROR') {
        const message = received.headers.find(([name]) => name === 'message')?.[1]
        failed?.(new Error(`ERROR from ${target.label}: ${message}`))
      }
    }
  })
  const ready = new Promise<void>((resolve, reject) => {
    subscribed = resolve
    failed = reject
    setTimeout(() => reject(new Error('no RECEIPT for SUBSCRIBE within 30 s')), 30_000).unref()
  })
  socket.send(frame('CONNECT', [...(await target.connectHeaders(userId)), ['heart-beat', '0,0']]))
  socket.send(
    frame('SUBSCRIBE', [
      ['id', 'room'],
      ['destination', target.subscribeDestination(roomId)],
      ['receipt', 'subscribed'],
    ]),
  )
  await ready
  return socket
}

/** Opens `count` sessions, a room's sessions spread over the target's instances, a few at a time. */
async function openSessions(target: Target, roomIds: readonly string[], tally: Tally): Promise<Session[]> {
  const perRoom = MEMBERS_PER_ROOM * settings.BENCH_CHAT_SESSIONS_PER_MEMBER
  const plans = Array.from({ length: roomIds.length * perRoom }, (_, index) => {
    const roomIndex = Math.floor(index / perRoom)
    const member = index % MEMBERS_PER_ROOM
    return { roomIndex, userId: `bench-${member === 0 ? 'buyer' : 'seller'}-${roomIndex}`, index }
  })
  const sessions: Session[] = []
  let next = 0
  let failures = 0
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < plans.length) {
        const plan = plans[next++]
        if (!plan) break
        const url = target.socketUrls[plan.index % target.socketUrls.length] as string
        try {
          const socket = await openSession(target, url, plan.userId, roomIds[plan.roomIndex] as string, tally)
          sessions.push({ socket, roomIndex: plan.roomIndex })
        } catch (error) {
          if (failures++ === 0) say(`  a session failed to open: ${error instanceof Error ? error.message : error}`)
        }
      }
    }),
  )
  return sessions
}

/** One step: SENDs at `rate` per second for the step's length, round-robin over the sessions. */
async function runStep(
  target: Target,
  sessions: readonly Session[],
  roomIds: readonly string[],
  perRoom: readonly number[],
  tally: Tally,
  step: number,
  rate: number,
): Promise<StepResult> {
  tally.step = step
  tally.delivered = 0
  tally.latencies = []
  let sent = 0
  let expected = 0
  let cursor = step * 7
  const started = performance.now()
  const until = started + settings.BENCH_CHAT_STEP_SECONDS * 1000
  while (performance.now() < until) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate)
    while (sent < due) {
      const session = sessions[cursor++ % sessions.length] as Session
      if (session.socket.readyState !== WebSocket.OPEN) continue
      const roomId = roomIds[session.roomIndex] as string
      session.socket.send(
        frame(
          'SEND',
          [
            ['destination', target.sendDestination(roomId)],
            ['content-type', 'text/plain'],
            ['bench-sent', `${step}@${performance.now()}`],
          ],
          'a chat message of an ordinary length, about as long as people type',
        ),
      )
      sent++
      expected += perRoom[session.roomIndex] ?? 0
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const drainUntil = performance.now() + DRAIN_MS
  while (tally.delivered < expected && performance.now() < drainUntil) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const seconds = settings.BENCH_CHAT_STEP_SECONDS
  const p99Ms = percentile(tally.latencies, 0.99)
  return {
    offeredSendsPerSecond: rate,
    sent,
    delivered: tally.delivered,
    expected,
    deliveriesPerSecond: round(tally.delivered / seconds, 1),
    p50Ms: round(percentile(tally.latencies, 0.5), 2),
    p99Ms: round(p99Ms, 2),
    keptUp: tally.delivered >= expected * KEEP_UP_SHARE && p99Ms <= settings.BENCH_CHAT_P99_LIMIT_MS,
  }
}

async function halfwayStep(
  target: Target,
  sessions: readonly Session[],
  roomIds: readonly string[],
  perRoom: readonly number[],
  tally: Tally,
  step: number,
  failedRate: number,
): Promise<StepResult> {
  // The step that fell behind left a backlog; this one starts once it has drained (or 30 s passed).
  const giveUp = performance.now() + 30_000
  while (performance.now() - tally.lastArrival < 1000 && performance.now() < giveUp) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const result = await runStep(target, sessions, roomIds, perRoom, tally, step, Math.round(failedRate * 0.75))
  sayStep(target, result)
  return result
}

function sayStep(target: Target, result: StepResult): void {
  say(
    `${target.label}: ${result.offeredSendsPerSecond} SEND/s → ${result.deliveriesPerSecond} deliveries/s (${result.delivered}/${result.expected}), p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${result.keptUp ? '' : ' — behind'}`,
  )
}

/** Opens the sessions, measures memory per connection, then raises the rate step by step. */
async function measure(target: Target, roomIds: readonly string[]): Promise<TargetResult> {
  const tally = new Tally()
  const idleRss = target.rss()
  say(`${target.label}: opening ${settings.BENCH_CHAT_CONNECTIONS} connections over ${roomIds.length} rooms`)
  const sessions = await openSessions(target, roomIds, tally)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const held = sessions.filter((session) => session.socket.readyState === WebSocket.OPEN).length
  const rssPerConnectionKb = round((target.rss() - idleRss) / 1024 / Math.max(1, held), 1)
  say(`${target.label}: ${held} connections held, ${rssPerConnectionKb} KiB RSS per connection`)
  const perRoom = roomIds.map(() => 0)
  for (const session of sessions) perRoom[session.roomIndex] = (perRoom[session.roomIndex] ?? 0) + 1
  const steps: StepResult[] = []
  try {
    let rate = settings.BENCH_CHAT_FIRST_RATE
    for (let step = 0; step < settings.BENCH_CHAT_MAX_STEPS; step++, rate *= 2) {
      const result = await runStep(target, sessions, roomIds, perRoom, tally, step, rate)
      steps.push(result)
      sayStep(target, result)
      if (!result.keptUp) {
        // One more step halfway back, so the figure is within a quarter of the true ceiling, not a half.
        if (step > 0) steps.push(await halfwayStep(target, sessions, roomIds, perRoom, tally, step + 1, rate))
        break
      }
    }
  } finally {
    tally.step = -1
    for (const session of sessions) session.socket.terminate()
  }
  const kept = steps.filter((step) => step.keptUp)
  const best = kept.sort((a, b) => b.deliveriesPerSecond - a.deliveriesPerSecond)[0]
  return { label: target.label, connections: settings.BENCH_CHAT_CONNECTIONS, held, rssPerConnectionKb, steps, best }
}

/** Resident memory of `pid` and every process under it, bytes. */
function treeRss(pid: number): number {
  const rssOf = (id: number) => {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${id}/status`, 'utf8'))
      return match ? Number(match[1]) * 1024 : 0
    } catch {
      return 0
    }
  }
  return [pid, ...descendants(pid)].reduce((sum, id) => sum + rssOf(id), 0)
}

function descendants(pid: number): number[] {
  const children: number[] = []
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
      if (text) children.push(...text.split(/\s+/).map(Number))
    }
  } catch {
    return []
  }
  return children.flatMap((child) => [child, ...descendants(child)])
}

/** The pids of chat-service processes this run started (children of this process). */
const chatPids = () =>
  descendants(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('services/chat/src/main.ts')
    } catch {
      return false
    }
  })

interface ChatRun {
  readonly issuer: TestIssuer
  readonly database: TestDatabase
  readonly mongoDatabase: string
  readonly redisPrefix: string
  readonly group: string
}

/** chat-service as `instances` processes on one database, key prefix and group, as in production. */
async function chatTarget(run: ChatRun, instances: number): Promise<{ target: Target; stop: () => Promise<void> }> {
  const env = {
    MYSQL_DATABASE: run.database.name,
    MONGO_DATABASE: run.mongoDatabase,
    CHAT_REDIS_PREFIX: run.redisPrefix,
    CHAT_MESSAGES_GROUP: run.group,
    JWT_JWKS_URL: run.issuer.jwksUrl,
    LOG_LEVEL: 'warn',
    // The bench offers its own load; the per-user limits would only measure themselves.
    CHAT_SEND_RATE_PER_SECOND: '100000',
    CHAT_SEND_HARD_RATE_PER_SECOND: '200000',
    CHAT_SEND_BUFFER_BYTES: String(16 << 20),
  }
  const processes: ServiceProcess[] = []
  for (let index = 0; index < instances; index++) processes.push(await spawnService(chatEntry, env))
  await Promise.all(processes.map((service) => waitUntilReady(service, 90_000)))
  const tokens = new Map<string, string>()
  return {
    target: {
      label: instances === 1 ? 'chat-service ×1' : `chat-service ×${instances}`,
      socketUrls: processes.map((service) => `${service.url.replace('http', 'ws')}/ws/chat`),
      async connectHeaders(userId) {
        let token = tokens.get(userId)
        if (!token) {
          token = await run.issuer.sign({ sub: userId, role: userId.includes('buyer') ? 'BUYER' : 'SELLER' })
          tokens.set(userId, token)
        }
        return [
          ['accept-version', '1.2'],
          ['host', 'timedeal'],
          ['passcode', token],
        ]
      },
      subscribeDestination: (roomId) => `/sub/rooms/${roomId}`,
      sendDestination: (roomId) => `/pub/rooms/${roomId}`,
      rss: () => chatPids().reduce((sum, pid) => sum + treeRss(pid), 0),
    },
    async stop() {
      await Promise.all(processes.map((service) => service.stop('SIGTERM')))
    },
  }
}

async function openRooms(database: TestDatabase, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID())
  // A room is unique per (goods, buyer): each call gets goods of its own.
  const goodsTag = randomUUID().slice(0, 8)
  for (let start = 0; start < count; start += 500) {
    const chunk = ids.slice(start, start + 500)
    await database.sequelize.query(
      `INSERT INTO rooms (id, goods_id, buyer_id, seller_id, created_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, NOW(3))').join(', ')}`,
      {
        replacements: chunk.flatMap((id, offset) => [
          id,
          `bench-goods-${goodsTag}-${start + offset}`,
          `bench-buyer-${start + offset}`,
          `bench-seller-${start + offset}`,
        ]),
      },
    )
  }
  return ids
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/** A port below 32768 (RabbitMQ's ports stay out of the ephemeral range) that is free now. */
async function lowPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000)
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen(candidate, '127.0.0.1', () => server.close(() => resolve(true)))
    })
    if (free) return candidate
  }
  return freePort()
}

const RABBITMQ_HOME = '/usr/lib/rabbitmq'

/** RabbitMQ as a plain process: its own node name, folders under the state folder, ports on loopback. */
async function rabbitTarget(): Promise<{ target: Target; stop: () => Promise<void>; version: string }> {
  const base = join(stateDir, 'rabbitmq')
  const runDir = join(base, `run-${Date.now().toString(36)}`)
  mkdirSync(join(runDir, 'log'), { recursive: true })
  const [amqp, dist, epmd, stomp, webStomp] = [await lowPort(), await lowPort(), await lowPort(), await lowPort(), 0]
  const webStompPort = webStomp || (await lowPort())
  const config = join(runDir, 'rabbitmq.conf')
  writeFileSync(
    config,
    [
      `listeners.tcp.default = 127.0.0.1:${amqp}`,
      `stomp.listeners.tcp.1 = 127.0.0.1:${stomp}`,
      `web_stomp.tcp.ip = 127.0.0.1`,
      `web_stomp.tcp.port = ${webStompPort}`,
      'web_stomp.ws_frame = binary',
      'loopback_users = none',
      '',
    ].join('\n'),
  )
  const env = {
    ...process.env,
    HOME: base,
    RABBITMQ_BASE: runDir,
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_MNESIA_BASE: join(runDir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(runDir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    RABBITMQ_NODENAME: `bench${amqp}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_PORT: String(epmd),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  }
  const child: ChildProcess = spawn(join(RABBITMQ_HOME, 'bin/rabbitmq-server'), [], {
    env,
    stdio: ['ignore', 'ignore', 'ignore'],
  })
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    rmSync(runDir, { recursive: true, force: true })
    // The Erlang port mapper the broker started on its own port.
    try {
      execFileSync('epmd', ['-port', String(epmd), '-kill'], { env, stdio: 'ignore' })
    } catch {}
  }
  const deadline = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`rabbitmq-server exited with ${child.exitCode} (logs in ${runDir}/log)`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${webStompPort}/ws`, ['v12.stomp'])
      socket.once('open', () => {
        socket.terminate()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`RabbitMQ's Web-STOMP did not answer within 90 s (logs in ${runDir}/log)`)
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  let version = '?'
  try {
    version = /Version:\s*(\S+)/.exec(execFileSync('dpkg', ['-s', 'rabbitmq-server'], { encoding: 'utf8' }))?.[1] ?? '?'
  } catch {}
  return {
    version,
    stop,
    target: {
      label: 'RabbitMQ Web-STOMP',
      socketUrls: [`ws://127.0.0.1:${webStompPort}/ws`],
      connectHeaders: async () => [
        ['accept-version', '1.2'],
        ['host', '/'],
        ['login', 'guest'],
        ['passcode', 'guest'],
      ],
      subscribeDestination: (roomId) => `/topic/rooms.${roomId}`,
      sendDestination: (roomId) => `/topic/rooms.${roomId}`,
      rss: () => (child.pid ? treeRss(child.pid) : 0),
    },
  }
}

function chartSvg(results: readonly TargetResult[]): string {
  const width = 960
  const rowHeight = 46
  const height = 70 + results.length * rowHeight
  const max = Math.max(1, ...results.map((result) => result.best?.deliveriesPerSecond ?? 0))
  const bars = results.map((result, index) => {
    const y = 50 + index * rowHeight
    const value = result.best?.deliveriesPerSecond ?? 0
    const barWidth = Math.max(1, Math.round((value / max) * 420))
    const p99 = result.best ? `p99 ${result.best.p99Ms} ms` : 'no step kept up'
    return [
      `<text x="10" y="${y + 18}" font-size="13">${escapeXml(result.label)}</text>`,
      `<rect x="180" y="${y}" width="${barWidth}" height="26" fill="${result.label.startsWith('RabbitMQ') ? '#e67e22' : '#2e86de'}"/>`,
      `<text x="${188 + barWidth}" y="${y + 18}" font-size="12">${Math.round(value)} /s · ${p99}</text>`,
    ].join('')
  })
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="24" font-size="16" font-weight="bold">Chat deliveries per second that keep up (p99 ≤ ${settings.BENCH_CHAT_P99_LIMIT_MS} ms), ${settings.BENCH_CHAT_CONNECTIONS} connections</text>`,
    ...bars,
    '</svg>',
  ].join('\n')
}

function markdown(
  results: readonly TargetResult[],
  ratios: Record<string, number>,
  environment: Record<string, string>,
  notes: readonly string[],
  chartFile: string,
  when: Date,
): string {
  const lines = [
    '# Chat benchmark',
    '',
    `Run at ${when.toISOString()}.`,
    '',
    `![deliveries per second](${chartFile})`,
    '',
    '| target | connections held | RSS / connection | best deliveries/s | p50 ms | p99 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (result) =>
        `| ${result.label} | ${result.held} / ${result.connections} | ${result.rssPerConnectionKb} KiB | ${result.best?.deliveriesPerSecond ?? '–'} | ${result.best?.p50Ms ?? '–'} | ${result.best?.p99Ms ?? '–'} |`,
    ),
    '',
    '## Steps',
    '',
    '| target | offered SEND/s | deliveries/s | delivered / expected | p50 ms | p99 ms | kept up |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...results.flatMap((result) =>
      result.steps.map(
        (step) =>
          `| ${result.label} | ${step.offeredSendsPerSecond} | ${step.deliveriesPerSecond} | ${step.delivered} / ${step.expected} | ${step.p50Ms} | ${step.p99Ms} | ${step.keptUp ? 'yes' : 'no'} |`,
      ),
    ),
    '',
    '## Ratios',
    '',
    ...Object.entries(ratios).map(([name, value]) => `- ${name}: **${value}**`),
    '',
    '## Environment',
    '',
    ...Object.entries(environment).map(([name, value]) => `- ${name}: ${value}`),
    '',
    '## Notes',
    '',
    ...notes.map((note) => `- ${note}`),
    '',
  ]
  return lines.join('\n')
}

async function main(): Promise<void> {
  const perRoom = MEMBERS_PER_ROOM * settings.BENCH_CHAT_SESSIONS_PER_MEMBER
  const roomCount = Math.ceil(settings.BENCH_CHAT_CONNECTIONS / perRoom)
  const issuer = await startTestIssuer()
  const database = await createTestDatabase('bench_chat')
  const run: ChatRun = {
    issuer,
    database,
    mongoDatabase: uniqueName('timedeal_test_bench_chat'),
    redisPrefix: uniqueName('bench-chat'),
    group: uniqueName('bench-chat-messages'),
  }
  // Its own topics and groups (the Makefile gives a fresh prefix), so `make dev` never reads bench messages.
  const bus = eventBusFromSettings(settings, 'bench-chat', createLogger('bench-chat', 'warn'))
  const admin = await bus.admin()
  await admin.ensureTopics(allTopics())
  const results: TargetResult[] = []
  const notes: string[] = []
  let rabbitVersion = 'not run'
  try {
    await startGroupsAtEnd([run.group], [TOPIC_CHAT_MESSAGES], settings.KAFKA_BROKERS)
    for (const instances of [1, 2]) {
      const chat = await chatTarget(run, instances)
      try {
        // The first instance migrates; rooms go in once the tables exist.
        const roomIds = await openRooms(database, roomCount)
        results.push(await measure(chat.target, roomIds))
      } finally {
        await chat.stop()
      }
    }
    if (settings.BENCH_CHAT_RABBITMQ === 'true') {
      try {
        const rabbit = await rabbitTarget()
        rabbitVersion = rabbit.version
        try {
          const roomIds = Array.from({ length: roomCount }, () => randomUUID())
          results.push(await measure(rabbit.target, roomIds))
        } finally {
          await rabbit.stop()
        }
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        say(`RabbitMQ could not be measured: ${reason}`)
        notes.push(`RabbitMQ could not be measured: ${reason}`)
      }
    }
  } finally {
    if (settings.KAFKA_TOPIC_PREFIX !== '') {
      await admin.deleteTopics(allTopics().map((topic) => topic.name)).catch(() => undefined)
    }
    await admin.close()
    await database.drop().catch(() => undefined)
    const mongo = await createMongo({ url: testSettings.MONGO_URL, database: run.mongoDatabase, logger: testLogger })
    await mongo.dropDatabase().catch(() => undefined)
    await mongo.close()
    await issuer.close()
  }

  const best = (label: string) => results.find((result) => result.label === label)?.best
  const rabbit = best('RabbitMQ Web-STOMP')
  const rabbitSteps = results.find((result) => result.label === 'RabbitMQ Web-STOMP')?.steps ?? []
  const ratios: Record<string, number> = {}
  for (const result of results) {
    if (!rabbit || result.label.startsWith('RabbitMQ') || !result.best) continue
    const key = result.label.endsWith('×1') ? 'oneInstance' : 'twoInstances'
    ratios[`${key}DeliveriesVsRabbitmq`] = round(result.best.deliveriesPerSecond / rabbit.deliveriesPerSecond, 3)
    // p99 compared at the same offered rate (chat's best; RabbitMQ's first step at or above it), not at each one's own ceiling.
    const offered = result.best.offeredSendsPerSecond
    const peer = rabbitSteps
      .filter((step) => step.offeredSendsPerSecond >= offered)
      .sort((a, b) => a.offeredSendsPerSecond - b.offeredSendsPerSecond)[0]
    if (peer) ratios[`${key}P99VsRabbitmqAtSameRate`] = round(result.best.p99Ms / Math.max(0.01, peer.p99Ms), 3)
  }
  say(`ratios: ${JSON.stringify(ratios)}`)
  for (const result of results) {
    const last = result.steps.at(-1)
    if (last?.keptUp) {
      notes.push(
        `${result.label} kept up on the last step (${last.offeredSendsPerSecond} SEND/s): its ceiling is higher than measured; raise BENCH_CHAT_MAX_STEPS to find it.`,
      )
    }
  }
  notes.push(
    `Rooms have a buyer and a seller with ${settings.BENCH_CHAT_SESSIONS_PER_MEMBER} sessions each, all subscribed: one SEND is ${perRoom} deliveries (the sender's own session included); every delivery counts.`,
    `Each step offers a fixed SEND rate for ${settings.BENCH_CHAT_STEP_SECONDS} s (doubling from ${settings.BENCH_CHAT_FIRST_RATE}/s, then one step at three quarters of the rate that fell behind); it keeps up when at least ${KEEP_UP_SHARE * 100}% of the deliveries arrive within ${DRAIN_MS} ms of the last SEND and p99 ≤ ${settings.BENCH_CHAT_P99_LIMIT_MS} ms. Deliveries per second are counted over the step's length.`,
    'Latency is SEND written by the client → MESSAGE read by a subscriber, both in this process (one clock).',
    'chat-service makes every message durable (Kafka with acks=all, then MongoDB) before delivering it; RabbitMQ routes a topic message in memory.',
    'RSS per connection is the servers’ resident memory after the connections opened minus before, divided by the connections held.',
    'Every process (load generator, services, Kafka, MongoDB, Redis, MariaDB, RabbitMQ) shares the same cores: the ratios are the point, not the absolute numbers.',
  )
  const environment = {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    node: process.version,
    rabbitmq: rabbitVersion,
    connections: String(settings.BENCH_CHAT_CONNECTIONS),
    rooms: String(roomCount),
  }
  const reportFile = await saveReport({
    name: 'chat',
    svg: chartSvg(results),
    markdown: (chartFile, when) => markdown(results, ratios, environment, notes, chartFile, when),
  })
  say(`report: ${reportFile}`)
  const figures = (result: TargetResult) => ({
    connections: result.connections,
    held: result.held,
    rssPerConnectionKb: result.rssPerConnectionKb,
    deliveriesPerSecond: result.best?.deliveriesPerSecond ?? 0,
    p50Ms: result.best?.p50Ms ?? null,
    p99Ms: result.best?.p99Ms ?? null,
  })
  process.stdout.write(
    `${JSON.stringify({
      bench: 'chat',
      ...Object.fromEntries(
        results.map((result) => [
          result.label.startsWith('RabbitMQ') ? 'rabbitmq' : result.label.endsWith('×1') ? 'chatOne' : 'chatTwo',
          figures(result),
        ]),
      ),
      ratios,
    })}\n`,
  )
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`[bench-chat] ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
