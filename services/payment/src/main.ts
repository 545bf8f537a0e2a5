import { runService } from '@timedeal/platform'
import { migrations } from './adapters/migrations.ts'
import { startPaymentService } from './service.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'payment-service',
  settings: settingsSchema,
  migrations,
  start: async ({ settings, connect, logger, lifecycle, metrics }) => {
    // Connected at start so a missing server fails fast and /readyz watches each one.
    const sequelize = await connect.mysql()
    const bus = await connect.kafka()
    const service = await startPaymentService({ settings, sequelize, bus, logger, metrics })
    // Added last, so it stops first: the workers finish before their clients close.
    lifecycle.add('payment-workers', service, (started) => started.stop())
    return { publicRoutes: service.publicRoutes }
  },
})
