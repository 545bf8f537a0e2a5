import {
  type AppEnv,
  createRedis,
  type EventBus,
  type Logger,
  type Redis,
  tokenVerifierFromSettings,
} from '@timedeal/platform'
import { createStockStore, stockKeys, waitUntilLedgerApplied } from '@timedeal/stock'
import type { Hono } from 'hono'
import type { Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import { type Catalog, createCatalog } from './adapters/catalog.ts'
import { createLedgerWriter, type LedgerWriter } from './adapters/ledger-writer.ts'
import { subscribeOrderEvents } from './adapters/order-events.ts'
import { unitsReturnedSignal } from './adapters/units-returned.ts'
import { createWishlist } from './adapters/wishlist.ts'
import { createExpirySweeper } from './flows/expiry-sweeper.ts'
import { createLiveStock, type LiveStock } from './flows/live-stock.ts'
import { goodsInternalRoutes, goodsRoutes } from './http/index.ts'
import { createGoodsMetrics, type GoodsMetrics } from './metrics.ts'
import type { Settings, StockSettings } from './settings.ts'

export interface GoodsServiceClients {
  readonly sequelize: Sequelize
  readonly redis: Redis
  /** Absent when order events are not consumed (ORDER_EVENTS_ENABLED=false). */
  readonly bus?: EventBus
}

export interface GoodsService {
  readonly publicRoutes: Hono<AppEnv>
  /** For the internal listener, mounted under `/internal`. */
  readonly internalRoutes: Hono<AppEnv>
  readonly catalog: Catalog
  readonly live: LiveStock
  readonly writer: LedgerWriter
  /** Stops the workers (consumer, sweeper, write-behind); the clients stay open. */
  stop(): Promise<void>
}

/** The clients the ledger write-behind works with. */
export interface LedgerClients {
  readonly sequelize: Sequelize
  readonly redis: Redis
  /** A connection of its own: blocking stream reads would hold up any other command on it. */
  readonly reader: Redis
}

/**
 * The ledger write-behind over these clients, not yet started. goods-service runs one inside
 * (unless LEDGER_WORKER_ENABLED=false) and `worker.ts` runs one as a process of its own.
 */
export function createGoodsLedgerWriter(
  settings: StockSettings,
  clients: LedgerClients,
  logger: Logger,
  metrics: GoodsMetrics,
): LedgerWriter {
  return createLedgerWriter({
    ...clients,
    keys: stockKeys(settings.STOCK_KEY_PREFIX, settings.STOCK_SHARDS),
    consumer: settings.LEDGER_CONSUMER_NAME,
    batchSize: settings.LEDGER_BATCH_SIZE,
    claimIdleMs: settings.LEDGER_CLAIM_IDLE_MS,
    idlePollMs: settings.LEDGER_IDLE_POLL_MS,
    batchLingerMs: settings.LEDGER_BATCH_LINGER_MS,
    logger: logger.child({ component: 'ledger-writer' }),
    onBatch: ({ applied }) => metrics.ledgerApplied.inc(applied),
  })
}

/**
 * The catalog and the live stock over it. The service and the `seed` command both build them
 * here; `ledgerApplied` lets a cold load wait for the write-behind (the seed has none running).
 */
export function createGoodsStock(
  settings: StockSettings,
  clients: Pick<GoodsServiceClients, 'sequelize' | 'redis'>,
  logger: Logger,
  metrics: GoodsMetrics,
  options: { readonly coldLoadTimeoutMs?: number } = {},
): { catalog: Catalog; live: LiveStock } {
  const catalog = createCatalog(clients.sequelize)
  const store = createStockStore(clients.redis, {
    prefix: settings.STOCK_KEY_PREFIX,
    shards: settings.STOCK_SHARDS,
    holdMs: settings.RESERVATION_HOLD_MS,
    retentionMs: settings.RESERVATION_RETENTION_MS,
  })
  const { coldLoadTimeoutMs } = options
  const live = createLiveStock({
    store,
    catalog,
    metrics,
    logger,
    unitsReturned: unitsReturnedSignal(clients.redis, settings.STOCK_KEY_PREFIX, logger),
    ...(coldLoadTimeoutMs === undefined
      ? {}
      : {
          ledgerApplied: () =>
            waitUntilLedgerApplied(clients.redis, store.keys.ledgers, { timeoutMs: coldLoadTimeoutMs }),
        }),
  })
  return { catalog, live }
}

/**
 * Builds goods-service from connected clients and starts its workers: the order-event consumer,
 * the expiry sweeper and (unless disabled) the ledger write-behind. `main.ts` and the tests
 * both build the service this way.
 */
export async function startGoodsService(
  settings: Settings,
  clients: GoodsServiceClients,
  logger: Logger,
  registry: Registry,
): Promise<GoodsService> {
  const { sequelize, redis } = clients
  // The lag gauges read the writer at scrape time, once it exists.
  const metrics = createGoodsMetrics(registry, () => writer.lag())
  const { catalog, live } = createGoodsStock(settings, clients, logger, metrics, {
    coldLoadTimeoutMs: settings.COLD_LOAD_TIMEOUT_MS,
  })
  const verifier = tokenVerifierFromSettings(settings)

  const reader = createRedis({
    url: settings.REDIS_URL,
    clusterNodes: settings.REDIS_CLUSTER_NODES,
    logger,
    connectionName: `${settings.SERVICE_NAME}:ledger-reader`,
  })
  const writer = createGoodsLedgerWriter(settings, { sequelize, redis, reader }, logger, metrics)
  if (settings.LEDGER_WORKER_ENABLED) writer.start()

  const sweeper = createExpirySweeper(live, settings.EXPIRY_SWEEP_INTERVAL_MS, logger.child({ component: 'expiry' }))
  sweeper.start()

  const subscription = clients.bus
    ? await subscribeOrderEvents({
        bus: clients.bus,
        group: settings.ORDER_EVENTS_GROUP,
        settings,
        live,
        metrics,
        logger: logger.child({ component: 'order-events' }),
      })
    : undefined

  const routeDeps = {
    catalog,
    wishlist: createWishlist(sequelize),
    live,
    verifier,
    metrics,
    internalSecret: settings.INTERNAL_API_SECRET,
  }

  return {
    publicRoutes: goodsRoutes(routeDeps),
    internalRoutes: goodsInternalRoutes(routeDeps),
    catalog,
    live,
    writer,
    async stop() {
      await subscription?.close()
      await sweeper.stop()
      await writer.stop()
      reader.disconnect()
    },
  }
}
