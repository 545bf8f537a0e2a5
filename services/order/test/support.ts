/**
 * Builds order-service in-process (as `main.ts` builds it) and runs goods-service and
 * payment-service as real processes, against the local servers, each with databases, consumer
 * groups and Redis keys of its own, so tests never see each other's rows.
 */
import { fileURLToPath } from 'node:url'
import { TOPIC_ORDERS, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { type EventBus, loadSettings, selectRows } from '@timedeal/platform'
import {
  callApp,
  connectTestRedis,
  type EventWatch,
  type CallOptions as PlatformCallOptions,
  prepareServiceUnderTest,
  type ServiceProcess,
  spawnReadyService,
  startGroupsAtEnd,
  startInProcess,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  testEventBus,
  testSettings,
  uniqueName,
  waitForGroupsPast,
  watchEvents,
} from '@timedeal/platform/testing'
import type { Hono } from 'hono'
import { migrations } from '../src/adapters/migrations.ts'
import { type OrderService, startOrderService } from '../src/service.ts'
import { settingsSchema } from '../src/settings.ts'

export { type EventWatch, startGroupsAtEnd, waitForGroupsPast, watchEvents }

export const INTERNAL_SECRET = 'test-internal-secret-0123456789'
const goodsEntry = fileURLToPath(new URL('../../goods/src/main.ts', import.meta.url))
const paymentEntry = fileURLToPath(new URL('../../payment/src/main.ts', import.meta.url))

export const rows = selectRows

export function testBus(clientId = 'order-test', brokers: readonly string[] = testSettings.KAFKA_BROKERS): EventBus {
  return testEventBus(clientId, brokers)
}

export interface TestGoodsService {
  /** The running process; `resume` replaces it. */
  readonly process: ServiceProcess
  readonly url: string
  /** The internal listener, where order-service reserves stock. */
  readonly internalUrl: string
  /** Its STOCK_KEY_PREFIX, which also names the channel where it says units came back. */
  readonly stockPrefix: string
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
  const owned = await prepareServiceUnderTest({
    name: 'goods',
    issuer,
    consumes: { groupSetting: 'ORDER_EVENTS_GROUP', topics: [TOPIC_ORDERS] },
    redisPrefixSetting: 'STOCK_KEY_PREFIX',
  })
  const { database, groupId } = owned
  const settings: Record<string, string> = {
    ...owned.env,
    INTERNAL_API_SECRET: INTERNAL_SECRET,
    LOG_LEVEL: 'warn',
    ...env,
  }
  const start = () => spawnReadyService(goodsEntry, settings)
  let child: ServiceProcess
  try {
    child = await start()
  } catch (error) {
    await owned.release()
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
    stockPrefix: settings.STOCK_KEY_PREFIX ?? '',
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
      await owned.release()
    },
  }
}

export interface CallOptions extends PlatformCallOptions {
  readonly token: string
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
  goods: { readonly url: string; readonly internalUrl: string; readonly stockPrefix?: string },
  issuer: TestIssuer,
  overrides: Record<string, string> = {},
): Promise<TestOrderService> {
  const owned = await prepareServiceUnderTest({
    name: 'order',
    migrations,
    issuer,
    consumes: { groupSetting: 'PAYMENT_EVENTS_GROUP', topics: [TOPIC_PAYMENTS] },
  })
  const { database, groupId } = owned
  const settings = loadSettings(settingsSchema, {
    ...process.env,
    ...owned.env,
    GOODS_URL: goods.url,
    GOODS_INTERNAL_URL: goods.internalUrl,
    INTERNAL_API_SECRET: INTERNAL_SECRET,
    SCHEDULER_INTERVAL_MS: '200',
    ...(goods.stockPrefix ? { STOCK_KEY_PREFIX: goods.stockPrefix } : {}),
    ...overrides,
  })
  const bus = testBus('order-service-test')
  const redis = connectTestRedis('order-service-test')
  const { service, app } = await startInProcess('order-service', ({ logger, metrics }) =>
    startOrderService({
      settings,
      sequelize: database.sequelize,
      bus,
      redis,
      logger,
      metrics,
      verifier: issuer.verifier(),
    }),
  )
  return {
    app: app as unknown as Hono,
    service,
    database,
    groupId,
    call: (method, path, options) => callApp(app, method, path, options),
    async stop() {
      await service.stop()
      redis.disconnect()
      await owned.release()
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
  const owned = await prepareServiceUnderTest({
    name: 'payment',
    issuer,
    consumes: { groupSetting: 'ORDER_EVENTS_GROUP', topics: [TOPIC_ORDERS] },
  })
  const { database, groupId } = owned
  let child: ServiceProcess
  try {
    child = await spawnReadyService(paymentEntry, { ...owned.env, LOG_LEVEL: 'warn', ...env })
  } catch (error) {
    await owned.release()
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
      await owned.release()
    },
  }
}

export interface OrderStack {
  readonly issuer: TestIssuer
  readonly goods: TestGoodsService
  readonly payment: TestPaymentService
  readonly orders: TestOrderService
  /** A seller's token, for creating goods. */
  readonly sellerToken: string
  /** Stops order-service, then goods-service and payment-service, then the issuer. */
  stop(): Promise<void>
}

/**
 * An order's whole path: a token issuer, goods-service and payment-service as processes and
 * order-service in-process, each with the given settings on top of the defaults.
 */
export async function startOrderStack(
  settings: { goods?: Record<string, string>; payment?: Record<string, string>; orders?: Record<string, string> } = {},
): Promise<OrderStack> {
  const issuer = await startTestIssuer()
  const started = await Promise.allSettled([
    spawnGoodsService(issuer, settings.goods),
    spawnPaymentService(issuer, settings.payment),
  ])
  const [goodsStarted, paymentStarted] = started
  const goods = goodsStarted.status === 'fulfilled' ? goodsStarted.value : undefined
  const payment = paymentStarted.status === 'fulfilled' ? paymentStarted.value : undefined
  const stopAll = async (orders?: TestOrderService) => {
    await orders?.stop()
    await Promise.all([goods?.stop(), payment?.stop()])
    await issuer.close()
  }
  if (!goods || !payment) {
    await stopAll()
    throw started.find((result) => result.status === 'rejected')?.reason
  }
  let orders: TestOrderService
  try {
    orders = await startTestOrderService(goods, issuer, settings.orders)
  } catch (error) {
    await stopAll()
    throw error
  }
  const sellerToken = await issuer.sign({ sub: uniqueName('seller'), role: 'SELLER' })
  return { issuer, goods, payment, orders, sellerToken, stop: () => stopAll(orders) }
}
