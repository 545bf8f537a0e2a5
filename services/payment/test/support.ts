/**
 * Builds payment-service in-process, as `main.ts` builds it, against the local servers: its own
 * database, its own consumer group starting at the end of the topics, so a test sees only the
 * events it publishes itself.
 */
import { type CloudEvent, TOPIC_ORDERS, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { type EventBus, type EventPublisher, loadSettings, selectRow, selectRows } from '@timedeal/platform'
import {
  eventually,
  prepareServiceUnderTest,
  startGroupsAtEnd,
  startInProcess,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  testEventBus,
  waitForGroupsPast,
  watchDeadLetters,
  watchEvents,
} from '@timedeal/platform/testing'
import type { Hono } from 'hono'
import { migrations } from '../src/adapters/migrations.ts'
import type { PaymentProvider } from '../src/adapters/provider.ts'
import { type PaymentService, startPaymentService } from '../src/service.ts'
import { settingsSchema } from '../src/settings.ts'

export { startGroupsAtEnd, waitForGroupsPast, watchDeadLetters }

export const testBus = (clientId = 'payment-test'): EventBus => testEventBus(clientId)

export interface TestPaymentService {
  readonly app: Hono
  readonly service: PaymentService
  readonly database: TestDatabase
  readonly groupId: string
  rows<T extends object>(sql: string, replacements?: Record<string, unknown>): Promise<T[]>
  /** The payment row of an order (every column), or undefined while there is none. */
  paymentOf<Row extends { status: string }>(orderId: string): Promise<Row | undefined>
  /** Waits until the payment of an order has `status`; resolves with its row. */
  settles<Row extends { status: string }>(orderId: string, status: string): Promise<Row>
  stop(): Promise<void>
}

/** payment-service built exactly as `main.ts` builds it, with settings from the environment plus `overrides`. */
export async function startTestPaymentService(
  issuer: TestIssuer,
  overrides: Record<string, string> = {},
  provider?: PaymentProvider,
): Promise<TestPaymentService> {
  const owned = await prepareServiceUnderTest({
    name: 'payment',
    migrations,
    issuer,
    consumes: { groupSetting: 'ORDER_EVENTS_GROUP', topics: [TOPIC_ORDERS, TOPIC_PAYMENTS] },
  })
  const { database, groupId } = owned
  const settings = loadSettings(settingsSchema, { ...process.env, ...owned.env, ...overrides })
  const { service, app } = await startInProcess('payment-service', ({ logger, metrics }) =>
    startPaymentService({
      settings,
      sequelize: database.sequelize,
      bus: testBus('payment-service-test'),
      logger,
      metrics,
      verifier: issuer.verifier(),
      ...(provider ? { provider } : {}),
    }),
  )
  const paymentOf = <Row extends { status: string }>(orderId: string) =>
    selectRow<Row>(database.sequelize, 'SELECT * FROM payments WHERE order_id = :orderId', { orderId })
  return {
    app: app as unknown as Hono,
    service,
    database,
    groupId,
    rows: (sql, replacements = {}) => selectRows(database.sequelize, sql, replacements),
    paymentOf,
    settles: <Row extends { status: string }>(orderId: string, status: string) =>
      eventually(
        async () => {
          const payment = await paymentOf<Row>(orderId)
          return payment?.status === status ? payment : undefined
        },
        20_000,
        `payment of ${orderId} to be ${status}`,
      ),
    async stop() {
      await service.stop()
      await owned.release()
    },
  }
}

export interface PaymentHarness {
  readonly issuer: TestIssuer
  readonly payments: TestPaymentService
  /** Publishes order events, as order-service would. */
  readonly publisher: EventPublisher
  /** Every payment event published since the harness started, in arrival order. */
  readonly published: CloudEvent[]
  stop(): Promise<void>
}

/** A token issuer, payment-service in-process, a publisher of order events and a watcher of payment events. */
export async function startPaymentHarness(overrides: Record<string, string> = {}): Promise<PaymentHarness> {
  const issuer = await startTestIssuer()
  const payments = await startTestPaymentService(issuer, overrides)
  const publisher = await testBus().publisher()
  const watch = await watchEvents(TOPIC_PAYMENTS)
  return {
    issuer,
    payments,
    publisher,
    published: watch.events,
    async stop() {
      await watch.close()
      await publisher.close()
      await payments.stop()
      await issuer.close()
    },
  }
}
