import { createRedis, runService } from '@timedeal/platform'
import { migrations } from './adapters/migrations.ts'
import { startOrderService } from './service.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'order-service',
  settings: settingsSchema,
  migrations,
  start: async ({ settings, connect, logger, lifecycle, metrics }) => {
    // Connected at start so a missing server fails fast and /readyz watches each one.
    const sequelize = await connect.mysql()
    const bus = await connect.kafka()
    // Only sold-out marks use Redis, and they only save calls to goods-service: Redis being away
    // never stops placements, so it is neither waited for at start nor a readiness check.
    const redis = createRedis({
      url: settings.REDIS_URL,
      clusterNodes: settings.REDIS_CLUSTER_NODES,
      logger,
      connectionName: 'order-service',
    })
    lifecycle.add('redis', redis, (client) => client.quit().catch(() => client.disconnect()))
    const service = await startOrderService({ settings, sequelize, bus, redis, logger, metrics })
    // Added last, so it stops first: the workers finish before their clients close.
    lifecycle.add('order-workers', service, (started) => started.stop())
    return { publicRoutes: service.publicRoutes }
  },
})
