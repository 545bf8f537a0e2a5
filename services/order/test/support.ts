/**
 * Builds order-service in-process (as `main.ts` builds it) and runs goods-service and
 * payment-service as real processes, against the local servers, each with databases, consumer
 * groups and Redis keys of its own, so tests never see each other's rows.
 */
import { fileURLToPath } from 'node:url'
import { TOPIC_ORDERS, TOPIC_PAYMENTS } from '@timedeal/contracts'
import {
  createMetricsRegistry,
  createRedis,
  createServiceApp,
  type EventBus,
  ensureCatalogTopics,
  loadSettings,
} from '@timedeal/platform'
import {
  createTestDatabase,
  deleteRedisKeys,
  eventually,
  type ServiceProcess,
  spawnService,
  startGroupsAtEnd,
  type TestDatabase,
  type TestIssuer,
  testEventBus,
  testKafkaNames,
  testLogger,
  testSettings,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import type { Hono } from 'hono'
import { Kafka, logLevel } from 'kafkajs'
import type { Sequelize } from 'sequelize'
import { QueryTypes } from 'sequelize'
import { migrations } from '../src/adapters/migrations.ts'
import { type OrderService, startOrderService } from '../src/service.ts'
import { settingsSchema } from '../src/settings.ts'

export { startGroupsAtEnd }

export const INTERNAL_SECRET = 'test-internal-secret-0123456789'
const goodsEntry = fileURLToPath(new URL('../../goods/src/main.ts', import.meta.url))
const paymentEntry = fileURLToPath(new URL('../../payment/src/main.ts', import.meta.url))

export const rows = <T extends object>(db: Sequelize, sql: string, replacements: Record<string, unknown> = {}) =>
  db.query<T>(sql, { replacements, type: QueryTypes.SELECT })

export function testBus(clientId = 'order-test', brokers: readonly string[] = testSettings.KAFKA_BROKERS): EventBus {
  return testEventBus(clientId, brokers)
}

export const ensureTopics = (bus: EventBus): Promise<void> => ensureCatalogTopics(bus, testLogger)

export interface TestGoodsService {
  /** The running process; `resume` replaces it. */
  readonly process: ServiceProcess
  readonly url: string
  /** The internal listener, where order-service reserves stock. */
  readonly internalUrl: string
  readonly database: TestDatabase
  readonly groupId: string
  /** Creates goods on sale now, owned by `sellerId`; returns its id. */
  createGoods(sellerToken: string, terms: { price: number; stock: number; purchaseLimit?: number }): Promise<string>
  stockAvailable(goodsId: string): Promise<number>
  reservation(reservationId: string): Promise<{ state: string } | undefined>
  /** Stops the process, keeping its database and Redis keys: goods-service is down. */
  halt(): Promise<void>
  /** Starts it again on the same port with the same settings. */
  resume(): Promise<void>
  stop(): Promise<void>
}

/** goods-service as its own process, as `make dev` runs it; `env` adds or overrides settings. */
export async function spawnGoodsService(
  issuer: TestIssuer,
  env: Record<string, string> = {},
): Promise<TestGoodsService> {
  const database = await createTestDatabase('goods')
  const groupId = uniqueName('goods-test')
  const stockPrefix = uniqueName('test-stock')
  await startGroupsAtEnd([groupId], [TOPIC_ORDERS])
  const settings: Record<string, string> = {
    MYSQL_DATABASE: database.name,
    STOCK_KEY_PREFIX: stockPrefix,
    ORDER_EVENTS_GROUP: groupId,
    JWT_JWKS_URL: issuer.jwksUrl,
    INTERNAL_API_SECRET: INTERNAL_SECRET,
    LOG_LEVEL: 'warn',
    ...env,
  }
  const start = async () => {
    const started = await spawnService(goodsEntry, settings)
    try {
      await waitUntilReady(started, 60_000)
    } catch (error) {
      await started.stop('SIGKILL')
      throw error
    }
    return started
  }
  let child: ServiceProcess
  try {
    child = await start()
  } catch (error) {
    await database.drop()
    throw error
  }
  // A restart must come back where order-service was told to call it.
  settings.HTTP_PORT = new URL(child.url).port
  settings.INTERNAL_PORT = new URL(child.internalUrl).port
  const internal = { 'x-timedeal-internal': INTERNAL_SECRET }
  return {
    get process() {
      return child
    },
    url: child.url,
    internalUrl: child.internalUrl,
    database,
    groupId,
    async createGoods(sellerToken, terms) {
      const response = await fetch(`${child.url}/api/goods`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sellerToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: uniqueName('goods'),
          price: terms.price,
          initialStock: terms.stock,
          saleStartsAt: new Date(Date.now() - 60_000).toISOString(),
          saleEndsAt: new Date(Date.now() + 3600_000).toISOString(),
          purchaseLimit: terms.purchaseLimit ?? null,
        }),
      })
      if (response.status !== 201)
        throw new Error(`creating goods answered ${response.status}: ${await response.text()}`)
      return ((await response.json()) as { id: string }).id
    },
    async stockAvailable(goodsId) {
      const response = await fetch(`${child.url}/api/goods/${goodsId}/stock`)
      if (response.status !== 200) throw new Error(`stock answered ${response.status}`)
      return ((await response.json()) as { stockAvailable: number }).stockAvailable
    },
    async reservation(reservationId) {
      const response = await fetch(`${child.internalUrl}/internal/reservations/${reservationId}`, { headers: internal })
      if (response.status === 404) return undefined
      return (await response.json()) as { state: string }
    },
    async halt() {
      await child.stop('SIGTERM')
    },
    async resume() {
      child = await start()
    },
    async stop() {
      await child.stop('SIGTERM')
      await database.drop()
      const redis = createRedis({ url: testSettings.REDIS_URL, logger: testLogger })
      try {
        await deleteRedisKeys(redis, stockPrefix)
      } finally {
        await redis.quit()
      }
    },
  }
}

export interface CallOptions {
  readonly token: string
  readonly body?: unknown
  readonly headers?: Record<string, string>
}

export interface TestOrderService {
  readonly app: Hono
  readonly service: OrderService
  readonly database: TestDatabase
  readonly groupId: string
  call(method: string, path: string, options: CallOptions): Promise<Response>
  stop(): Promise<void>
}

/** order-service built exactly as `main.ts` builds it, with settings from the environment plus `overrides`. */
export async function startTestOrderService(
  goods: { readonly url: string; readonly internalUrl: string },
  issuer: TestIssuer,
  overrides: Record<string, string> = {},
): Promise<TestOrderService> {
  const database = await createTestDatabase('order', migrations)
  const groupId = uniqueName('order-test')
  await startGroupsAtEnd([groupId], [TOPIC_PAYMENTS])
  const settings = loadSettings(settingsSchema, {
    ...process.env,
    MYSQL_DATABASE: database.name,
    GOODS_URL: goods.url,
    GOODS_INTERNAL_URL: goods.internalUrl,
    INTERNAL_API_SECRET: INTERNAL_SECRET,
    JWT_JWKS_URL: issuer.jwksUrl,
    PAYMENT_EVENTS_GROUP: groupId,
    SCHEDULER_INTERVAL_MS: '200',
    ...overrides,
  })
  const bus = testBus('order-service-test')
  const metrics = createMetricsRegistry('order-service')
  const service = await startOrderService({
    settings,
    sequelize: database.sequelize,
    bus,
    logger: testLogger,
    metrics,
    verifier: issuer.verifier(),
  })
  const app = createServiceApp({ service: 'order-service', logger: testLogger, metrics })
  app.route('/', service.publicRoutes)
  return {
    app: app as unknown as Hono,
    service,
    database,
    groupId,
    call(method, path, options) {
      const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, ...options.headers }
      let body: string | undefined
      if (options.body !== undefined) {
        headers['content-type'] ??= 'application/json'
        body = JSON.stringify(options.body)
      }
      return Promise.resolve(app.request(path, { method, headers, body }))
    },
    async stop() {
      await service.stop()
      await database.drop()
    },
  }
}

export interface TestPaymentService {
  readonly process: ServiceProcess
  readonly database: TestDatabase
  readonly groupId: string
  payments(orderId: string): Promise<{ status: string; amount: number; refund_reference: string | null }[]>
  stop(): Promise<void>
}

/** payment-service as its own process, with its own database and consumer group. */
export async function spawnPaymentService(
  issuer: TestIssuer,
  env: Record<string, string> = {},
): Promise<TestPaymentService> {
  const database = await createTestDatabase('payment')
  const groupId = uniqueName('payment-test')
  await startGroupsAtEnd([groupId], [TOPIC_ORDERS])
  const child = await spawnService(paymentEntry, {
    MYSQL_DATABASE: database.name,
    JWT_JWKS_URL: issuer.jwksUrl,
    ORDER_EVENTS_GROUP: groupId,
    LOG_LEVEL: 'warn',
    ...env,
  })
  try {
    await waitUntilReady(child, 60_000)
  } catch (error) {
    await child.stop('SIGKILL')
    await database.drop()
    throw error
  }
  return {
    process: child,
    database,
    groupId,
    payments: (orderId) =>
      rows(database.sequelize, 'SELECT status, amount, refund_reference FROM payments WHERE order_id = :orderId', {
        orderId,
      }),
    async stop() {
      await child.stop('SIGTERM')
      await database.drop()
    },
  }
}

/**
 * Waits until every group has committed an offset past `record`: each has handled it (and
 * everything before it in its partition).
 */
export async function waitForGroupsPast(
  groups: readonly string[],
  record: { topic: string; partition: number; offset: string },
  timeoutMs = 30_000,
): Promise<void> {
  const kafka = new Kafka({
    clientId: 'order-test-progress',
    brokers: [...testSettings.KAFKA_BROKERS],
    logLevel: logLevel.NOTHING,
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    for (const groupId of groups) {
      await eventually(
        async () => {
          const [topic] = await admin.fetchOffsets({
            groupId: testKafkaNames.group(groupId),
            topics: [testKafkaNames.topic(record.topic)],
          })
          const committed = topic?.partitions.find((partition) => partition.partition === record.partition)?.offset
          return committed !== undefined && BigInt(committed) > BigInt(record.offset) ? true : undefined
        },
        timeoutMs,
        `group ${groupId} past ${record.topic}/${record.partition}@${record.offset}`,
      )
    }
  } finally {
    await admin.disconnect()
  }
}

export interface EventWatch {
  /** How many times each event id arrived. */
  readonly seen: Map<string, number>
  close(): Promise<void>
}

/** Counts every event arriving on `topic` from now on, in a group of its own. */
export async function watchEvents(
  topic: string,
  brokers: readonly string[] = testSettings.KAFKA_BROKERS,
  fromBeginning = false,
): Promise<EventWatch> {
  const groupId = uniqueName('order-test-watch')
  if (!fromBeginning) await startGroupsAtEnd([groupId], [topic], brokers)
  const seen = new Map<string, number>()
  const subscription = await testBus('order-test-watch', brokers).subscribe({
    groupId,
    topics: [topic],
    fromBeginning: true,
    handle: async ({ event }) => {
      seen.set(event.id, (seen.get(event.id) ?? 0) + 1)
    },
  })
  await subscription.joined
  return { seen, close: () => subscription.close() }
}
