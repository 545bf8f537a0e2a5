import { kafkaSettings, mysqlSettings, serviceSettings } from '@timedeal/platform'
import { z } from 'zod'

/** Every setting of order-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('order-service', 8083),
  ...mysqlSettings('timedeal_order'),
  ...kafkaSettings(),
})

export type Settings = z.infer<typeof settingsSchema>
