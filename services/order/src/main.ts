import { runService } from '@timedeal/platform'
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
    const service = await startOrderService({ settings, sequelize, bus, logger, metrics })
    // Added last, so it stops first: the workers finish before their clients close.
    lifecycle.add('order-workers', service, (started) => started.stop())
    return { publicRoutes: service.publicRoutes }
  },
})
