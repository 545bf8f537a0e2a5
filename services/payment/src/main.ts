import { runService } from '@timedeal/platform'
import { migrations } from './adapters/migrations.ts'
import { paymentRoutes } from './app.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'payment-service',
  settings: settingsSchema,
  migrations,
  start: async ({ connect }) => {
    // Connected at start so a missing server fails fast and /readyz watches each one.
    await connect.mysql()
    await connect.kafka()
    return paymentRoutes()
  },
})
