import { runService } from '@timedeal/platform'
import { migrations } from './adapters/migrations.ts'
import { createGoodsMetrics } from './metrics.ts'
import { seedDemoGoods } from './seed.ts'
import { createGoodsStock, startGoodsService } from './service.ts'
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
    return { publicRoutes: service.publicRoutes, internalRoutes: service.internalRoutes }
  },
  seed: async ({ settings, connect, logger, metrics }) => {
    const clients = { sequelize: await connect.mysql(), redis: await connect.redis() }
    const { catalog, live } = createGoodsStock(settings, clients, logger, createGoodsMetrics(metrics))
    const seeded = await seedDemoGoods(catalog, live, settings.DEMO_SELLER_ID, logger)
    logger.info({ sellerId: settings.DEMO_SELLER_ID, goods: seeded.map((goods) => goods.id) }, 'demo goods seeded')
  },
})
