import { runService } from '@timedeal/platform'
import { migrations } from './adapters/migrations.ts'
import { seedDemoAccounts } from './seed.ts'
import { createSeedAccounts, startUserService } from './service.ts'
import { settingsSchema } from './settings.ts'

await runService({
  service: 'user-service',
  settings: settingsSchema,
  migrations,
  start: async ({ settings, logger, lifecycle, metrics, connect }) => {
    // Connected at start so a missing server fails fast and /readyz watches each one.
    const [sequelize, redis] = await Promise.all([connect.mysql(), connect.redis()])
    const service = await startUserService({ settings, sequelize, redis, logger, metrics })
    lifecycle.add('user-service', service, (s) => s.stop())
    return { publicRoutes: service.publicRoutes, internalRoutes: service.internalRoutes }
  },
  seed: async ({ settings, logger, connect }) => {
    const { accounts, hasher } = createSeedAccounts(settings, await connect.mysql())
    const created = await seedDemoAccounts(accounts, hasher)
    logger.info({ created }, created.length > 0 ? 'demo accounts created' : 'demo accounts already exist')
  },
})
