import {
  authSettings,
  eventConsumerSettings,
  kafkaSettings,
  mysqlSettings,
  nonNegativeInt,
  positiveInt,
  relaySettings,
  serviceSettings,
} from '@timedeal/platform'
import { z } from 'zod'

const { JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE } = authSettings()

const rate = z.coerce
  .number({ error: 'expected a number between 0 and 1' })
  .min(0, 'expected a number between 0 and 1')
  .max(1, 'expected a number between 0 and 1')

/** Every setting of payment-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('payment-service', 8084),
  ...mysqlSettings('timedeal_payment'),
  ...kafkaSettings(),
  JWT_JWKS_URL,
  JWT_ISSUER,
  JWT_AUDIENCE,
  ...relaySettings(),
  ...eventConsumerSettings('ORDER', 'payment-service'),
  PAYMENT_PROVIDER: z.enum(['sandbox'], { error: 'expected sandbox' }).default('sandbox'),
  /**
   * An order placed longer ago than this is not charged (ORDER_TOO_OLD): order-service has
   * expired it by then (at its reservation's hold, goods-service's RESERVATION_HOLD_MS), so a charge would only be refunded again.
   */
  CHARGE_DEADLINE_MS: positiveInt(10 * 60_000),
  /** Provider charges in flight at once, over all the partitions' batches of OrderPlaced. */
  CHARGE_CONCURRENCY: positiveInt(32),
  /** How long one provider call may take; a charge with no answer by then is looked up by its key. */
  PROVIDER_TIMEOUT_MS: positiveInt(3_000),
  /**
   * Lookups made again while the provider cannot say what it did with a charge (down, slow, still
   * deciding); after the last one the event is handled again later, never recorded as failed.
   */
  PROVIDER_LOOKUP_RETRIES: nonNegativeInt(6),
  /** The first wait between lookups; it doubles (with jitter) up to 5 s. */
  PROVIDER_LOOKUP_BACKOFF_MS: positiveInt(250),
  /** Share of sandbox charges declined at random, on top of the deterministic rules. */
  SANDBOX_FAILURE_RATE: rate.default(0),
  /** Time the sandbox takes per call, to look like a real provider. */
  SANDBOX_LATENCY_MS: nonNegativeInt(0),
  /** How long after the request the sandbox takes the money of a late capture (an amount ending in 504). */
  SANDBOX_LATE_CAPTURE_MS: nonNegativeInt(5_000),
  /** How long the sandbox stays down for a charge that met an outage (an amount ending in 503). */
  SANDBOX_OUTAGE_MS: nonNegativeInt(10_000),
})

export type Settings = z.infer<typeof settingsSchema>
