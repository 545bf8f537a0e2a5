/**
 * Builds payment-service in-process, as `main.ts` builds it, against the local servers: its own
 * database, its own consumer group starting at the end of the topics, so a test sees only the
 * events it publishes itself.
 */
import { TOPIC_ORDERS, TOPIC_PAYMENTS } from '@timedeal/contracts'
import {
  createMetricsRegistry,
  createServiceApp,
  type EventBus,
  loadSettings,
  type PublishReceipt,
} from '@timedeal/platform'
import {
  createTestDatabase,
  eventually,
  startGroupsAtEnd,
  type TestDatabase,
  type TestIssuer,
  testEventBus,
  testKafkaNames,
  testLogger,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import type { Hono } from 'hono'
import { Kafka, logLevel } from 'kafkajs'
import { QueryTypes } from 'sequelize'
import { migrations } from '../src/adapters/migrations.ts'
import type { PaymentProvider } from '../src/adapters/provider.ts'
import { type PaymentService, startPaymentService } from '../src/service.ts'
import { settingsSchema } from '../src/settings.ts'

export { startGroupsAtEnd }

export const testBus = (clientId = 'payment-test'): EventBus => testEventBus(clientId)

const rawKafka = (clientId: string) =>
  new Kafka({ clientId, brokers: [...testSettings.KAFKA_BROKERS], logLevel: logLevel.NOTHING })

/** Waits until `groupId` has committed past `record`: it handled it and all before it in its partition. */
export async function waitForGroupPast(groupId: string, record: PublishReceipt): Promise<void> {
  const admin = rawKafka('payment-test-progress').admin()
  await admin.connect()
  try {
    await eventually(
      async () => {
        const [topic] = await admin.fetchOffsets({
          groupId: testKafkaNames.group(groupId),
          topics: [testKafkaNames.topic(record.topic)],
        })
        const committed = topic?.partitions.find((partition) => partition.partition === record.partition)?.offset
        return committed !== undefined && BigInt(committed) > BigInt(record.offset) ? true : undefined
      },
      30_000,
      `group ${groupId} past ${record.topic}/${record.partition}@${record.offset}`,
    )
  } finally {
    await admin.disconnect()
  }
}

export interface DeadLetter {
  readonly headers: Record<string, string>
}

/** Reads the dead-letter topic from its current end, keeping records by their event id. */
export async function watchDeadLetters(
  topic: string,
): Promise<{ byId: Map<string, DeadLetter>; close(): Promise<void> }> {
  const groupId = uniqueName('payment-test-dlq')
  await startGroupsAtEnd([groupId], [topic])
  const consumer = rawKafka('payment-test-dlq').consumer({
    groupId: testKafkaNames.group(groupId),
    maxWaitTimeInMs: 200,
  })
  const byId = new Map<string, DeadLetter>()
  let joined: () => void = () => {}
  const hasJoined = new Promise<void>((resolve) => {
    joined = resolve
  })
  consumer.on(consumer.events.GROUP_JOIN, () => joined())
  await consumer.connect()
  await consumer.subscribe({ topics: [testKafkaNames.topic(topic)] })
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))
      if (headers.ce_id) byId.set(headers.ce_id, { headers })
    },
  })
  await hasJoined
  return { byId, close: () => consumer.disconnect() }
}

export interface TestPaymentService {
  readonly app: Hono
  readonly service: PaymentService
  readonly database: TestDatabase
  readonly groupId: string
  rows<T extends object>(sql: string, replacements?: Record<string, unknown>): Promise<T[]>
  stop(): Promise<void>
}

/** payment-service built exactly as `main.ts` builds it, with settings from the environment plus `overrides`. */
export async function startTestPaymentService(
  issuer: TestIssuer,
  overrides: Record<string, string> = {},
  provider?: PaymentProvider,
): Promise<TestPaymentService> {
  const database = await createTestDatabase('payment', migrations)
  const groupId = uniqueName('payment-test')
  await startGroupsAtEnd([groupId], [TOPIC_ORDERS, TOPIC_PAYMENTS])
  const settings = loadSettings(settingsSchema, {
    ...process.env,
    MYSQL_DATABASE: database.name,
    JWT_JWKS_URL: issuer.jwksUrl,
    ORDER_EVENTS_GROUP: groupId,
    ...overrides,
  })
  const metrics = createMetricsRegistry('payment-service')
  const service = await startPaymentService({
    settings,
    sequelize: database.sequelize,
    bus: testBus('payment-service-test'),
    logger: testLogger,
    metrics,
    verifier: issuer.verifier(),
    ...(provider ? { provider } : {}),
  })
  const app = createServiceApp({ service: 'payment-service', logger: testLogger, metrics })
  app.route('/', service.publicRoutes)
  return {
    app: app as unknown as Hono,
    service,
    database,
    groupId,
    rows: (sql, replacements = {}) => database.sequelize.query(sql, { replacements, type: QueryTypes.SELECT }),
    async stop() {
      await service.stop()
      await database.drop()
    },
  }
}
