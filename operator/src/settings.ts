import {
  bool,
  kafkaSettings,
  mysqlSettings,
  nonNegativeInt,
  port,
  positiveInt,
  processSettings,
  redisSettings,
  SettingsError,
} from '@timedeal/platform'
import { z } from 'zod'
import { stockWarmupSettings } from './stock-warmup/settings.ts'

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** A comma-separated list of namespaces; empty means every namespace. */
const namespaceList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((namespace) => namespace.trim())
      .filter((namespace) => namespace !== ''),
  )
  .pipe(z.array(z.string().max(63).regex(dnsLabel, 'expected namespace names (lowercase DNS labels)')))

/** Every setting of the operator, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...processSettings('timedeal-operator'),
  /** /healthz, /readyz and /metrics. */
  OPERATOR_HOST: z.string().default('0.0.0.0'),
  OPERATOR_PORT: port(8090),
  /** How long a stopping operator stays not-ready before it stops reconciling. */
  SHUTDOWN_DRAIN_MS: nonNegativeInt(0),
  /** The kubeconfig to use outside a cluster; unset means in-cluster, then ~/.kube/config. */
  KUBECONFIG: z.string().optional(),
  WATCH_NAMESPACES: namespaceList.default([]),
  LEADER_ELECTION_ENABLED: bool(true),
  LEADER_ELECTION_LEASE_NAME: z.string().regex(dnsLabel).default('timedeal-operator'),
  LEADER_ELECTION_NAMESPACE: z.string().regex(dnsLabel).default('default'),
  /** This replica's name in the Lease; the pod name in a cluster. */
  LEADER_ELECTION_IDENTITY: z.string().min(1).optional(),
  /** How long a Lease stays held after its last renewal; a dead leader is replaced after this. */
  LEADER_ELECTION_LEASE_DURATION_MS: positiveInt(15_000),
  /** The leader gives up leading when it could not renew for this long (less than the lease duration). */
  LEADER_ELECTION_RENEW_DEADLINE_MS: positiveInt(10_000),
  /** How often the leader renews and a follower tries to take the Lease. */
  LEADER_ELECTION_RETRY_PERIOD_MS: positiveInt(2_000),
  /** How many keys are reconciled at the same time (never one key twice). */
  RECONCILE_CONCURRENCY: positiveInt(8),
  /** Per-key retry backoff after a failed reconcile: doubles from the base up to the max. */
  RECONCILE_RETRY_BASE_MS: positiveInt(500),
  RECONCILE_RETRY_MAX_MS: positiveInt(300_000),
  /** The global rate limit on reconciles (a token bucket): refill per second and burst. */
  RECONCILE_RATE_PER_SECOND: positiveInt(50),
  RECONCILE_BURST: positiveInt(200),
  /** Every resource is reconciled again this often even without changes (drift from outside). */
  RESYNC_PERIOD_MS: positiveInt(10 * 60_000),
  ...kafkaSettings(),
  ...redisSettings(),
  /** The warm-up source when a StockWarmup names no Secret: goods-service's database. */
  ...mysqlSettings('timedeal_goods'),
  ...stockWarmupSettings(),
})

export type OperatorSettings = z.infer<typeof settingsSchema>

/** Checks what one field's schema cannot: the timing relations of leader election. */
export function checkSettings(settings: OperatorSettings): OperatorSettings {
  if (settings.LEADER_ELECTION_RENEW_DEADLINE_MS >= settings.LEADER_ELECTION_LEASE_DURATION_MS) {
    throw new SettingsError(
      `invalid setting LEADER_ELECTION_RENEW_DEADLINE_MS="${settings.LEADER_ELECTION_RENEW_DEADLINE_MS}": expected less than LEADER_ELECTION_LEASE_DURATION_MS (${settings.LEADER_ELECTION_LEASE_DURATION_MS})`,
    )
  }
  if (settings.LEADER_ELECTION_RETRY_PERIOD_MS >= settings.LEADER_ELECTION_RENEW_DEADLINE_MS) {
    throw new SettingsError(
      `invalid setting LEADER_ELECTION_RETRY_PERIOD_MS="${settings.LEADER_ELECTION_RETRY_PERIOD_MS}": expected less than LEADER_ELECTION_RENEW_DEADLINE_MS (${settings.LEADER_ELECTION_RENEW_DEADLINE_MS})`,
    )
  }
  if (settings.RECONCILE_RETRY_BASE_MS > settings.RECONCILE_RETRY_MAX_MS) {
    throw new SettingsError(
      `invalid setting RECONCILE_RETRY_BASE_MS="${settings.RECONCILE_RETRY_BASE_MS}": expected at most RECONCILE_RETRY_MAX_MS (${settings.RECONCILE_RETRY_MAX_MS})`,
    )
  }
  return settings
}
