import {
  type AppEnv,
  type EventBus,
  type EventSubscription,
  eventInbox,
  type Logger,
  type RunningRelay,
  startOutboxRelay,
  type TokenVerifier,
  tokenVerifierFromSettings,
} from '@timedeal/platform'
import type { Hono } from 'hono'
import type { Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import { subscribeOrderEvents } from './adapters/order-events.ts'
import { PaymentStore } from './adapters/payment-store.ts'
import type { PaymentProvider } from './adapters/provider.ts'
import { providerCalls } from './adapters/provider-calls.ts'
import { SandboxProvider } from './adapters/sandbox-provider.ts'
import { createPayments, type Payments } from './flows/payments.ts'
import { publicRoutes } from './http/index.ts'
import { createPaymentMetrics } from './metrics.ts'
import type { Settings } from './settings.ts'

export interface PaymentServiceDeps {
  readonly settings: Settings
  readonly sequelize: Sequelize
  readonly bus: EventBus
  readonly logger: Logger
  readonly metrics: Registry
  /** Defaults to the provider `PAYMENT_PROVIDER` names. */
  readonly provider?: PaymentProvider
  /** Defaults to user-service's JWKS at `JWT_JWKS_URL`. */
  readonly verifier?: TokenVerifier
}

export interface PaymentService {
  readonly publicRoutes: Hono<AppEnv>
  readonly payments: Payments
  readonly store: PaymentStore
  readonly relay: RunningRelay
  /** Stops the consumer, then the relay. */
  stop(): Promise<void>
}

/**
 * Builds payment-service from connected clients and starts its workers: the outbox relay and
 * the order-event consumer. `main.ts` and the tests build it the same way.
 */
export async function startPaymentService(deps: PaymentServiceDeps): Promise<PaymentService> {
  const { settings, sequelize, bus, logger } = deps
  const metrics = createPaymentMetrics(deps.metrics)
  const verifier = deps.verifier ?? tokenVerifierFromSettings(settings)
  const provider =
    deps.provider ??
    new SandboxProvider({
      sequelize,
      failureRate: settings.SANDBOX_FAILURE_RATE,
      latencyMs: settings.SANDBOX_LATENCY_MS,
      lateCaptureMs: settings.SANDBOX_LATE_CAPTURE_MS,
      outageMs: settings.SANDBOX_OUTAGE_MS,
    })
  const store = new PaymentStore(sequelize)
  const relay = await startOutboxRelay({
    sequelize,
    bus,
    logger,
    metrics: deps.metrics,
    settings,
  })
  const inbox = eventInbox({ sequelize, consumer: settings.ORDER_EVENTS_GROUP, afterCommit: relay.relay.wake })
  const payments = createPayments({
    sequelize,
    store,
    provider: providerCalls(provider, {
      timeoutMs: settings.PROVIDER_TIMEOUT_MS,
      lookupRetries: settings.PROVIDER_LOOKUP_RETRIES,
      lookupBackoffMs: settings.PROVIDER_LOOKUP_BACKOFF_MS,
      logger: logger.child({ component: 'provider' }),
      lookups: metrics.providerLookups,
    }),
    chargeDeadlineMs: settings.CHARGE_DEADLINE_MS,
    chargeConcurrency: settings.CHARGE_CONCURRENCY,
    inbox,
    logger: logger.child({ component: 'payments' }),
    metrics,
    afterCommit: relay.relay.wake,
  })

  let subscription: EventSubscription | undefined
  if (settings.ORDER_EVENTS_ENABLED) {
    subscription = await subscribeOrderEvents({ bus, group: settings.ORDER_EVENTS_GROUP, settings, payments })
  }

  return {
    publicRoutes: publicRoutes({ payments, verifier }),
    payments,
    store,
    relay,
    async stop() {
      await subscription?.close()
      // Last, so events the consumer wrote still leave before the producer closes.
      await relay.stop()
    },
  }
}
