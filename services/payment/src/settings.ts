import { kafkaSettings, mysqlSettings, serviceSettings } from '@timedeal/platform'
import { z } from 'zod'

/** Every setting of payment-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('payment-service', 8084),
  ...mysqlSettings('timedeal_payment'),
  ...kafkaSettings(),
})

export type Settings = z.infer<typeof settingsSchema>
