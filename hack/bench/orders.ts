/**
 * `make bench-orders`: orders per second from `POST /api/orders` to PAID through the real
 * goods-service, order-service and payment-service processes, Kafka and MariaDB; the latency of
 * placement and of placement-to-paid; and the outbox lag under that load. In the same run, on
 * the same machine, two ceilings: (a) the bare MySQL transaction that inserts an order and its
 * outbox row, at the same concurrency, and (b) a bare kafkajs producer configured as the
 * platform's (idempotent, acks=all).
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
  isEvent,
  TOPIC_ORDERS,
  TOPIC_PAYMENTS,
  toKafkaRecord,
  topicNamespace,
} from '@timedeal/contracts'
import {
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
import { metricValue, percentile, round, saveReport } from './figures.ts'
import { ordersChartSvg, ordersMarkdown } from './orders-report.ts'
import { applyBenchTopic, applyCatalogTopics } from './topics.ts'

const settings = loadSettingsOrExit(
  z.object({
    ...kafkaSettings(),
    ...redisSettings(),
    /** Orders placed in the measured phase (after a warm-up of a twentieth as many). */
    BENCH_ORDERS: positiveInt(2_000),
    /** Concurrent buyers, each with one placement in flight; also the ceilings' concurrency. */
    BENCH_CLIENTS: positiveInt(32),
    /** The measured phase stops placing after this long, whatever it has left. */
    BENCH_SECONDS: positiveInt(90),
    /** How long to wait for the placed orders to be paid. */
    BENCH_PAID_TIMEOUT_SECONDS: positiveInt(90),
    BENCH_MYSQL_TRANSACTIONS: positiveInt(5_000),
    BENCH_KAFKA_EVENTS: positiveInt(30_000),
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
  await startGroupsAtEnd([groups.goods, groups.payment], [TOPIC_ORDERS], settings.KAFKA_BROKERS)
  await startGroupsAtEnd([groups.order], [TOPIC_PAYMENTS], settings.KAFKA_BROKERS)
  await startGroupsAtEnd([groups.watch], [TOPIC_ORDERS, TOPIC_PAYMENTS], settings.KAFKA_BROKERS)

  const common = { LOG_LEVEL: 'warn', JWT_JWKS_URL: issuer.jwksUrl, INTERNAL_API_SECRET: SECRET }
  const goods = await spawnService(entry('goods'), {
    ...common,
    MYSQL_DATABASE: goodsDb.name,
    STOCK_KEY_PREFIX: run.stockPrefix,
    ORDER_EVENTS_GROUP: groups.goods,
  })
  const payment = await spawnService(entry('payment'), {
    ...common,
    MYSQL_DATABASE: paymentDb.name,
    ORDER_EVENTS_GROUP: groups.payment,
  })
  run.processes.push(goods, payment)
  await Promise.all([waitUntilReady(goods, 60_000), waitUntilReady(payment, 60_000)])
  const order = await spawnService(entry('order'), {
    ...common,
    MYSQL_DATABASE: orderDb.name,
    GOODS_URL: goods.url,
    GOODS_INTERNAL_URL: goods.internalUrl,
    PAYMENT_EVENTS_GROUP: groups.order,
    ORDER_EXPIRY_ENABLED: 'false',
  })
  run.processes.push(order)
  await waitUntilReady(order, 60_000)
  return { goods, payment, order, orderDb }
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
}

/** Orders reach PAID when their OrderPaid is on Kafka; the watcher notes when. */
async function watchOrders(run: Run): Promise<Watch> {
  const watch: Watch = { paidAt: new Map(), chargedAt: new Map(), publishDelaysMs: [], measuring: false }
  const subscription = await run.bus.subscribe({
    groupId: run.groups.watch,
    topics: [TOPIC_ORDERS, TOPIC_PAYMENTS],
    handle: async ({ event }) => {
      const now = Date.now()
      if (isEvent(event, 'orderPaid')) watch.paidAt.set(event.data.orderId, now)
      else if (isEvent(event, 'paymentCompleted')) watch.chargedAt.set(event.data.orderId, now)
      else if (watch.measuring && isEvent(event, 'orderPlaced'))
        watch.publishDelaysMs.push(now - Date.parse(event.time))
    },
  })
  run.cleanups.push(() => subscription.close())
  await subscription.joined
  return watch
}

interface Placer {
  /** When each order placed since the last `clear` was sent. */
  readonly placedAt: Map<string, number>
  place(index: number): Promise<void>
  /** Waits until every placed order is paid, or the timeout. */
  allPaid(timeoutSeconds: number): Promise<void>
}

async function placer(run: Run, order: ServiceProcess, goodsId: string, watch: Watch): Promise<Placer> {
  const buyers = await Promise.all(
    Array.from({ length: run.clients }, (_, index) =>
      run.issuer.sign({ sub: `bench-buyer-${index}`, role: 'BUYER' }, { expiresIn: '1h' }),
    ),
  )
  const placedAt = new Map<string, number>()
  return {
    placedAt,
    async place(index) {
      const startedAt = Date.now()
      const response = await fetch(`${order.url}/api/orders`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${buyers[index % run.clients]}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify({ goodsId, quantity: 1 }),
      })
      const body = (await response.json()) as { id?: string; code?: string }
      if (response.status !== 201 || !body.id)
        throw new Error(`placement answered ${response.status} ${body.code ?? ''}`)
      placedAt.set(body.id, startedAt)
    },
    async allPaid(timeoutSeconds) {
      const deadline = Date.now() + timeoutSeconds * 1000
      while (Date.now() < deadline && [...placedAt.keys()].some((id) => !watch.paidAt.has(id))) await sleep(100)
    },
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

/** The measured phase: orders placed over HTTP until all are paid (or the timeout). */
async function ordersPhase(services: Services, orders: Placer, watch: Watch, clients: number) {
  const stopSampling = sampleOutboxLag(services)
  say('measuring')
  watch.measuring = true
  const phaseStart = Date.now()
  const placement = await drive(settings.BENCH_ORDERS, clients, settings.BENCH_SECONDS, orders.place)
  say(`placed ${placement.done} in ${round(placement.seconds)} s; waiting for them to be paid`)
  await orders.allPaid(settings.BENCH_PAID_TIMEOUT_SECONDS)
  watch.measuring = false
  const lagSamples = await stopSampling()

  const paid = [...orders.placedAt.entries()].filter(([id]) => watch.paidAt.has(id))
  const toPaidMs = paid.map(([id, started]) => (watch.paidAt.get(id) ?? started) - started)
  const toChargedMs = paid.map(([id, started]) => (watch.chargedAt.get(id) ?? started) - started)
  const lastPaid = Math.max(phaseStart, ...paid.map(([id]) => watch.paidAt.get(id) ?? 0))
  const orderMetrics = await (await fetch(`${services.order.url}/metrics`)).text()
  return {
    placement,
    paid: paid.length,
    toPaidMs,
    toChargedMs,
    lagSamples,
    ordersPerSecond: paid.length / ((lastPaid - phaseStart) / 1000),
    relayed: metricValue(orderMetrics, 'outbox_events_published_total'),
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
type MysqlCeiling = Awaited<ReturnType<typeof mysqlCeilingPhase>>
type KafkaCeiling = Awaited<ReturnType<typeof kafkaCeilingPhase>>

/** The figures of the JSON line and the report. */
function benchFigures(clients: number, orders: OrdersResult, watch: Watch, ceilings: MysqlCeiling & KafkaCeiling) {
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
    mysql_txn_per_s: round(mysqlPerSecond),
    mysql_txn_p50_ms: round(percentile(mysql.latenciesMs, 0.5)),
    mysql_txn_p99_ms: round(percentile(mysql.latenciesMs, 0.99)),
    kafka_batched_events_per_s: round(kafkaBatchedPerSecond),
    kafka_single_sends_per_s: round(kafkaSinglePerSecond),
    kafka_single_send_p99_ms: round(percentile(single.latenciesMs, 0.99)),
  }
  const ratios = {
    orders_vs_mysql_ceiling: round(ordersPerSecond / mysqlPerSecond, 3),
    placements_vs_mysql_ceiling: round(placement.done / placement.seconds / mysqlPerSecond, 3),
    orders_vs_kafka_batched_ceiling: round(ordersPerSecond / kafkaBatchedPerSecond, 3),
    orders_vs_kafka_single_send_ceiling: round(ordersPerSecond / kafkaSinglePerSecond, 3),
  }
  return { figures, ratios }
}

type BenchFigures = ReturnType<typeof benchFigures>

/** The chart and the Markdown report under bench-results/; returns the report's path. */
function writeReport(
  clients: number,
  orders: OrdersResult,
  ceilings: MysqlCeiling & KafkaCeiling,
  results: BenchFigures,
) {
  const { figures, ratios } = results
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
        { label: 'commit → on Kafka', p50Ms: figures.commit_to_kafka_p50_ms, p99Ms: figures.commit_to_kafka_p99_ms },
        { label: '(a) bare MySQL txn', p50Ms: figures.mysql_txn_p50_ms, p99Ms: figures.mysql_txn_p99_ms },
      ],
    ),
    markdown: (chartFile, when) =>
      ordersMarkdown({
        title: 'Orders: HTTP to PAID, with the MySQL and Kafka ceilings',
        when,
        chartFile,
        figures,
        ratios,
        environment: {
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
          `The median order waited ${round(figures.to_paid_p50_ms - figures.to_charged_p50_ms, 0)} ms between PaymentCompleted and OrderPaid, against ${round(figures.to_charged_p50_ms, 0)} ms from placement to PaymentCompleted: where that gap is large, order-service's payment consumer (per event: a read, the goods-service confirm call, one transaction; six partitions at a time) sets the pace, not the outbox or Kafka.`,
          ...(Object.keys(failures).length > 0 ? [`Placement failures: ${JSON.stringify(failures)}`] : []),
        ],
      }),
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
    say(`placing ${settings.BENCH_ORDERS} orders from ${run.clients} concurrent buyers (${cpus().length} CPU cores)`)
    const services = await startServices(run)
    const warmUp = Math.max(20, Math.ceil(settings.BENCH_ORDERS / 20))
    const goodsId = await createBenchGoods(run, services.goods, settings.BENCH_ORDERS + warmUp)
    const watch = await watchOrders(run)
    const orders = await placer(run, services.order, goodsId, watch)

    say(`warming up with ${warmUp} orders`)
    await drive(warmUp, run.clients, 60, orders.place)
    await orders.allPaid(60)
    orders.placedAt.clear()

    const measured = await ordersPhase(services, orders, watch, run.clients)
    const mysqlCeiling = await mysqlCeilingPhase(run, services.orderDb, goodsId)
    const kafkaCeiling = await kafkaCeilingPhase(run, goodsId)

    const ceilings = { ...mysqlCeiling, ...kafkaCeiling }
    const results = benchFigures(run.clients, measured, watch, ceilings)
    const reportFile = await writeReport(run.clients, measured, ceilings, results)
    say(`report: ${reportFile}`)
    process.stdout.write(`${JSON.stringify({ bench: 'orders', ...results.figures, ratios: results.ratios })}\n`)
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
