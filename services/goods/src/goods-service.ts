import {
  type AppEnv,
  createRedis,
  type EventBus,
  type Logger,
  type Redis,
  tokenVerifierFromSettings,
} from '@timedeal/platform'
import { createStockStore, waitUntilLedgerApplied } from '@timedeal/stock'
import type { Hono } from 'hono'
import type { Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import { type Catalog, createCatalog } from './adapters/catalog.ts'
import { createExpirySweeper } from './adapters/expiry-sweeper.ts'
import { createLedgerWriter, type LedgerWriter } from './adapters/ledger-writer.ts'
import { createLiveStock, type LiveStock } from './adapters/live-stock.ts'
import { registerLedgerLag, stockMetrics } from './adapters/metrics.ts'
import { subscribeOrderEvents } from './adapters/order-events.ts'
import { createWishlist } from './adapters/wishlist.ts'
import { goodsInternalRoutes, goodsRoutes } from './app.ts'
import type { Settings } from './settings.ts'

export interface GoodsServiceClients {
  readonly sequelize: Sequelize
  readonly redis: Redis
  /** Absent when order events are not consumed (ORDER_EVENTS_ENABLED=false). */
  readonly bus?: EventBus
}

export interface GoodsService {
  readonly routes: Hono<AppEnv>
  /** For the internal listener, mounted under `/internal`. */
  readonly internalRoutes: Hono<AppEnv>
  readonly catalog: Catalog
  readonly live: LiveStock
  readonly writer: LedgerWriter
  /** Stops the workers (consumer, sweeper, write-behind); the clients stay open. */
  stop(): Promise<void>
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
  const metrics = stockMetrics(registry)
  const catalog = createCatalog(sequelize)
  const store = createStockStore(redis, {
    prefix: settings.STOCK_KEY_PREFIX,
    holdMs: settings.RESERVATION_HOLD_MS,
    retentionMs: settings.RESERVATION_RETENTION_MS,
  })
  const live = createLiveStock({
    store,
    catalog,
    metrics,
    logger,
    ledgerApplied: () => waitUntilLedgerApplied(redis, store.keys.ledger, { timeoutMs: settings.COLD_LOAD_TIMEOUT_MS }),
  })
  const verifier = tokenVerifierFromSettings(settings)

  // Blocking stream reads get a connection of their own.
  const reader = createRedis({
    url: settings.REDIS_URL,
    logger,
    connectionName: `${settings.SERVICE_NAME}:ledger-reader`,
  })
  const writer = createLedgerWriter({
    redis,
    reader,
    sequelize,
    keys: store.keys,
    consumer: settings.LEDGER_CONSUMER_NAME,
    batchSize: settings.LEDGER_BATCH_SIZE,
    claimIdleMs: settings.LEDGER_CLAIM_IDLE_MS,
    logger: logger.child({ component: 'ledger-writer' }),
    onBatch: ({ applied }) => metrics.ledgerApplied.inc(applied),
  })
  registerLedgerLag(registry, () => writer.lag())
  if (settings.LEDGER_WORKER_ENABLED) writer.start()

  const sweeper = createExpirySweeper(live, settings.EXPIRY_SWEEP_INTERVAL_MS, logger.child({ component: 'expiry' }))
  sweeper.start()

  const subscription = clients.bus
    ? await subscribeOrderEvents({
        bus: clients.bus,
        groupId: settings.ORDER_EVENTS_GROUP,
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
    logger,
  }

  return {
    routes: goodsRoutes(routeDeps),
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
