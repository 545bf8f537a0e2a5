import { randomUUID } from 'node:crypto'
import {
  type AppEnv,
  createMetricsRegistry,
  createRedis,
  createServiceApps,
  type EventBus,
  INTERNAL_CREDENTIAL_HEADER,
  loadSettings,
  type Redis,
} from '@timedeal/platform'
import {
  callApp,
  connectTestRedis,
  createTestDatabase as createPlatformTestDatabase,
  prepareServiceUnderTest,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  testLogger,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import { useTestRedisCluster } from '@timedeal/platform/testing/redis-cluster'
import type { StockStore } from '@timedeal/stock'
import type { Hono } from 'hono'
import type { Registry } from 'prom-client'
import { QueryTypes, type Sequelize } from 'sequelize'
import { migrations } from '../src/adapters/migrations.ts'
import { type GoodsService, startGoodsService } from '../src/service.ts'
import { type Settings, settingsSchema } from '../src/settings.ts'

export const INTERNAL_SECRET = 'goods-test-internal-secret'

export type { TestDatabase }

/** A migrated database of the test's own, dropped afterwards. */
export const createTestDatabase = (): Promise<TestDatabase> => createPlatformTestDatabase('goods', migrations)

export function connectRedis(name = 'goods-test'): Redis {
  return connectTestRedis(name)
}

/** Settings as the service would read them, with the test's own database, keys and issuer. */
export function goodsSettings(overrides: Record<string, string>): Settings {
  return loadSettings(settingsSchema, {
    ...process.env,
    INTERNAL_API_SECRET: INTERNAL_SECRET,
    ORDER_EVENTS_ENABLED: 'false',
    ...overrides,
  })
}

export interface TestGoods {
  /** The public listener's app. */
  readonly app: Hono<AppEnv>
  /** The internal listener's app: `/internal/reservations`, as order-service calls it. */
  readonly internalApp: Hono<AppEnv>
  readonly service: GoodsService
  readonly settings: Settings
  readonly metrics: Registry
  stop(): Promise<void>
}

/** goods-service built in this process, the way `main.ts` builds it, on the given clients. */
export async function startTestGoods(options: {
  database: TestDatabase
  redis: Redis
  prefix: string
  issuer: TestIssuer
  bus?: EventBus
  settings?: Record<string, string>
}): Promise<TestGoods> {
  const settings = goodsSettings({
    MYSQL_DATABASE: options.database.name,
    STOCK_KEY_PREFIX: options.prefix,
    JWT_JWKS_URL: options.issuer.jwksUrl,
    LEDGER_CONSUMER_NAME: `test-${randomUUID()}`,
    ...(options.bus ? { ORDER_EVENTS_ENABLED: 'true', ORDER_EVENTS_GROUP: uniqueName('goods-test') } : {}),
    ...options.settings,
  })
  const metrics = createMetricsRegistry('goods-test')
  const service = await startGoodsService(
    settings,
    { sequelize: options.database.sequelize, redis: options.redis, ...(options.bus ? { bus: options.bus } : {}) },
    testLogger,
    metrics,
  )
  const { publicApp: app, internalApp } = createServiceApps(
    { service: 'goods-service', logger: testLogger, metrics },
    { publicRoutes: service.publicRoutes, internalRoutes: service.internalRoutes },
  )
  if (!internalApp) throw new Error('goods-service has internal routes')
  internalAppOf.set(app, internalApp)
  return { app, internalApp, service, settings, metrics, stop: () => service.stop() }
}

/** The internal app beside each public app {@link startTestGoods} built. */
const internalAppOf = new WeakMap<Hono<AppEnv>, Hono<AppEnv>>()

/**
 * Sends a JSON request to an in-process goods-service; returns the status and the parsed body.
 * `/internal/...` paths go to the service's internal listener, as order-service sends them.
 */
export async function call(
  app: Hono<AppEnv>,
  method: string,
  path: string,
  options: { token?: string; internal?: boolean; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> & { code?: string } }> {
  const { internal, ...sent } = options
  const target = path.startsWith('/internal/') ? (internalAppOf.get(app) ?? app) : app
  const response = await callApp(target, method, path, {
    ...sent,
    headers: internal ? { [INTERNAL_CREDENTIAL_HEADER]: INTERNAL_SECRET } : {},
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : {} }
}

/** A sale draft with its window relative to `now` (ms). */
export function saleDraft(now: number, shape: { stock: number; opensIn?: number; lastsMs?: number; limit?: number }) {
  const startsAt = now + (shape.opensIn ?? -60_000)
  return {
    name: `Test goods ${randomUUID().slice(0, 8)}`,
    description: 'made by a test',
    price: 12_000,
    initialStock: shape.stock,
    saleStartsAt: new Date(startsAt).toISOString(),
    saleEndsAt: new Date(startsAt + (shape.lastsMs ?? 3_600_000)).toISOString(),
    ...(shape.limit === undefined ? {} : { purchaseLimit: shape.limit }),
  }
}

export async function onHandOf(sequelize: Sequelize, goodsId: string): Promise<number> {
  const [row] = await sequelize.query<{ stock_on_hand: number }>('SELECT stock_on_hand FROM goods WHERE id = ?', {
    replacements: [goodsId],
    type: QueryTypes.SELECT,
  })
  return Number(row?.stock_on_hand)
}

export async function ledgerRowsOf(sequelize: Sequelize, goodsId?: string): Promise<number> {
  const [row] = await sequelize.query<{ n: number }>(
    `SELECT COUNT(*) AS n FROM stock_ledger${goodsId ? ' WHERE goods_id = ?' : ''}`,
    { replacements: goodsId ? [goodsId] : [], type: QueryTypes.SELECT },
  )
  return Number(row?.n)
}

/** The Redis deployments live stock must work on: the suites that guard it run on each. */
export const stockRedisTargets = [
  { name: 'one Redis', cluster: false },
  { name: 'a Redis Cluster of three primaries', cluster: true },
] as const
export type StockRedisTarget = (typeof stockRedisTargets)[number]

/**
 * A connection to the target, the settings that point a spawned service at it, and `release`
 * (disconnects, and stops a test cluster this call started).
 */
export async function connectStockRedis(
  target: StockRedisTarget,
): Promise<{ redis: Redis; env: Record<string, string>; release(): Promise<void> }> {
  if (!target.cluster) {
    const redis = connectRedis()
    return { redis, env: { REDIS_CLUSTER_NODES: '' }, release: async () => redis.disconnect() }
  }
  const cluster = await useTestRedisCluster()
  const redis = createRedis({ url: testSettings.REDIS_URL, clusterNodes: cluster.nodes, logger: testLogger })
  return {
    redis,
    env: { REDIS_CLUSTER_NODES: cluster.nodes.join(',') },
    release: async () => {
      redis.disconnect()
      await cluster.release()
    },
  }
}

/** A goods id of the given shard of the store's namespace, found by trying fresh ids. */
export function goodsIdInShard(store: StockStore, shard: number): string {
  for (;;) {
    const goodsId = randomUUID()
    if (store.keys.shardOf(goodsId).index === shard) return goodsId
  }
}

export const countBy = <T>(values: readonly T[]): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1
  return counts
}

export interface GoodsUnderTest {
  readonly database: TestDatabase
  readonly redis: Redis
  /** The stock keys' prefix. */
  readonly prefix: string
  readonly issuer: TestIssuer
  readonly goods: TestGoods
  /** Stops the service, then drops its database and its Redis keys. */
  stop(): Promise<void>
}

/**
 * goods-service in-process with everything of its own: a database, stock keys under a prefix
 * of its own, a token issuer. `prepare` runs on the migrated database before the service starts.
 */
export async function startGoodsUnderTest(
  options: {
    bus?: EventBus
    settings?: Record<string, string>
    prepare?: (database: TestDatabase) => Promise<unknown>
  } = {},
): Promise<GoodsUnderTest> {
  const issuer = await startTestIssuer()
  const owned = await prepareServiceUnderTest({
    name: 'goods',
    migrations,
    issuer,
    redisPrefixSetting: 'STOCK_KEY_PREFIX',
  }).catch(async (error: unknown) => {
    await issuer.close()
    throw error
  })
  const { database, redisPrefix: prefix } = owned
  const redis = connectRedis()
  const release = async () => {
    redis.disconnect()
    await owned.release()
    await issuer.close()
  }
  let goods: TestGoods
  try {
    await options.prepare?.(database)
    goods = await startTestGoods({ database, redis, prefix, issuer, bus: options.bus, settings: options.settings })
  } catch (error) {
    await release()
    throw error
  }
  return {
    database,
    redis,
    prefix,
    issuer,
    goods,
    async stop() {
      await goods.stop()
      await release()
    },
  }
}
