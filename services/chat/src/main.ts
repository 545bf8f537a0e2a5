import { runService } from '@timedeal/platform'
import { migrations } from './adapters/migrations.ts'
import { startChatService } from './service.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'chat-service',
  settings: settingsSchema,
  migrations,
  start: async ({ connect, lifecycle, settings, logger }) => {
    const service = await startChatService({ connect, settings, logger })
    lifecycle.add('chat-service', service, (started) => started.stop())
    return { publicRoutes: service.publicRoutes, websocket: service.websocket }
  },
})
