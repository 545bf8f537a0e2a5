import { runService } from '@timedeal/platform'
import { createStockStore } from '@timedeal/stock'
import { createCatalog } from './adapters/catalog.ts'
import { createLiveStock } from './adapters/live-stock.ts'
import { stockMetrics } from './adapters/metrics.ts'
import { migrations } from './adapters/migrations.ts'
import { startGoodsService } from './goods-service.ts'
import { seedDemoGoods } from './seed.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'goods-service',
  settings: settingsSchema,
  migrations,
  start: async ({ settings, connect, logger, lifecycle, metrics }) => {
    // Connected at start so a missing server fails fast and /readyz watches each one.
    const sequelize = await connect.mysql()
    const redis = await connect.redis()
    const bus = settings.ORDER_EVENTS_ENABLED ? await connect.kafka() : undefined
    const service = await startGoodsService(settings, { sequelize, redis, ...(bus ? { bus } : {}) }, logger, metrics)
    // Added last, so it stops first: the workers finish before their clients close.
    lifecycle.add('goods-workers', service, (started) => started.stop())
    return { publicRoutes: service.routes, internalRoutes: service.internalRoutes }
  },
  seed: async ({ settings, connect, logger, metrics }) => {
    const catalog = createCatalog(await connect.mysql())
    const store = createStockStore(await connect.redis(), {
      prefix: settings.STOCK_KEY_PREFIX,
      holdMs: settings.RESERVATION_HOLD_MS,
      retentionMs: settings.RESERVATION_RETENTION_MS,
    })
    const live = createLiveStock({ store, catalog, metrics: stockMetrics(metrics), logger })
    const seeded = await seedDemoGoods(catalog, live, settings.DEMO_SELLER_ID, logger)
    logger.info({ sellerId: settings.DEMO_SELLER_ID, goods: seeded.map((goods) => goods.id) }, 'demo goods seeded')
  },
})
