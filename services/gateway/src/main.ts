import { runService } from '@timedeal/platform'
import { startGateway } from './service.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'gateway',
  settings: settingsSchema,
  start: async ({ settings, connect, logger, lifecycle, metrics }) => {
    // Connected at start so a missing Redis fails fast and /readyz watches it.
    const redis = await connect.redis()
    const gateway = startGateway({ settings, redis, logger, metrics })
    lifecycle.add('gateway', gateway, (started) => started.stop())
    return { publicRoutes: gateway.publicRoutes, websocket: gateway.websocket }
  },
})
