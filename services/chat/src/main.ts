import { runService } from '@timedeal/platform'
import { migrations } from './adapters/migrations.ts'
import { chatRoutes } from './app.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'chat-service',
  settings: settingsSchema,
  migrations,
  start: async ({ connect }) => {
    // Connected at start so a missing server fails fast and /readyz watches each one.
    await connect.mysql()
    await connect.mongo()
    await connect.redis()
    await connect.kafka()
    return { publicRoutes: chatRoutes() }
  },
})
