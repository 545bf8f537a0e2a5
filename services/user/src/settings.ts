import { mysqlSettings, serviceSettings } from '@timedeal/platform'
import { z } from 'zod'

/** Every setting of user-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('user-service', 8081),
  ...mysqlSettings('timedeal_user'),
})

export type Settings = z.infer<typeof settingsSchema>
