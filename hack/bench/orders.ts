/**
 * `make bench-orders`: orders per second from `POST /api/orders` to PAID through the real
 * goods-service, order-service and payment-service processes, Kafka and MariaDB; the latency of
 * placement and of placement-to-paid; and the outbox lag under that load. Three phases of load:
 * closed-loop (a number of buyers, each waiting for its answer; the sustained orders/s to PAID),
 * open-loop (a fixed arrival rate, latencies from each order's
 * intended send time, and whether the queue drains after), and placement only (payment-service
 * paused, so nothing but placement competes for the CPU). Then a shorter closed-loop run with
 * every service profiled: the profiler costs the services a fifth or more of their CPU, so it
 * stays out of the measured phases. In the same run, on the same machine,
 * two ceilings: (a) the bare MySQL transaction that inserts an order and its outbox row, at the
 * same concurrency, and (b) a bare kafkajs producer configured as the platform's (idempotent,
 * acks=all). Requests come from undici pools in worker threads (load.ts).
 *
 * Loopback only, bounded in count and time, in databases, consumer groups, Redis keys and a
 * topic of its own, all removed afterwards. Writes a report and an SVG chart under
 * bench-results/ and ends with one JSON line.
 */
import { randomUUID } from 'node:crypto'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  allTopics,
  type CloudEvent,
  createEvent,
  events,
  TOPIC_ORDERS,
  TOPIC_PAYMENTS,
  toKafkaRecord,
  topicNamespace,
} from '@timedeal/contracts'
import {
  bool,
  createLogger,
  createRedis,
  type EventBus,
  eventBusFromSettings,
  kafkaSettings,
  loadSettingsOrExit,
  positiveInt,
  redisSettings,
  routeProcessWarnings,
  type TopicAdmin,
} from '@timedeal/platform'
import {
  connectTestMysql,
  createTestDatabase,
  deleteRedisKeys,
  eventually,
  freePort,
  type ServiceProcess,
  spawnService,
  startGroupsAtEnd,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
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
import { goal, metricValue, percentile, quickMode, round, saveReport } from './figures.ts'
import { type LoadMode, type LoadResults, type RequestPlan, runLoad } from './load.ts'
import { ordersChartSvg, ordersMarkdown } from './orders-report.ts'
import { applyBenchTopic, applyCatalogTopics } from './topics.ts'

const quick = quickMode()
const settings = loadSettingsOrExit(
  z.object({
    ...kafkaSettings(),
    ...redisSettings(),
    /** Orders placed in the closed-loop phase (after a warm-up of a twentieth as many). */
    BENCH_ORDERS: positiveInt(quick ? 400 : 2_000),
    /**
     * Concurrent buyers, each with one placement in flight; also the ceilings' concurrency. A sale
     * opening brings thousands; 64 keeps the two cores busy with placement p99 in the hundreds of ms.
     */
    BENCH_CLIENTS: positiveInt(64),
    /** Buyers (signed tokens) the orders rotate through; the bench goods has no purchase limit. */
    BENCH_BUYERS: positiveInt(500),
    /** The closed-loop phase stops placing after this long, whatever it has left. */
    BENCH_SECONDS: positiveInt(quick ? 30 : 90),
    /** How long to wait for the placed orders to be paid. */
    BENCH_PAID_TIMEOUT_SECONDS: positiveInt(90),
    /** Orders offered per second in the open-loop phase, and for how long. */
    BENCH_OPEN_RATE: positiveInt(200),
    BENCH_OPEN_SECONDS: positiveInt(quick ? 10 : 30),
    /** Unpaid orders are counted this long after the open-loop phase's last arrival (does the queue drain?). */
    BENCH_DRAIN_CHECK_SECONDS: positiveInt(10),
    /** How long to wait, after the open-loop phase, for every order of it to be paid. */
    BENCH_DRAIN_TIMEOUT_SECONDS: positiveInt(quick ? 90 : 180),
    /**
     * Orders placed in the placement-only phase (payment-service paused); as many as ceiling (a)'s
     * transactions: several seconds, so its start and end barely move the rate.
     */
    BENCH_PLACEMENT_ORDERS: positiveInt(quick ? 1_000 : 5_000),
    BENCH_MYSQL_TRANSACTIONS: positiveInt(quick ? 1_000 : 5_000),
    BENCH_KAFKA_EVENTS: positiveInt(quick ? 5_000 : 30_000),
    /** Worker threads of the load generator. */
    BENCH_LOAD_THREADS: positiveInt(1),
    /**
     * CPU profiles of the three services (1 ms sampling) over a closed-loop run of their own after
     * the measured phases, of BENCH_PROFILE_ORDERS orders.
     */
    BENCH_PROFILE: bool(true),
    BENCH_PROFILE_ORDERS: positiveInt(quick ? 400 : 1_000),
  }),
)

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const entry = (service: string) => join(repoRoot, 'services', service, 'src', 'main.ts')
const SECRET = 'bench-orders-internal-secret'
const logger = createLogger('bench-orders', 'warn')
routeProcessWarnings(logger)
const say = (line: string) => process.stdout.write(`[bench-orders] ${line}\n`)
/** Where the bench's topics are created (through the operator's apply, as `make dev` does). */
const topicTarget = {
  brokers: settings.KAFKA_BROKERS,
  topicPrefix: settings.KAFKA_TOPIC_PREFIX,
  clientId: 'bench-orders',
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Driven {
  readonly latenciesMs: number[]
  readonly failures: Map<string, number>
  readonly done: number
  readonly seconds: number
}

/** Runs `attempt` up to `total` times from `clients` loops, one call in flight each, until the deadline. */
async function drive(
  total: number,
  clients: number,
  seconds: number,
  attempt: (index: number) => Promise<void>,
): Promise<Driven> {
  const latenciesMs: number[] = []
  const failures = new Map<string, number>()
  const deadline = Date.now() + seconds * 1000
  let next = 0
  let done = 0
  const started = performance.now()
  let lastReport = Date.now()
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total && Date.now() < deadline) {
        const index = next++
        const begun = performance.now()
        try {
          await attempt(index)
          latenciesMs.push(performance.now() - begun)
          done += 1
        } catch (error) {
          const reason = error instanceof Error ? error.message.slice(0, 80) : String(error)
          failures.set(reason, (failures.get(reason) ?? 0) + 1)
        }
        if (Date.now() - lastReport > 5_000) {
          lastReport = Date.now()
          say(`  ${done}/${total} done`)
        }
      }
    }),
  )
  return { latenciesMs, failures, done, seconds: (performance.now() - started) / 1000 }
}

type Cleanup = () => Promise<unknown>

/** What one run owns and removes at the end, in reverse order of creation. */
interface Run {
  readonly clients: number
  readonly kafka: Kafka
  readonly bus: EventBus
  readonly admin: TopicAdmin
  readonly issuer: TestIssuer
  readonly databases: TestDatabase[]
  readonly processes: ServiceProcess[]
  readonly cleanups: Cleanup[]
  readonly stockPrefix: string
  readonly groups: { readonly goods: string; readonly order: string; readonly payment: string; readonly watch: string }
}

interface Services {
  readonly goods: ServiceProcess
  readonly payment: ServiceProcess
  readonly order: ServiceProcess
  readonly orderDb: TestDatabase
  /** Inspector ports by service, when profiling. */
  readonly inspectors: Record<string, number>
}

/** Each service's own process (not the bench's), for its CPU seconds and for pausing it. */
const servicePids = () => ({
  goodsService: childRunning(entry('goods')),
  orderService: childRunning(entry('order')),
  paymentService: childRunning(entry('payment')),
})

/** What the servers under the services used: MariaDB, Kafka, Redis as hack/infra.sh runs them. */
const serverPids = () => ({ mariadb: infraPid('mariadb'), kafka: infraPid('kafka'), redis: infraPid('redis') })

/** Settings that open a service's inspector on a free loopback port, noted in `inspectors`. */
async function inspectorEnv(name: string, inspectors: Record<string, number>): Promise<Record<string, string>> {
  if (!settings.BENCH_PROFILE) return {}
  const port = await freePort()
  inspectors[name] = port
  return { NODE_OPTIONS: `--inspect=127.0.0.1:${port}` }
}

/** Three databases, consumer groups that start at the end, and the three services as processes. */
async function startServices(run: Run): Promise<Services> {
  const { groups, issuer } = run
  const [goodsDb, orderDb, paymentDb] = await Promise.all([
    createTestDatabase('bench_goods'),
    createTestDatabase('bench_order'),
    createTestDatabase('bench_payment'),
  ])
  run.databases.push(goodsDb, orderDb, paymentDb)
  // Topics created a moment ago may not have a leader for every partition yet: asked again until they do.
  const atEnd = (groupIds: string[], topics: string[]) =>
    eventually(
      async () => {
        await startGroupsAtEnd(groupIds, topics, settings.KAFKA_BROKERS)
        return true
      },
      30_000,
      `consumer groups ${groupIds.join(', ')} at the end of ${topics.join(', ')}`,
    )
  await atEnd([groups.goods, groups.payment], [TOPIC_ORDERS])
  await atEnd([groups.order], [TOPIC_PAYMENTS])
  await atEnd([groups.watch], [TOPIC_ORDERS, TOPIC_PAYMENTS])

  const common = { LOG_LEVEL: 'warn', JWT_JWKS_URL: issuer.jwksUrl, INTERNAL_API_SECRET: SECRET }
  const inspectors: Record<string, number> = {}
  const goods = await spawnService(entry('goods'), {
    ...common,
    ...(await inspectorEnv('goods', inspectors)),
    MYSQL_DATABASE: goodsDb.name,
    STOCK_KEY_PREFIX: run.stockPrefix,
    ORDER_EVENTS_GROUP: groups.goods,
  })
  const payment = await spawnService(entry('payment'), {
    ...common,
    ...(await inspectorEnv('payment', inspectors)),
    MYSQL_DATABASE: paymentDb.name,
    ORDER_EVENTS_GROUP: groups.payment,
  })
  run.processes.push(goods, payment)
  await Promise.all([waitUntilReady(goods, 60_000), waitUntilReady(payment, 60_000)])
  const order = await spawnService(entry('order'), {
    ...common,
    ...(await inspectorEnv('order', inspectors)),
    MYSQL_DATABASE: orderDb.name,
    GOODS_URL: goods.url,
    GOODS_INTERNAL_URL: goods.internalUrl,
    // goods-service's stock namespace: where order-service hears that a goods sold out or has units again.
    STOCK_KEY_PREFIX: run.stockPrefix,
    PAYMENT_EVENTS_GROUP: groups.order,
    ORDER_EXPIRY_ENABLED: 'false',
  })
  run.processes.push(order)
  await waitUntilReady(order, 60_000)
  return { goods, payment, order, orderDb, inspectors }
}

/** One goods on sale with stock for every order of the run; returns its id. */
async function createBenchGoods(run: Run, goods: ServiceProcess, stock: number): Promise<string> {
  const sellerToken = await run.issuer.sign({ sub: 'bench-seller', role: 'SELLER' })
  const created = await fetch(`${goods.url}/api/goods`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sellerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'bench goods',
      price: 1_000,
      initialStock: stock,
      saleStartsAt: new Date(Date.now() - 60_000).toISOString(),
      saleEndsAt: new Date(Date.now() + 3600_000).toISOString(),
      purchaseLimit: null,
    }),
  })
  if (created.status !== 201) throw new Error(`creating the goods answered ${created.status}`)
  return ((await created.json()) as { id: string }).id
}

/** When each order's events reached Kafka, as a consumer of its own sees them. */
interface Watch {
  readonly paidAt: Map<string, number>
  readonly chargedAt: Map<string, number>
  /** From an OrderPlaced's creation to its delivery, noted only while `measuring`. */
  readonly publishDelaysMs: number[]
  measuring: boolean
  /** Leaves the group (what arrives meanwhile waits in Kafka), so the watcher takes no CPU. */
  pause(): Promise<void>
  /** Joins again where it left off. */
  resume(): Promise<void>
}

/**
 * Orders reach PAID when their OrderPaid is on Kafka; the watcher notes when. It is the bench's
 * instrument, not part of what is measured, so it costs as little as it can: a plain consumer that
 * reads each record's CloudEvents headers (type, subject: the order, time) and never its body.
 */
async function watchOrders(run: Run): Promise<Watch> {
  const names = topicNamespace(settings.KAFKA_TOPIC_PREFIX)
  const header = (value: Buffer | string | (Buffer | string)[] | undefined) =>
    value === undefined ? undefined : String(Array.isArray(value) ? value[0] : value)
  const noteFirst = (seen: Map<string, number>, orderId: string | undefined, at: number) => {
    // A record read again after the watcher rejoins keeps the time it was first seen.
    if (orderId !== undefined && !seen.has(orderId)) seen.set(orderId, at)
  }
  const subscribe = async () => {
    const consumer = run.kafka.consumer({ groupId: names.group(run.groups.watch) })
    await consumer.connect()
    await consumer.subscribe({ topics: [names.topic(TOPIC_ORDERS), names.topic(TOPIC_PAYMENTS)] })
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = Date.now()
        for (const { headers } of batch.messages) {
          const type = header(headers?.ce_type)
          if (type === events.orderPaid.type) noteFirst(watch.paidAt, header(headers?.ce_subject), now)
          else if (type === events.paymentCompleted.type) noteFirst(watch.chargedAt, header(headers?.ce_subject), now)
          else if (watch.measuring && type === events.orderPlaced.type) {
            const time = header(headers?.ce_time)
            if (time !== undefined) watch.publishDelaysMs.push(now - Date.parse(time))
          }
        }
      },
    })
    await joined
    return consumer
  }
  let consumer: Awaited<ReturnType<typeof subscribe>> | undefined
  const watch: Watch = {
    paidAt: new Map(),
    chargedAt: new Map(),
    publishDelaysMs: [],
    measuring: false,
    async pause() {
      await consumer?.disconnect()
      consumer = undefined
    },
    async resume() {
      consumer ??= await subscribe()
    },
  }
  run.cleanups.push(() => watch.pause())
  await watch.resume()
  return watch
}

/** Placements over the load generator, and when each order placed so far was meant to be sent. */
interface Placer {
  /** Order id → the intended send time (epoch ms) of its placement. */
  readonly placedAt: Map<string, number>
  place(mode: LoadMode): Promise<LoadResults>
  /** Waits until every order in `placedAt` is paid, or the timeout; true when all are. */
  allPaid(timeoutSeconds: number): Promise<boolean>
  unpaid(): number
}

async function placer(run: Run, order: ServiceProcess, goodsId: string, watch: Watch): Promise<Placer> {
  const buyers = await Promise.all(
    Array.from({ length: Math.max(run.clients, settings.BENCH_BUYERS) }, (_, index) =>
      run.issuer.sign({ sub: `bench-buyer-${index}`, role: 'BUYER' }, { expiresIn: '1h' }),
    ),
  )
  const plan: RequestPlan = {
    origin: order.url,
    method: 'POST',
    path: '/api/orders',
    headers: { authorization: 'Bearer {{buyer}}', 'idempotency-key': '{{uuid}}' },
    body: JSON.stringify({ goodsId, quantity: 1 }),
    rotate: { buyer: buyers },
    keep: 'id',
  }
  const placedAt = new Map<string, number>()
  const unpaid = () => {
    let count = 0
    for (const id of placedAt.keys()) if (!watch.paidAt.has(id)) count += 1
    return count
  }
  return {
    placedAt,
    unpaid,
    async place(mode) {
      const results = await runLoad({ plan, mode, threads: settings.BENCH_LOAD_THREADS, connections: 512 })
      results.status.forEach((status, index) => {
        const id = results.kept[index]
        if (status === 201 && id) placedAt.set(id, results.intendedAt[index] ?? 0)
      })
      return results
    },
    async allPaid(timeoutSeconds) {
      const deadline = Date.now() + timeoutSeconds * 1000
      while (Date.now() < deadline && unpaid() > 0) await sleep(100)
      return unpaid() === 0
    },
  }
}

/** Placement figures of a load run: successes, failures by reason, rate and latency of the successful ones. */
function placementFigures(results: LoadResults) {
  const failures = new Map<string, number>()
  const latenciesMs: number[] = []
  results.status.forEach((status, index) => {
    if (status === 201) latenciesMs.push(results.latencyMs[index] ?? 0)
    else {
      const reason =
        `${status === 0 ? 'no answer' : `placement answered ${status}`} ${results.kept[index] ?? ''}`.trim()
      failures.set(reason, (failures.get(reason) ?? 0) + 1)
    }
  })
  return { latenciesMs, failures, done: latenciesMs.length, seconds: results.seconds }
}

const closedLoop = (total: number, seconds: number): LoadMode => ({
  kind: 'closed',
  clients: settings.BENCH_CLIENTS,
  total,
  seconds,
})

/** CPU seconds per process and, when profiling, the services' profiles, from now until the result is called. */
async function measureCost(services: Services, label: string, profiled: boolean) {
  const stopProfile =
    profiled && Object.keys(services.inspectors).length > 0
      ? await profileServices(services.inspectors, label)
      : undefined
  const meter = cpuMeter({ ...servicePids(), ...serverPids() })
  const benchBefore = process.cpuUsage()
  return async (generatorMicros: number) => {
    // The process's figure covers every thread of it, the load generator's too: those count apart.
    const bench = process.cpuUsage(benchBefore)
    const cpuSeconds = meter({
      loadGenerator: generatorMicros / 1e6,
      benchProcess: Math.max(0, bench.user + bench.system - generatorMicros) / 1e6,
    })
    const profile: ProfileFigures | undefined = await stopProfile?.()
    return { cpuSeconds, profile }
  }
}

/** Outbox lag as order-service and payment-service report it, sampled every 250 ms until `stop`. */
function sampleOutboxLag(services: Services): () => Promise<{ order: number[]; payment: number[] }> {
  const samples = { order: [] as number[], payment: [] as number[] }
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      for (const [name, service] of [
        ['order', services.order],
        ['payment', services.payment],
      ] as const) {
        try {
          const lag = metricValue(await (await fetch(`${service.url}/metrics`)).text(), 'outbox_lag_seconds')
          if (lag !== undefined) samples[name].push(lag)
        } catch {
          // a missed sample is no figure
        }
      }
      await sleep(250)
    }
  })()
  return async () => {
    sampling = false
    await sampler
    return samples
  }
}

/** When orders stay unpaid, the end of what each service wrote (warnings and errors) says why. */
function showServiceLogs(services: Services, unpaid: number): void {
  say(`${unpaid} orders still unpaid; the services' last log lines:`)
  for (const [name, service] of [
    ['goods', services.goods],
    ['order', services.order],
    ['payment', services.payment],
  ] as const) {
    const { stdout, stderr } = service.output()
    const lines = `${stdout}${stderr}`.trim().split('\n').slice(-8)
    for (const line of lines) say(`  ${name}: ${line.slice(0, 300)}`)
  }
}

/** The closed-loop phase: orders placed over HTTP until all are paid (or the timeout). */
async function ordersPhase(services: Services, orders: Placer, watch: Watch) {
  const stopSampling = sampleOutboxLag(services)
  say(`closed loop: ${settings.BENCH_ORDERS} orders from ${settings.BENCH_CLIENTS} concurrent buyers`)
  watch.measuring = true
  orders.placedAt.clear()
  const cost = await measureCost(services, 'orders-closed', false)
  const phaseStart = Date.now()
  const results = await orders.place(closedLoop(settings.BENCH_ORDERS, settings.BENCH_SECONDS))
  const placement = placementFigures(results)
  say(`placed ${placement.done} in ${round(placement.seconds)} s; waiting for them to be paid`)
  if (!(await orders.allPaid(settings.BENCH_PAID_TIMEOUT_SECONDS))) showServiceLogs(services, orders.unpaid())
  const { cpuSeconds } = await cost(results.cpuMicros)
  watch.measuring = false
  const lagSamples = await stopSampling()

  const paid = [...orders.placedAt.entries()].filter(([id]) => watch.paidAt.has(id))
  const toPaidMs = paid.map(([id, started]) => (watch.paidAt.get(id) ?? started) - started)
  const toChargedMs = paid.map(([id, started]) => (watch.chargedAt.get(id) ?? started) - started)
  const lastPaid = Math.max(phaseStart, ...paid.map(([id]) => watch.paidAt.get(id) ?? 0))
  const orderMetrics = await (await fetch(`${services.order.url}/metrics`)).text()
  const ordersPerSecond = paid.length === 0 ? 0 : paid.length / ((lastPaid - phaseStart) / 1000)
  say(`closed loop: ${paid.length} paid, ${round(ordersPerSecond)} orders/s to PAID`)
  return {
    placement,
    paid: paid.length,
    toPaidMs,
    toChargedMs,
    lagSamples,
    ordersPerSecond,
    relayed: metricValue(orderMetrics, 'outbox_events_published_total'),
    cpuSeconds,
  }
}

/**
 * Where the services spend their CPU: a closed-loop run like the measured one, with every service
 * profiled, after the measured phases (whose figures the profiler would lower). Undefined when
 * profiling is off.
 */
async function profiledPhase(services: Services, orders: Placer) {
  if (Object.keys(services.inspectors).length === 0) return undefined
  const total = settings.BENCH_PROFILE_ORDERS
  say(`profiled: ${total} orders from ${settings.BENCH_CLIENTS} buyers, every service profiled`)
  orders.placedAt.clear()
  const cost = await measureCost(services, 'orders-profiled', true)
  const results = await orders.place(closedLoop(total, settings.BENCH_SECONDS))
  const paid = await orders.allPaid(settings.BENCH_PAID_TIMEOUT_SECONDS)
  const { cpuSeconds, profile } = await cost(results.cpuMicros)
  return profile ? { orders: placementFigures(results).done, paid, cpuSeconds, profile } : undefined
}

/**
 * The open-loop phase: orders arrive at a fixed rate whatever the answers do; placement and
 * placement → PAID count from each order's intended send time. After the last arrival: how many
 * are still unpaid, a few seconds later, and how long until the last is paid.
 */
async function openLoopPhase(services: Services, orders: Placer, watch: Watch) {
  const rate = settings.BENCH_OPEN_RATE
  const seconds = settings.BENCH_OPEN_SECONDS
  say(`open loop: ${rate} orders/s offered for ${seconds} s`)
  orders.placedAt.clear()
  const cost = await measureCost(services, 'orders-open', false)
  const results = await orders.place({ kind: 'open', rate, seconds })
  const placement = placementFigures(results)
  const lastArrival = Math.min(...results.intendedAt) + seconds * 1000
  say(
    `open loop: placed ${placement.done}; waiting up to ${settings.BENCH_DRAIN_TIMEOUT_SECONDS} s for them to be paid`,
  )
  const drained = await orders.allPaid(settings.BENCH_DRAIN_TIMEOUT_SECONDS)
  const { cpuSeconds } = await cost(results.cpuMicros)
  // Counted afterwards from when each OrderPaid arrived, so a slow placement answer cannot hide an unpaid order.
  const unpaidAt = (instant: number) =>
    [...orders.placedAt.keys()].filter((id) => (watch.paidAt.get(id) ?? Number.POSITIVE_INFINITY) > instant).length
  const unpaidAtLastArrival = unpaidAt(lastArrival)
  const unpaidAfterCheck = unpaidAt(lastArrival + settings.BENCH_DRAIN_CHECK_SECONDS * 1000)
  say(
    `open loop: ${unpaidAfterCheck} unpaid ${settings.BENCH_DRAIN_CHECK_SECONDS} s after the last arrival; drained: ${drained}`,
  )
  const paid = [...orders.placedAt.entries()].filter(([id]) => watch.paidAt.has(id))
  const toPaidMs = paid.map(([id, intended]) => (watch.paidAt.get(id) ?? intended) - intended)
  const lastPaid = Math.max(lastArrival, ...paid.map(([id]) => watch.paidAt.get(id) ?? 0))
  return {
    figures: {
      offered_per_s: rate,
      seconds,
      offered: results.status.length,
      placed: placement.done,
      placement_failures: results.status.length - placement.done,
      achieved_placements_per_s: round(placement.done / seconds),
      placement_p50_ms: round(percentile(placement.latenciesMs, 0.5)),
      placement_p99_ms: round(percentile(placement.latenciesMs, 0.99)),
      paid: paid.length,
      to_paid_p50_ms: round(percentile(toPaidMs, 0.5)),
      to_paid_p99_ms: round(percentile(toPaidMs, 0.99)),
      to_paid_max_ms: round(Math.max(0, ...toPaidMs)),
      unpaid_at_last_arrival: unpaidAtLastArrival,
      drain_check_s: settings.BENCH_DRAIN_CHECK_SECONDS,
      unpaid_after_drain_check: unpaidAfterCheck,
      drained,
      drain_s_after_last_arrival: drained ? round((lastPaid - lastArrival) / 1000, 2) : null,
    },
    failures: Object.fromEntries(placement.failures),
    cpuSeconds,
  }
}

/**
 * The placement-only phase: payment-service is paused (SIGSTOP), so the CPU goes to placement
 * (order-service, goods-service's reservation, MySQL, the relay) and not to the pipeline behind
 * it; then it resumes and the orders placed here must still be paid. The bench's own watcher
 * stands aside too, as nothing of the bench but the load generator runs beside ceiling (a).
 */
async function placementOnlyPhase(services: Services, orders: Placer, watch: Watch) {
  const payment = servicePids().paymentService
  say(
    `placement only: ${settings.BENCH_PLACEMENT_ORDERS} orders from ${settings.BENCH_CLIENTS} buyers, payment-service paused`,
  )
  orders.placedAt.clear()
  await watch.pause()
  if (payment !== undefined) process.kill(payment, 'SIGSTOP')
  let results: LoadResults
  let cost: Awaited<ReturnType<Awaited<ReturnType<typeof measureCost>>>>
  try {
    const measure = await measureCost(services, 'orders-placement', false)
    results = await orders.place(closedLoop(settings.BENCH_PLACEMENT_ORDERS, settings.BENCH_SECONDS))
    cost = await measure(results.cpuMicros)
  } finally {
    if (payment !== undefined) process.kill(payment, 'SIGCONT')
  }
  await watch.resume()
  const placement = placementFigures(results)
  say(`placement only: ${round(placement.done / placement.seconds)} placements/s; payment-service resumed`)
  const drained = await orders.allPaid(settings.BENCH_PAID_TIMEOUT_SECONDS)
  return {
    placement,
    perSecond: placement.done / placement.seconds,
    paidAfterResume: drained,
    paused: payment !== undefined,
    cpuSeconds: cost.cpuSeconds,
  }
}

/** An OrderPlaced like order-service writes, for the ceilings. */
const sampleEvent = (orderId: string, goodsId: string): CloudEvent =>
  createEvent('orderPlaced', {
    source: '/order-service',
    subject: orderId,
    data: {
      orderId,
      buyerId: 'bench-buyer',
      goodsId,
      reservationId: `rsv-${orderId}`,
      quantity: 1,
      unitPrice: 1_000,
      totalAmount: 1_000,
      placedAt: new Date().toISOString(),
    },
  })

/** Ceiling (a): the bare MySQL transaction at the same concurrency, on a copy of order-service's tables. */
async function mysqlCeilingPhase(run: Run, orderDb: TestDatabase, goodsId: string) {
  const { clients } = run
  say(`ceiling (a): ${settings.BENCH_MYSQL_TRANSACTIONS} bare order+outbox transactions, ${clients} concurrent`)
  for (const service of run.processes.splice(0)) await service.stop('SIGTERM')
  const ceilingDb = await createTestDatabase('bench_ceiling')
  run.databases.push(ceilingDb)
  await ceilingDb.sequelize.query(`CREATE TABLE orders LIKE \`${orderDb.name}\`.orders`)
  await ceilingDb.sequelize.query(`CREATE TABLE outbox LIKE \`${orderDb.name}\`.outbox`)
  const ceilingClient = connectTestMysql(ceilingDb.name, clients)
  run.cleanups.push(() => ceilingClient.close())
  const mysql = await drive(settings.BENCH_MYSQL_TRANSACTIONS, clients, 60, async () => {
    const id = randomUUID()
    const event = sampleEvent(id, goodsId)
    const now = new Date()
    await ceilingClient.transaction(async (transaction) => {
      await ceilingClient.query(
        `INSERT INTO orders (id, buyer_id, seller_id, goods_id, reservation_id, idempotency_key, quantity, unit_price,
           total_amount, state, version, placed_at, pay_by, state_since)
         VALUES (?, 'bench-buyer', 'bench-seller', ?, ?, ?, 1, 1000, 1000, 'PENDING_PAYMENT', 1, ?, ?, ?)`,
        { replacements: [id, goodsId, `rsv-${id}`, id, now, new Date(now.getTime() + 600_000), now], transaction },
      )
      await ceilingClient.query(
        'INSERT INTO outbox (event_id, topic, message_key, event_type, event, created_at) VALUES (?, ?, ?, ?, ?, ?)',
        { replacements: [event.id, TOPIC_ORDERS, id, event.type, JSON.stringify(event), now], transaction },
      )
    })
  })
  if (mysql.failures.size > 0) {
    throw new Error(`the MySQL ceiling's transactions failed: ${JSON.stringify(Object.fromEntries(mysql.failures))}`)
  }
  return { mysql, mysqlPerSecond: mysql.done / mysql.seconds }
}

/** Ceiling (b): a bare kafkajs producer, configured as the platform's publisher, in batches and one by one. */
async function kafkaCeilingPhase(run: Run, goodsId: string) {
  say(`ceiling (b): ${settings.BENCH_KAFKA_EVENTS} events through a bare kafkajs producer`)
  const benchTopic = uniqueName('timedeal.bench.orders').replaceAll('_', '.')
  await applyBenchTopic(topicTarget, benchTopic, 6)
  run.cleanups.push(() => run.admin.deleteTopics([benchTopic]))
  // The bare producer below talks to the broker directly, so it names the topic as the broker knows it.
  const benchTopicOnBroker = topicNamespace(settings.KAFKA_TOPIC_PREFIX).topic(benchTopic)
  const producer = run.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  run.cleanups.push(() => producer.disconnect())
  const records = Array.from({ length: 500 }, () => toKafkaRecord(sampleEvent(randomUUID(), goodsId)))
  const batches = Math.ceil(settings.BENCH_KAFKA_EVENTS / records.length)
  const batched = await drive(batches, 1, 60, async () => {
    await producer.send({ topic: benchTopicOnBroker, acks: -1, messages: records })
  })
  if (batched.failures.size > 0) {
    throw new Error(`the Kafka ceiling's sends failed: ${JSON.stringify(Object.fromEntries(batched.failures))}`)
  }
  const singles = Math.min(settings.BENCH_KAFKA_EVENTS, 5_000)
  const single = await drive(singles, run.clients, 60, async (index) => {
    const record = records[index % records.length]
    if (record) await producer.send({ topic: benchTopicOnBroker, acks: -1, messages: [record] })
  })
  return {
    kafkaBatchedPerSecond: (batched.done * records.length) / batched.seconds,
    kafkaSinglePerSecond: single.done / single.seconds,
    single,
  }
}

type OrdersResult = Awaited<ReturnType<typeof ordersPhase>>
type ProfiledResult = Awaited<ReturnType<typeof profiledPhase>>
type OpenResult = Awaited<ReturnType<typeof openLoopPhase>>
type PlacementOnlyResult = Awaited<ReturnType<typeof placementOnlyPhase>>
type MysqlCeiling = Awaited<ReturnType<typeof mysqlCeilingPhase>>
type KafkaCeiling = Awaited<ReturnType<typeof kafkaCeilingPhase>>

/** The figures of the JSON line and the report. */
function benchFigures(
  clients: number,
  orders: OrdersResult,
  watch: Watch,
  ceilings: MysqlCeiling & KafkaCeiling,
  open: OpenResult,
  placementOnly: PlacementOnlyResult,
  profiled: ProfiledResult,
) {
  const { placement, toPaidMs, toChargedMs, lagSamples, ordersPerSecond } = orders
  const { mysql, mysqlPerSecond, kafkaBatchedPerSecond, kafkaSinglePerSecond, single } = ceilings
  const figures = {
    orders: placement.done,
    clients,
    paid: orders.paid,
    placement_failures: [...placement.failures.values()].reduce((sum, count) => sum + count, 0),
    orders_per_s: round(ordersPerSecond),
    placements_per_s: round(placement.done / placement.seconds),
    placement_p50_ms: round(percentile(placement.latenciesMs, 0.5)),
    placement_p99_ms: round(percentile(placement.latenciesMs, 0.99)),
    to_charged_p50_ms: round(percentile(toChargedMs, 0.5)),
    to_charged_p99_ms: round(percentile(toChargedMs, 0.99)),
    to_paid_p50_ms: round(percentile(toPaidMs, 0.5)),
    to_paid_p99_ms: round(percentile(toPaidMs, 0.99)),
    commit_to_kafka_p50_ms: round(percentile(watch.publishDelaysMs, 0.5)),
    commit_to_kafka_p99_ms: round(percentile(watch.publishDelaysMs, 0.99)),
    order_outbox_lag_max_s: round(Math.max(0, ...lagSamples.order), 3),
    order_outbox_lag_p50_s: round(percentile(lagSamples.order, 0.5), 3),
    payment_outbox_lag_max_s: round(Math.max(0, ...lagSamples.payment), 3),
    placement_only_per_s: round(placementOnly.perSecond),
    placement_only_p50_ms: round(percentile(placementOnly.placement.latenciesMs, 0.5)),
    placement_only_p99_ms: round(percentile(placementOnly.placement.latenciesMs, 0.99)),
    placement_only_failures: [...placementOnly.placement.failures.values()].reduce((sum, count) => sum + count, 0),
    placement_only_paid_after_resume: placementOnly.paidAfterResume,
    mysql_txn_per_s: round(mysqlPerSecond),
    mysql_txn_p50_ms: round(percentile(mysql.latenciesMs, 0.5)),
    mysql_txn_p99_ms: round(percentile(mysql.latenciesMs, 0.99)),
    kafka_batched_events_per_s: round(kafkaBatchedPerSecond),
    kafka_single_sends_per_s: round(kafkaSinglePerSecond),
    kafka_single_send_p99_ms: round(percentile(single.latenciesMs, 0.99)),
  }
  const ratios = {
    placementVsOrderOutboxCeiling: round(placementOnly.perSecond / mysqlPerSecond, 3),
    orders_vs_mysql_ceiling: round(ordersPerSecond / mysqlPerSecond, 3),
    placements_vs_mysql_ceiling: round(placement.done / placement.seconds / mysqlPerSecond, 3),
    orders_vs_kafka_batched_ceiling: round(ordersPerSecond / kafkaBatchedPerSecond, 3),
    orders_vs_kafka_single_send_ceiling: round(ordersPerSecond / kafkaSinglePerSecond, 3),
  }
  const goals = {
    ordersPerSecondToPaid: goal(figures.orders_per_s, 300, 'atLeast'),
    placementVsOrderOutboxCeiling: goal(ratios.placementVsOrderOutboxCeiling, 0.5, 'atLeast'),
    // Orders never paid have no latency: the p99 stands only once every order of the phase is paid.
    openLoopToPaidP99Ms: goal(open.figures.drained ? open.figures.to_paid_p99_ms : null, 2_000, 'atMost'),
    openLoopDrains: goal(open.figures.unpaid_after_drain_check, 0, 'atMost'),
  }
  const cpuSeconds = {
    closed: orders.cpuSeconds,
    open: open.cpuSeconds,
    placementOnly: placementOnly.cpuSeconds,
    ...(profiled ? { profiled: profiled.cpuSeconds } : {}),
  }
  const profiles = profiled ? topOf(profiled.profile, 5) : {}
  return { figures, ratios, open: open.figures, goals, cpuSeconds, profiles }
}

type BenchFigures = ReturnType<typeof benchFigures>

/** The chart and the Markdown report under bench-results/; returns the report's path. */
function writeReport(
  clients: number,
  orders: OrdersResult,
  ceilings: MysqlCeiling & KafkaCeiling,
  results: BenchFigures,
  extra: { readonly open: OpenResult; readonly placementOnly: PlacementOnlyResult; readonly profiled: ProfiledResult },
) {
  const { figures, ratios, open } = results
  const failures = Object.fromEntries(orders.placement.failures)
  return saveReport({
    name: 'orders',
    svg: ordersChartSvg(
      'Timedeal orders: HTTP to PAID, and the ceilings under it',
      [
        {
          label: 'orders, HTTP → PAID',
          perSecond: orders.ordersPerSecond,
          note: `${orders.paid} orders, ${clients} buyers`,
        },
        {
          label: 'placement only (payment paused)',
          perSecond: extra.placementOnly.perSecond,
          note: `${extra.placementOnly.placement.done} placements, ${clients} buyers`,
        },
        {
          label: `open loop, ${open.offered_per_s}/s offered`,
          perSecond: open.achieved_placements_per_s,
          note: `${open.placed} placed in ${open.seconds} s; drained: ${open.drained}`,
        },
        {
          label: '(a) bare MySQL order+outbox txn',
          perSecond: ceilings.mysqlPerSecond,
          note: `${ceilings.mysql.done} transactions, ${clients} concurrent`,
        },
        {
          label: '(b) bare kafkajs, batches of 500',
          perSecond: ceilings.kafkaBatchedPerSecond,
          note: 'acks=all, idempotent, one request in flight',
        },
        {
          label: '(b) bare kafkajs, one event per send',
          perSecond: ceilings.kafkaSinglePerSecond,
          note: `${clients} concurrent senders`,
        },
      ],
      [
        { label: 'placement (HTTP)', p50Ms: figures.placement_p50_ms, p99Ms: figures.placement_p99_ms },
        { label: 'placement → charged', p50Ms: figures.to_charged_p50_ms, p99Ms: figures.to_charged_p99_ms },
        { label: 'placement → PAID', p50Ms: figures.to_paid_p50_ms, p99Ms: figures.to_paid_p99_ms },
        { label: 'open loop: placement', p50Ms: open.placement_p50_ms, p99Ms: open.placement_p99_ms },
        { label: 'open loop: placement → PAID', p50Ms: open.to_paid_p50_ms, p99Ms: open.to_paid_p99_ms },
        { label: 'commit → on Kafka', p50Ms: figures.commit_to_kafka_p50_ms, p99Ms: figures.commit_to_kafka_p99_ms },
        { label: '(a) bare MySQL txn', p50Ms: figures.mysql_txn_p50_ms, p99Ms: figures.mysql_txn_p99_ms },
      ],
    ),
    markdown: (chartFile, when) =>
      ordersMarkdown({
        title: 'Orders: HTTP to PAID, with the MySQL and Kafka ceilings',
        when,
        chartFile,
        figures: {
          ...figures,
          ...Object.fromEntries(Object.entries(open).map(([name, value]) => [`open_${name}`, String(value)])),
        },
        ratios,
        environment: {
          mode: quick ? 'quick (BENCH_QUICK)' : 'full',
          'load generator': `undici keep-alive pools in ${settings.BENCH_LOAD_THREADS} worker thread(s)`,
          'CPU cores': String(cpus().length),
          Node: process.version,
          Kafka: settings.KAFKA_BROKERS.join(','),
          'events relayed by order-service': String(orders.relayed ?? 'n/a'),
        },
        notes: [
          'Orders per second count orders whose OrderPaid reached Kafka, from the first placement of the measured phase to the last OrderPaid.',
          'Placement is the HTTP round trip of POST /api/orders: goods lookup, stock reservation (goods-service, Redis), the order and its outbox row in one MySQL transaction.',
          'Placement → charged ends when PaymentCompleted reaches Kafka (payment-service consumed OrderPlaced, charged the sandbox, committed and relayed); placement → PAID ends when OrderPaid does (order-service consumed the payment, confirmed the reservation, committed and relayed).',
          'Commit → on Kafka is the time from an OrderPlaced event being created (just before its commit) to a consumer receiving it.',
          'Outbox lag is the age of the oldest unpublished row as each service reports it on /metrics (outbox_lag_seconds), sampled every 250 ms.',
          'Every process (three services, MariaDB, Kafka, Redis, the load generator) shares the same cores, so the ratios say where time goes, not what a cluster would do.',
          `The median order waited ${round(figures.to_paid_p50_ms - figures.to_charged_p50_ms, 0)} ms between PaymentCompleted and OrderPaid, against ${round(figures.to_charged_p50_ms, 0)} ms from placement to PaymentCompleted: where that gap is large, order-service's payment consumer (per polled batch: one read of its orders, one confirmations call to goods-service, one transaction) sets the pace, not the outbox or Kafka.`,
          'CPU seconds per process come from /proc/<pid>/stat over the measured stretch; MariaDB, Kafka and Redis are the shared local servers, so theirs include anything else that used them meanwhile; machineBusyCores is the whole machine (/proc/stat).',
          `Open loop: ${open.offered_per_s} orders/s offered for ${open.seconds} s by a fixed schedule, whatever the answers do; placement and placement → PAID count from each order's intended send time, so a backlog shows as latency. Unpaid orders are counted ${open.drain_check_s} s after the last arrival; the drain time runs from the last arrival to the last OrderPaid.`,
          "Placement only: payment-service is paused (SIGSTOP) while the buyers place orders, so placement (order-service, the reservation in goods-service, the MySQL transaction, the relay) has the CPU to itself; the bench's Kafka watcher leaves its group meanwhile (it rejoins where it left off), so beside the services only the load generator runs, as beside ceiling (a). placementVsOrderOutboxCeiling sets it beside the bare order+outbox transaction at the same concurrency. After it resumes, those orders must still be paid.",
          "Load generator: undici keep-alive pools in worker threads of the bench process (load.ts); each placement carries a buyer token (round robin over BENCH_BUYERS) and a fresh Idempotency-Key, which a per-request template fills in. loadGenerator CPU is its threads' own; benchProcess is the rest of the bench process (the Kafka watcher, metrics sampling, starting the generator's threads), not counting the generator's threads again.",
          `Goals: ${Object.entries(results.goals)
            .map(([name, entry]) => `${name} ${entry.met ? 'met' : 'not met'} (${entry.value})`)
            .join('; ')}.`,
          ...(Object.keys(failures).length > 0 ? [`Placement failures: ${JSON.stringify(failures)}`] : []),
          ...(Object.keys(extra.open.failures).length > 0
            ? [`Open-loop placement failures: ${JSON.stringify(extra.open.failures)}`]
            : []),
        ],
      }) +
      (extra.profiled
        ? profileMarkdown(
            `Where each service spent its CPU: a profiled closed-loop run of ${extra.profiled.orders} orders after the measured phases (every one paid: ${extra.profiled.paid}); the CPU seconds are the profiled run's, the profiler's own cost included`,
            extra.profiled.profile,
            extra.profiled.cpuSeconds,
          ).join('\n')
        : ''),
  })
}

/** Removes what the run created: processes, clients, Redis keys, databases and its topics. */
async function cleanUp(run: Run): Promise<void> {
  for (const service of run.processes) await service.stop('SIGTERM').catch(() => undefined)
  for (const cleanup of run.cleanups.reverse()) await cleanup().catch(() => undefined)
  const redis = createRedis({ url: settings.REDIS_URL, logger })
  await deleteRedisKeys(redis, run.stockPrefix).catch(() => undefined)
  await redis.quit()
  for (const database of run.databases) await database.drop().catch(() => undefined)
  if (settings.KAFKA_TOPIC_PREFIX !== '') {
    await run.admin.deleteTopics(allTopics().map((topic) => topic.name)).catch(() => undefined)
  }
  await run.admin.close()
  await run.issuer.close()
}

async function main(): Promise<void> {
  // Its own topics and groups (the Makefile gives a fresh prefix), so `make dev` never reads bench orders.
  const bus = eventBusFromSettings(settings, 'bench-orders', logger)
  const admin = await bus.admin()
  await applyCatalogTopics(topicTarget)
  const run: Run = {
    clients: settings.BENCH_CLIENTS,
    kafka: new Kafka({ clientId: 'bench-orders', brokers: [...settings.KAFKA_BROKERS], logLevel: logLevel.NOTHING }),
    bus,
    admin,
    issuer: await startTestIssuer(),
    databases: [],
    processes: [],
    cleanups: [],
    stockPrefix: uniqueName('bench-stock'),
    groups: {
      goods: uniqueName('bench-goods'),
      order: uniqueName('bench-order'),
      payment: uniqueName('bench-payment'),
      watch: uniqueName('bench-watch'),
    },
  }
  try {
    say(`${quick ? 'quick run: ' : ''}${cpus().length} CPU cores`)
    const services = await startServices(run)
    const warmUp = Math.max(20, Math.ceil(settings.BENCH_ORDERS / 20))
    const openOrders = settings.BENCH_OPEN_RATE * settings.BENCH_OPEN_SECONDS
    const stock =
      warmUp + settings.BENCH_ORDERS + openOrders + settings.BENCH_PLACEMENT_ORDERS + settings.BENCH_PROFILE_ORDERS
    const goodsId = await createBenchGoods(run, services.goods, stock)
    const watch = await watchOrders(run)
    const orders = await placer(run, services.order, goodsId, watch)

    say(`warming up with ${warmUp} orders`)
    await orders.place(closedLoop(warmUp, 60))
    await orders.allPaid(60)

    const measured = await ordersPhase(services, orders, watch)
    const open = await openLoopPhase(services, orders, watch)
    const placementOnly = await placementOnlyPhase(services, orders, watch)
    const profiled = await profiledPhase(services, orders)
    const mysqlCeiling = await mysqlCeilingPhase(run, services.orderDb, goodsId)
    const kafkaCeiling = await kafkaCeilingPhase(run, goodsId)

    const ceilings = { ...mysqlCeiling, ...kafkaCeiling }
    const results = benchFigures(run.clients, measured, watch, ceilings, open, placementOnly, profiled)
    const reportFile = await writeReport(run.clients, measured, ceilings, results, { open, placementOnly, profiled })
    say(`report: ${reportFile}`)
    const { figures, ratios, goals, cpuSeconds, profiles } = results
    process.stdout.write(
      `${JSON.stringify({ bench: 'orders', ...figures, open: results.open, ratios, goals, cpuSeconds, profiles, quick })}\n`,
    )
  } finally {
    await cleanUp(run)
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`[bench-orders] ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
