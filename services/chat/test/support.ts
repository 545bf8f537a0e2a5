/**
 * Builds chat-service in-process (as `main.ts` builds it) against the local servers, with a MySQL
 * database and a MongoDB database of its own, and runs goods-service as a real process, so tests
 * never see each other's rooms or messages.
 */
import { fileURLToPath } from 'node:url'
import { type Connectors, createMongo, loadSettings } from '@timedeal/platform'
import {
  callApp,
  connectTestRedis,
  type CallOptions as PlatformCallOptions,
  prepareServiceUnderTest,
  type ServiceProcess,
  spawnReadyService,
  startInProcess,
  type TestIssuer,
  testEventBus,
  testLogger,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import type { Hono } from 'hono'
import type { Sequelize } from 'sequelize'
import { migrations } from '../src/adapters/migrations.ts'
import { type ChatService, startChatService } from '../src/service.ts'
import { settingsSchema } from '../src/settings.ts'

const goodsEntry = fileURLToPath(new URL('../../goods/src/main.ts', import.meta.url))

export interface TestGoodsService {
  readonly url: string
  /** Creates goods on sale now, owned by the seller of `sellerToken`; returns its id. */
  createGoods(sellerToken: string): Promise<string>
  stop(): Promise<void>
}

/** goods-service as its own process, with a database and stock keys of its own. */
export async function spawnGoodsService(issuer: TestIssuer): Promise<TestGoodsService> {
  const owned = await prepareServiceUnderTest({ name: 'chat_goods', issuer, redisPrefixSetting: 'STOCK_KEY_PREFIX' })
  let child: ServiceProcess
  try {
    child = await spawnReadyService(goodsEntry, {
      ...owned.env,
      ORDER_EVENTS_ENABLED: 'false',
      INTERNAL_API_SECRET: 'chat-test-internal-secret-0123',
      LOG_LEVEL: 'warn',
    })
  } catch (error) {
    await owned.release()
    throw error
  }
  return {
    url: child.url,
    async createGoods(sellerToken) {
      const response = await fetch(`${child.url}/api/goods`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sellerToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: uniqueName('goods'),
          price: 1000,
          initialStock: 5,
          saleStartsAt: new Date(Date.now() - 60_000).toISOString(),
          saleEndsAt: new Date(Date.now() + 3600_000).toISOString(),
          purchaseLimit: null,
        }),
      })
      if (response.status !== 201)
        throw new Error(`creating goods answered ${response.status}: ${await response.text()}`)
      return ((await response.json()) as { id: string }).id
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

export interface TestChatService {
  readonly app: Hono
  readonly service: ChatService
  /** The service's own MySQL database. */
  readonly sequelize: Sequelize
  call(method: string, path: string, options: CallOptions): Promise<Response>
  stop(): Promise<void>
}

/**
 * chat-service built exactly as `main.ts` builds it, on a MySQL database and a MongoDB database
 * of its own; `overrides` add or replace settings.
 */
export async function startTestChatService(
  goods: { readonly url: string },
  issuer: TestIssuer,
  overrides: Record<string, string> = {},
): Promise<TestChatService> {
  const owned = await prepareServiceUnderTest({ name: 'chat', migrations, issuer })
  const mongoDatabase = uniqueName('timedeal_test_chat')
  const settings = loadSettings(settingsSchema, {
    ...process.env,
    ...owned.env,
    MONGO_DATABASE: mongoDatabase,
    GOODS_URL: goods.url,
    ...overrides,
  })
  const mongo = await createMongo({ url: settings.MONGO_URL, database: mongoDatabase, logger: testLogger })
  const redis = connectTestRedis('chat-test')
  const bus = testEventBus('chat-service-test')
  const connect: Connectors = {
    mysql: async () => owned.database.sequelize,
    mongo: async () => mongo,
    redis: async () => redis,
    kafka: async () => bus,
  }
  const { service, app } = await startInProcess('chat-service', ({ logger }) =>
    startChatService({ connect, settings, logger, verifier: issuer.verifier() }),
  )
  return {
    app: app as unknown as Hono,
    service,
    sequelize: owned.database.sequelize,
    call: (method, path, options) => callApp(app, method, path, options),
    async stop() {
      await service.stop()
      await mongo.dropDatabase()
      await mongo.close()
      await redis.quit()
      await owned.release()
    },
  }
}

export { testSettings }
