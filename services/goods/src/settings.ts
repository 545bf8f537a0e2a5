import { kafkaSettings, mysqlSettings, redisSettings, serviceSettings } from '@timedeal/platform'
import { z } from 'zod'

/** Every setting of goods-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('goods-service', 8082),
  ...mysqlSettings('timedeal_goods'),
  ...redisSettings(),
  ...kafkaSettings(),
})

export type Settings = z.infer<typeof settingsSchema>
