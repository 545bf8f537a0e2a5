import { kafkaSettings, mongoSettings, mysqlSettings, redisSettings, serviceSettings } from '@timedeal/platform'
import { z } from 'zod'

/** Every setting of chat-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('chat-service', 8085),
  ...mysqlSettings('timedeal_chat'),
  ...mongoSettings('timedeal_chat'),
  ...redisSettings(),
  ...kafkaSettings(),
})

export type Settings = z.infer<typeof settingsSchema>
