/**
 * `make bench-chat`: how many chat deliveries per second chat-service keeps up with, and at what
 * SEND → MESSAGE latency, with one and with two instances, at 1,000 and at 10,000 connections,
 * set beside RabbitMQ's Web-STOMP in the same run and the same scenario. The load comes from
 * worker threads speaking raw STOMP frames over `ws`, so the client stays cheap.
 *
 * Connections are spread over rooms; every room has a buyer and a seller, each with
 * `BENCH_CHAT_SESSIONS_PER_MEMBER` sessions (spread over the instances), all subscribed, so one
 * SEND is delivered to every session of the room (the sender's own included). Load is offered in
 * steps of a fixed send rate, doubled until p99 passes `BENCH_CHAT_P99_LIMIT_MS` or deliveries
 * fall behind, then tried once at three quarters of that rate; the figure is the highest
 * delivered rate of a step that kept up. Every target starts afresh (its own consumer group, its
 * own processes), so one target's backlog never slows the next. At the highest number of
 * connections, chat-service runs one more step at the highest offered rate under the CPU profiler
 * (over the inspector, for that step only); the report sums up where the time went. Writes a
 * report, an SVG chart and the profiles under bench-results/ and ends with one JSON line.
 */
import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { allTopics, TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import {
  bool,
  createLogger,
  createMongo,
  eventBusFromSettings,
  kafkaSettings,
  loadSettingsOrExit,
  positiveInt,
} from '@timedeal/platform'
import {
  createTestDatabase,
  startGroupsAtEnd,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  testLogger,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import { z } from 'zod'
import type { ClientCommand, ClientReply, SessionPlan } from './chat-clients.ts'
import { chartSvg, type Goal, markdown, type StepResult, type TargetResult } from './chat-report.ts'
import { chatTarget, rabbitmqVersion, rabbitTarget, type Target } from './chat-targets.ts'
import { type CpuProfile, InspectorProfiler, summariseProfiles } from './cpu-profile.ts'
import { percentile, resultsFolder, round, saveReport } from './figures.ts'
import { type FloorStep, kafkaFloor } from './kafka-floor.ts'
import { applyCatalogTopics } from './topics.ts'

const connectionCounts = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'expected connection counts separated by commas, e.g. 1000,10000')
  .transform((text) => text.split(',').map(Number))

const settings = loadSettingsOrExit(
  z.object({
    ...kafkaSettings(),
    /** A short run for trying things out: 1,000 connections, two-second steps (about two minutes). */
    BENCH_CHAT_QUICK: bool(false),
    /** The numbers of connections held, one measurement each (default 1000,10000; quick: 1000). */
    BENCH_CHAT_CONNECTIONS: connectionCounts.optional(),
    BENCH_CHAT_SESSIONS_PER_MEMBER: positiveInt(2),
    /** The first step's offered SENDs per second; each next step doubles it. */
    BENCH_CHAT_FIRST_RATE: positiveInt(100),
    BENCH_CHAT_MAX_STEPS: positiveInt(8),
    /** Seconds per step (default 4; quick: 2). */
    BENCH_CHAT_STEP_SECONDS: z.coerce.number().int().positive().optional(),
    BENCH_CHAT_P99_LIMIT_MS: positiveInt(100),
    /** Worker threads of the load generator; a room's sessions share one. */
    BENCH_CHAT_CLIENT_WORKERS: positiveInt(2),
    /** Whether to run the RabbitMQ Web-STOMP peer. */
    BENCH_CHAT_RABBITMQ: bool(true),
    /** Whether to measure the durable hop alone (Kafka produce with acks=all → consume, no chat code). */
    BENCH_CHAT_KAFKA_FLOOR: bool(true),
    /** Whether to profile chat-service at the highest step. */
    BENCH_CHAT_PROFILE: bool(true),
    /** chat-service's entry point (another checkout's, to compare a baseline). */
    BENCH_CHAT_SERVICE_ENTRY: z.string().optional(),
    TIMEDEAL_STATE_DIR: z.string().optional(),
  }),
)

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const stateDir = settings.TIMEDEAL_STATE_DIR ?? join(repoRoot, '.state')
const chatEntry = settings.BENCH_CHAT_SERVICE_ENTRY ?? join(repoRoot, 'services/chat/src/main.ts')
const counts = settings.BENCH_CHAT_CONNECTIONS ?? (settings.BENCH_CHAT_QUICK ? [1000] : [1000, 10_000])
const stepSeconds = settings.BENCH_CHAT_STEP_SECONDS ?? (settings.BENCH_CHAT_QUICK ? 2 : 4)
const profiledCount = Math.max(...counts)
const say = (line: string) => process.stdout.write(`[bench-chat] ${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const MEMBERS_PER_ROOM = 2
const sessionsPerRoom = MEMBERS_PER_ROOM * settings.BENCH_CHAT_SESSIONS_PER_MEMBER
/** Deliveries still missing this long after a step's last SEND mean it did not keep up. */
const DRAIN_MS = 2000
const KEEP_UP_SHARE = 0.99
/**
 * Kafka calls right after topics were created (or while a busy broker moves leaders) can fail
 * for a moment: a few tries a second apart.
 */
async function retried<T>(call: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call()
    } catch (error) {
      if (attempt >= attempts) throw error
      await sleep(1000)
    }
  }
}

/** Handshakes in flight while the connections open. */
const OPENING_CONCURRENCY = 128
/** The step number of the warm-up, apart from the measured ones. */
const WARM_UP_STEP = 999

/** The load generator's worker threads; each command goes to all and waits for every reply. */
class ClientPool {
  readonly #workers: Worker[]
  /** Why a worker failed, if one did: every later command fails with it. */
  #failure: Error | undefined

  constructor(size: number) {
    this.#workers = Array.from({ length: size }, () => {
      const worker = new Worker(new URL('./chat-clients.ts', import.meta.url))
      worker.on('error', (error) => {
        this.#failure ??= error
      })
      return worker
    })
  }

  get size(): number {
    return this.#workers.length
  }

  /** Sends `commandFor(index)` to each worker and collects their replies in order. */
  all<T extends ClientReply>(commandFor: (index: number) => ClientCommand): Promise<T[]> {
    return Promise.all(
      this.#workers.map(
        (worker, index) =>
          new Promise<T>((resolve, reject) => {
            if (this.#failure) return reject(this.#failure)
            const onError = (error: Error) => reject(error)
            const onExit = (code: number) => reject(this.#failure ?? new Error(`a client worker exited with ${code}`))
            worker.once('error', onError)
            worker.once('exit', onExit)
            worker.once('message', (reply: T) => {
              worker.off('error', onError)
              worker.off('exit', onExit)
              resolve(reply)
            })
            worker.postMessage(commandFor(index))
          }),
      ),
    )
  }

  async terminate(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()))
  }
}

/** The sessions of `roomIds`, a member's sessions spread over the target's instances. */
async function sessionPlans(
  target: Target,
  roomIds: readonly string[],
  userOf: (room: number, member: number) => string,
) {
  const plans: SessionPlan[] = []
  for (const [room, roomId] of roomIds.entries()) {
    for (let member = 0; member < MEMBERS_PER_ROOM; member++) {
      const connectFrame = await target.connectFrame(userOf(room, member))
      for (let session = 0; session < settings.BENCH_CHAT_SESSIONS_PER_MEMBER; session++) {
        plans.push({
          url: target.socketUrls[(member + session) % target.socketUrls.length] as string,
          connectFrame,
          subscribeFrame: `SUBSCRIBE\nid:room\ndestination:${target.subscribeDestination(roomId)}\nreceipt:subscribed\n\n\0`,
          sendDestination: target.sendDestination(roomId),
          room,
        })
      }
    }
  }
  return plans
}

/** One step at `rate` SENDs per second over all the workers; CPU of both sides read around it. */
async function runStep(target: Target, pool: ClientPool, step: number, rate: number): Promise<StepResult> {
  const serverBefore = target.cpuSeconds()
  const clientBefore = process.cpuUsage()
  const started = performance.now()
  const replies = await pool.all<Extract<ClientReply, { type: 'stepped' }>>(() => ({
    type: 'step',
    step,
    rate: rate / pool.size,
    seconds: stepSeconds,
    drainMs: DRAIN_MS,
  }))
  const wallSeconds = (performance.now() - started) / 1000
  const client = process.cpuUsage(clientBefore)
  const sum = (pick: (reply: (typeof replies)[number]) => number) =>
    replies.reduce((total, reply) => total + pick(reply), 0)
  const latencies = replies.flatMap((reply) => Array.from(reply.latencies))
  const delivered = sum((reply) => reply.delivered)
  const expected = sum((reply) => reply.expected)
  const p99Ms = percentile(latencies, 0.99)
  const result: StepResult = {
    offeredSendsPerSecond: rate,
    sent: sum((reply) => reply.sent),
    delivered,
    expected,
    deliveriesPerSecond: round(delivered / stepSeconds, 1),
    p50Ms: round(percentile(latencies, 0.5), 2),
    p99Ms: round(p99Ms, 2),
    keptUp: expected > 0 && delivered >= expected * KEEP_UP_SHARE && p99Ms <= settings.BENCH_CHAT_P99_LIMIT_MS,
    serverCores: round((target.cpuSeconds() - serverBefore) / wallSeconds, 2),
    clientCores: round((client.user + client.system) / 1e6 / wallSeconds, 2),
    lost: sum((reply) => reply.lost),
  }
  say(
    `${target.label}: ${rate} SEND/s → ${result.deliveriesPerSecond} deliveries/s (${delivered}/${expected}), p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, server ${result.serverCores} cores, client ${result.clientCores} cores${result.lost ? `, ${result.lost} connections lost` : ''}${result.keptUp ? '' : ' — behind'}`,
  )
  return result
}

/** Waits until a backlog a step left behind has drained (nothing arrived for a second), at most 30 s. */
const quiet = (pool: ClientPool) => pool.all(() => ({ type: 'quiet', quietMs: 1000, giveUpMs: 30_000 }))

/**
 * Doubles the rate until a step falls behind, then tries three quarters of that rate; when
 * even the first step falls behind, halves it instead (a few times) so there is a figure. A
 * step that had every delivery but missed the p99 limit is run once more before it counts: one
 * stall of the shared machine should not end the climb.
 */
async function ladder(target: Target, pool: ClientPool): Promise<StepResult[]> {
  // Not counted: connections, producers and JIT warm up before the first measured step.
  say(`${target.label}: warming up`)
  await runStep(target, pool, WARM_UP_STEP, settings.BENCH_CHAT_FIRST_RATE / 2)
  await quiet(pool)
  const steps: StepResult[] = []
  const measured = async (rate: number) => {
    const result = await runStep(target, pool, steps.length, rate)
    steps.push(result)
    return result
  }
  let rate = settings.BENCH_CHAT_FIRST_RATE
  while (steps.length < settings.BENCH_CHAT_MAX_STEPS) {
    let result = await measured(rate)
    if (!result.keptUp && deliveredInFull(result)) {
      await quiet(pool)
      result = await measured(rate)
    }
    if (result.keptUp) {
      rate *= 2
      continue
    }
    await quiet(pool)
    if (steps.some((step) => step.keptUp)) {
      await measured(Math.round(rate * 0.75))
    } else {
      for (let lower = Math.floor(rate / 2); lower >= 10 && steps.length < 6; lower = Math.floor(lower / 2)) {
        if ((await measured(lower)).keptUp) break
        await quiet(pool)
      }
    }
    break
  }
  return steps
}

const deliveredInFull = (step: StepResult) => step.expected > 0 && step.delivered >= step.expected * KEEP_UP_SHARE

/** One more step at `rate` with the CPU profiler on in every chat-service process; saves the profiles. */
async function profiledStep(target: Target, pool: ClientPool, step: number, rate: number, connections: number) {
  await quiet(pool)
  const profilers = await Promise.all(target.inspectorPorts.map((port) => InspectorProfiler.attach(port)))
  try {
    await Promise.all(profilers.map((profiler) => profiler.start()))
    const result = await runStep(target, pool, step, rate)
    const profiles: CpuProfile[] = await Promise.all(profilers.map((profiler) => profiler.stop()))
    const stamp = new Date().toISOString().replaceAll(':', '-').replace(/\..*$/, '')
    const files = await Promise.all(
      profiles.map(async (profile, index) => {
        const file = `chat-${stamp}-x${target.inspectorPorts.length}-${connections}-instance${index + 1}.cpuprofile`
        await writeFile(join(resultsFolder, file), JSON.stringify(profile))
        return file
      }),
    )
    return { step: result, summary: summariseProfiles(profiles), files }
  } finally {
    for (const profiler of profilers) profiler.close()
  }
}

/** Opens the connections, measures memory per connection, runs the steps (and the profiled one). */
async function measure(
  target: Target,
  roomIds: readonly string[],
  userOf: (room: number, member: number) => string,
): Promise<TargetResult> {
  const connections = roomIds.length * sessionsPerRoom
  const pool = new ClientPool(settings.BENCH_CHAT_CLIENT_WORKERS)
  try {
    const plans = await sessionPlans(target, roomIds, userOf)
    await sleep(1000)
    const idleRss = target.rss()
    say(`${target.label}: opening ${connections} connections over ${roomIds.length} rooms`)
    const opening = performance.now()
    const opened = await pool.all<Extract<ClientReply, { type: 'opened' }>>((index) => ({
      type: 'open',
      plans: plans.filter((plan) => plan.room % pool.size === index),
      concurrency: Math.ceil(OPENING_CONCURRENCY / pool.size),
    }))
    const openSeconds = round((performance.now() - opening) / 1000, 1)
    const failures = opened.reduce((sum, reply) => sum + reply.failures, 0)
    if (failures > 0)
      say(
        `${target.label}: ${failures} sessions failed to open, the first: ${opened.find((reply) => reply.firstError)?.firstError}`,
      )
    await sleep(1500)
    const held = opened.reduce((sum, reply) => sum + reply.held, 0)
    const rssPerConnectionKb = round((target.rss() - idleRss) / 1024 / Math.max(1, held), 1)
    say(
      `${target.label}: ${held} connections held (opened in ${openSeconds} s), ${rssPerConnectionKb} KiB RSS per connection`,
    )
    const loadBefore = loadavg()[0] ?? 0
    const steps = await ladder(target, pool)
    const loadAverage = round(((loadavg()[0] ?? 0) + loadBefore) / 2, 1)
    const kept = steps.filter((step) => step.keptUp)
    const best = [...kept].sort((a, b) => b.deliveriesPerSecond - a.deliveriesPerSecond)[0]
    const highest = Math.max(...steps.map((step) => step.offeredSendsPerSecond))
    const profiled =
      target.inspectorPorts.length > 0 && connections === profiledCount
        ? await profiledStep(target, pool, steps.length, highest, connections)
        : undefined
    const heldAtEnd = (await pool.all<Extract<ClientReply, { type: 'held' }>>(() => ({ type: 'held' }))).reduce(
      (sum, reply) => sum + reply.held,
      0,
    )
    await pool.all(() => ({ type: 'close' }))
    return {
      label: target.label,
      kind: target.kind,
      connections,
      held,
      heldAtEnd,
      openSeconds,
      rssPerConnectionKb,
      loadAverage,
      steps,
      deliveredInFullPerSecond: Math.max(0, ...steps.filter(deliveredInFull).map((step) => step.deliveriesPerSecond)),
      best,
      ...(profiled ? { profiled } : {}),
    }
  } finally {
    await pool.terminate()
  }
}

interface ChatRun {
  readonly issuer: TestIssuer
  readonly database: TestDatabase
  readonly mongoDatabase: string
  readonly redisPrefix: string
  roomIds: string[]
}

/** Rooms `first` to `first + count - 1`: room i is between bench-buyer-i and bench-seller-i. */
async function openRooms(database: TestDatabase, first: number, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID())
  // A room is unique per (goods, buyer): each gets goods of its own.
  const goodsTag = randomUUID().slice(0, 8)
  for (let start = 0; start < count; start += 500) {
    const chunk = ids.slice(start, start + 500)
    await database.sequelize.query(
      `INSERT INTO rooms (id, goods_id, buyer_id, seller_id, created_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, NOW(3))').join(', ')}`,
      {
        replacements: chunk.flatMap((id, offset) => [
          id,
          `bench-goods-${goodsTag}-${first + start + offset}`,
          `bench-buyer-${first + start + offset}`,
          `bench-seller-${first + start + offset}`,
        ]),
      },
    )
  }
  return ids
}

/** chat-service with `instances` processes, on a consumer group of its own that starts at the end of the topic. */
async function measureChat(run: ChatRun, instances: number, connections: number): Promise<TargetResult> {
  const group = uniqueName('bench-chat-messages')
  await retried(() => startGroupsAtEnd([group], [TOPIC_CHAT_MESSAGES], settings.KAFKA_BROKERS))
  const target = await chatTarget({
    entry: chatEntry,
    instances,
    issuer: run.issuer,
    inspect: settings.BENCH_CHAT_PROFILE && connections === profiledCount,
    env: {
      MYSQL_DATABASE: run.database.name,
      MONGO_DATABASE: run.mongoDatabase,
      CHAT_REDIS_PREFIX: run.redisPrefix,
      CHAT_MESSAGES_GROUP: group,
      JWT_JWKS_URL: run.issuer.jwksUrl,
      LOG_LEVEL: 'warn',
      // The bench offers its own load; the per-user limits would only measure themselves.
      CHAT_SEND_RATE_PER_SECOND: '100000',
      CHAT_SEND_HARD_RATE_PER_SECOND: '200000',
      CHAT_SEND_BUFFER_BYTES: String(16 << 20),
    },
  })
  try {
    // The first instance migrates; rooms go in once the tables exist.
    const rooms = Math.ceil(connections / sessionsPerRoom)
    if (run.roomIds.length < rooms)
      run.roomIds.push(...(await openRooms(run.database, run.roomIds.length, rooms - run.roomIds.length)))
    return await measure(target, run.roomIds.slice(0, rooms), (room, member) =>
      member === 0 ? `bench-buyer-${room}` : `bench-seller-${room}`,
    )
  } finally {
    await target.stop()
  }
}

async function measureRabbitmq(connections: number): Promise<TargetResult> {
  const target = await rabbitTarget(stateDir)
  try {
    const roomIds = Array.from({ length: Math.ceil(connections / sessionsPerRoom) }, () => randomUUID())
    return await measure(target, roomIds, () => 'guest')
  } finally {
    await target.stop()
  }
}

/** The ratios of one number of connections: chat-service against RabbitMQ. */
function ratiosOf(results: readonly TargetResult[]): Record<string, number> {
  const rabbit = results.find((result) => result.kind === 'rabbitmq')
  const ratios: Record<string, number> = {}
  if (!rabbit) return ratios
  for (const result of results.filter((entry) => entry.kind === 'chat')) {
    const key = result.label.endsWith('×1') ? 'oneInstance' : 'twoInstances'
    if (rabbit.deliveredInFullPerSecond > 0) {
      ratios[`${key}DeliveredInFullVsRabbitmq`] = round(
        result.deliveredInFullPerSecond / rabbit.deliveredInFullPerSecond,
        3,
      )
    }
    // No step that kept up is a ratio of 0, not a missing one.
    if (rabbit.best) {
      ratios[`${key}DeliveriesVsRabbitmq`] = round(
        (result.best?.deliveriesPerSecond ?? 0) / rabbit.best.deliveriesPerSecond,
        3,
      )
    }
    if (result.best && rabbit.best) {
      // p99 at the same offered rate (chat's best; RabbitMQ's first step at or above it), not at each one's own ceiling.
      const offered = result.best.offeredSendsPerSecond
      const peer = rabbit.steps
        .filter((step) => step.offeredSendsPerSecond >= offered)
        .sort((a, b) => a.offeredSendsPerSecond - b.offeredSendsPerSecond)[0]
      if (peer) ratios[`${key}P99VsRabbitmqAtSameRate`] = round(result.best.p99Ms / Math.max(0.01, peer.p99Ms), 3)
    }
    if (rabbit.rssPerConnectionKb > 0) {
      ratios[`${key}RssPerConnectionVsRabbitmq`] = round(result.rssPerConnectionKb / rabbit.rssPerConnectionKb, 3)
    }
  }
  return ratios
}

/** The issue's goals, each with what was measured. */
function goalsOf(results: readonly TargetResult[]): Goal[] {
  const goals: Goal[] = []
  const find = (connections: number, label: string) =>
    results.find((result) => result.connections === connections && result.label === label)
  const largest = find(Math.max(...counts), 'chat-service ×1')
  if (largest && largest.connections >= 10_000) {
    goals.push({
      name: `${largest.connections.toLocaleString('en')} connections held by one instance`,
      met: largest.held >= largest.connections && largest.heldAtEnd >= largest.connections,
      detail: `${largest.held} held after opening, ${largest.heldAtEnd} at the end`,
    })
  }
  for (const connections of counts) {
    const rabbit = find(connections, 'RabbitMQ Web-STOMP')
    for (const [label, limit] of [
      ['chat-service ×1', 50],
      ['chat-service ×2', 150],
    ] as const) {
      const chat = find(connections, label)
      if (!chat) continue
      if (rabbit?.best) {
        const mine = chat.best?.deliveriesPerSecond ?? 0
        goals.push({
          name: `${connections.toLocaleString('en')} connections, ${label}: deliveries/s ≥ RabbitMQ's`,
          met: mine >= rabbit.best.deliveriesPerSecond,
          detail: `${mine} vs ${rabbit.best.deliveriesPerSecond}`,
        })
      }
      goals.push({
        name: `${connections.toLocaleString('en')} connections, ${label}: p99 ≤ ${limit} ms`,
        met: chat.best !== undefined && chat.best.p99Ms <= limit,
        detail: chat.best
          ? `${chat.best.p99Ms} ms at ${chat.best.deliveriesPerSecond} deliveries/s`
          : 'no step kept up',
      })
    }
  }
  return goals
}

/** The durable hop's best step: records per second that kept up, at what p50 and p99. */
function floorFigures(floor: readonly FloorStep[]) {
  const best = floor.filter((step) => step.keptUp).at(-1)
  return best ? { recordsPerSecond: best.recordsPerSecond, p50Ms: best.p50Ms, p99Ms: best.p99Ms } : null
}

const jsonKey = (result: TargetResult) =>
  result.kind === 'rabbitmq' ? 'rabbitmq' : result.label.endsWith('×1') ? 'chatOne' : 'chatTwo'

function figures(result: TargetResult) {
  return {
    held: result.held,
    heldAtEnd: result.heldAtEnd,
    rssPerConnectionKb: result.rssPerConnectionKb,
    deliveriesPerSecond: result.best?.deliveriesPerSecond ?? 0,
    p50Ms: result.best?.p50Ms ?? null,
    p99Ms: result.best?.p99Ms ?? null,
    serverCores: result.best?.serverCores ?? null,
    deliveredInFullPerSecond: result.deliveredInFullPerSecond,
    loadAverage: result.loadAverage,
    ...(result.profiled
      ? {
          profileTopAreas: result.profiled.summary.byArea.slice(0, 5).map(({ name, share }) => ({ name, share })),
          profileTopFunctions: result.profiled.summary.bySelf.slice(0, 3).map(({ name, share }) => ({ name, share })),
        }
      : {}),
  }
}

async function main(): Promise<void> {
  const issuer = await startTestIssuer()
  const database = await createTestDatabase('bench_chat')
  const run: ChatRun = {
    issuer,
    database,
    mongoDatabase: uniqueName('timedeal_test_bench_chat'),
    redisPrefix: uniqueName('bench-chat'),
    roomIds: [],
  }
  // Its own topics and groups (the Makefile gives a fresh prefix), so `make dev` never reads bench messages.
  const bus = eventBusFromSettings(settings, 'bench-chat', createLogger('bench-chat', 'warn'))
  const admin = await bus.admin()
  // Created as `make dev` creates its topics: the operator's KafkaTopic resources, behind the bench's prefix.
  await retried(() =>
    applyCatalogTopics({
      brokers: settings.KAFKA_BROKERS,
      topicPrefix: settings.KAFKA_TOPIC_PREFIX,
      clientId: 'bench-chat',
    }),
  )
  const results: TargetResult[] = []
  const notes: string[] = []
  say(
    `connections ${counts.join(', ')}; ${stepSeconds} s steps from ${settings.BENCH_CHAT_FIRST_RATE} SEND/s; ${settings.BENCH_CHAT_CLIENT_WORKERS} client workers; chat-service from ${chatEntry}`,
  )
  let floor: FloorStep[] = []
  try {
    if (settings.BENCH_CHAT_KAFKA_FLOOR) {
      try {
        const spec = allTopics().find((topic) => topic.name === TOPIC_CHAT_MESSAGES)
        floor = await retried(
          () =>
            kafkaFloor({
              brokers: settings.KAFKA_BROKERS,
              firstRate: settings.BENCH_CHAT_FIRST_RATE,
              maxSteps: settings.BENCH_CHAT_MAX_STEPS,
              seconds: stepSeconds,
              p99LimitMs: settings.BENCH_CHAT_P99_LIMIT_MS,
              partitions: spec?.partitions ?? 6,
            }),
          3,
        )
        for (const step of floor) {
          say(
            `Kafka alone: ${step.recordsPerSecond} records/s → ${step.received}/${step.sent}, p50 ${step.p50Ms} ms, p99 ${step.p99Ms} ms${step.keptUp ? '' : ' — behind'}`,
          )
        }
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        say(`Kafka alone could not be measured: ${reason}`)
        notes.push(`Kafka alone could not be measured: ${reason}`)
      }
    }
    for (const connections of counts) {
      for (const instances of [1, 2]) results.push(await measureChat(run, instances, connections))
      if (!settings.BENCH_CHAT_RABBITMQ) continue
      try {
        results.push(await measureRabbitmq(connections))
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        say(`RabbitMQ could not be measured at ${connections} connections: ${reason}`)
        notes.push(`RabbitMQ could not be measured at ${connections} connections: ${reason}`)
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

  const ratios: Record<string, number> = {}
  const byCount = counts.map((connections) => {
    const own = results.filter((result) => result.connections === connections)
    const countRatios = ratiosOf(own)
    for (const [name, value] of Object.entries(countRatios)) ratios[`${connections} connections: ${name}`] = value
    return { connections, own, ratios: countRatios }
  })
  say(`ratios: ${JSON.stringify(ratios)}`)
  const goals = goalsOf(results)
  for (const goal of goals) say(`goal ${goal.met ? 'met' : 'NOT met'}: ${goal.name} (${goal.detail})`)
  for (const result of results) {
    if (result.steps.every((step) => step.keptUp)) {
      notes.push(
        `${result.label} at ${result.connections} connections kept up on every step up to ${Math.max(...result.steps.map((step) => step.offeredSendsPerSecond))} SEND/s: its ceiling is higher than measured; raise BENCH_CHAT_MAX_STEPS to find it.`,
      )
    }
    if (result.profiled) {
      const [area] = result.profiled.summary.byArea
      const [fn] = result.profiled.summary.bySelf
      say(
        `profile of ${result.label} (${result.connections} connections): most self time in ${area?.name} (${((area?.share ?? 0) * 100).toFixed(1)}%), top function ${fn?.name} (${((fn?.share ?? 0) * 100).toFixed(1)}%)`,
      )
    }
  }
  notes.push(
    `Rooms have a buyer and a seller with ${settings.BENCH_CHAT_SESSIONS_PER_MEMBER} sessions each, all subscribed (with two instances, each member has a session on each): one SEND is ${sessionsPerRoom} deliveries (the sender's own session included); every delivery counts.`,
    `Each step offers a fixed SEND rate for ${stepSeconds} s (doubling from ${settings.BENCH_CHAT_FIRST_RATE}/s, then one step at three quarters of the rate that fell behind, once its backlog drained); it keeps up when at least ${KEEP_UP_SHARE * 100}% of the deliveries arrive within ${DRAIN_MS} ms of the last SEND and p99 ≤ ${settings.BENCH_CHAT_P99_LIMIT_MS} ms; a step with every delivery in but p99 over the limit is run once more before it ends the climb. Deliveries per second are counted over the step's length. "Delivered in full, any p99" is the highest rate whose deliveries all arrived, the throughput apart from the latency limit.`,
    `The load generator runs in ${settings.BENCH_CHAT_CLIENT_WORKERS} worker threads (a room's sessions in one, so a latency is read on the clock that stamped it); latency is SEND written → MESSAGE read. Its CPU use per step is in the steps table ("client CPU", cores).`,
    'chat-service makes every message durable (Kafka with acks=all, and MongoDB) before delivering it; RabbitMQ routes a topic message in memory.',
    'RSS per connection is the servers’ resident memory 1.5 s after the connections opened minus before, divided by the connections held. Every target starts as fresh processes.',
    'Kafka alone produces records with acks=all (what falls due while a request is out goes in the next one, as chat-service gathers its publishes) and consumes them in a group at the end of a topic of as many partitions as the chat topic, with no chat code: the latency floor of the durable hop, measured once at the start of the run.',
    `The profiled step runs after the measured ones, at the highest offered rate of ${profiledCount} connections, with V8's sampling profiler (1 ms) attached over the inspector; it is not counted in the figures. Self time is where the CPU was; total time includes what a function called.`,
    `Every process (load generator, services, Kafka, MongoDB, Redis, MariaDB, RabbitMQ, and whatever else runs on the machine) shares the same ${cpus().length} cores: the ratios are the point, not the absolute numbers. "load" is the machine's one-minute load average around a target's steps; a load well above the core count means the figures are lower than the code can do.`,
  )
  const environment = {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    node: process.version,
    rabbitmq: settings.BENCH_CHAT_RABBITMQ ? rabbitmqVersion() : 'not run',
    connections: counts.join(', '),
    'chat-service': chatEntry,
    mode: settings.BENCH_CHAT_QUICK ? 'quick' : 'full',
  }
  const reportFile = await saveReport({
    name: 'chat',
    svg: chartSvg(results, settings.BENCH_CHAT_P99_LIMIT_MS),
    markdown: (chartFile, when) => markdown({ results, goals, floor, ratios, environment, notes, chartFile, when }),
  })
  say(`report: ${reportFile}`)
  process.stdout.write(
    `${JSON.stringify({
      bench: 'chat',
      mode: settings.BENCH_CHAT_QUICK ? 'quick' : 'full',
      ...Object.fromEntries(
        byCount.map(({ connections, own, ratios }) => [
          `connections${connections}`,
          { ...Object.fromEntries(own.map((result) => [jsonKey(result), figures(result)])), ratios },
        ]),
      ),
      kafkaFloor: floorFigures(floor),
      goals: Object.fromEntries(goals.map((goal) => [goal.name, goal.met])),
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
