import type { Logger } from '@timedeal/platform'
import { ExponentialBackoff, handleType, retry, TaskCancelledError, TimeoutStrategy, timeout } from 'cockatiel'
import type { Counter } from 'prom-client'
import {
  type ChargeLookup,
  type ChargeRequest,
  type ChargeResult,
  type PaymentProvider,
  ProviderUnavailableError,
  type RefundRequest,
} from './provider.ts'

/** The provider gave no answer in time: it may have taken the money or not; only a lookup can tell. */
export const NO_ANSWER = 'NO_ANSWER'

/** What a lookup ends with once the provider can say. */
export type SettledCharge = Exclude<ChargeLookup, { state: 'pending' }>

export interface ProviderCallsOptions {
  /** How long one call may take before it counts as unanswered. */
  readonly timeoutMs: number
  /** Lookups made again, with backoff, while the provider cannot say what it did. */
  readonly lookupRetries: number
  /** The first wait between lookups; it grows exponentially (with jitter) up to {@link MAX_LOOKUP_BACKOFF_MS}. */
  readonly lookupBackoffMs: number
  readonly logger: Logger
  /** Counts every lookup by the provider's answer. */
  readonly lookups: Counter<'answer'>
}

const MAX_LOOKUP_BACKOFF_MS = 5_000

/** The provider as payment-service calls it: every call bounded in time, lookups retried. */
export interface ProviderCalls {
  readonly name: string
  /** The provider's answer, or {@link NO_ANSWER} when none came in time. */
  charge(request: ChargeRequest): Promise<ChargeResult | typeof NO_ANSWER>
  /**
   * What the provider did under `idempotencyKey`, asked again while it cannot say (down, slow,
   * still deciding). Rejects with {@link ProviderUnavailableError} when it still cannot after
   * every retry, so the event is handled again later rather than guessed at.
   */
  settledCharge(idempotencyKey: string): Promise<SettledCharge>
  /** Rejects when no answer came in time; the refund's key makes the retry safe. */
  refund(request: RefundRequest): Promise<{ reference: string }>
}

/** Wraps `provider` in payment-service's policies (cockatiel), composed once here. */
export function providerCalls(provider: PaymentProvider, options: ProviderCallsOptions): ProviderCalls {
  const { logger, lookups } = options
  const withinTime = timeout(options.timeoutMs, TimeoutStrategy.Aggressive)
  const untilSettled = retry(
    handleType(ProviderUnavailableError)
      .orType(TaskCancelledError)
      .orWhenResult((answer) => (answer as ChargeLookup).state === 'pending'),
    {
      maxAttempts: options.lookupRetries,
      backoff: new ExponentialBackoff({ initialDelay: options.lookupBackoffMs, maxDelay: MAX_LOOKUP_BACKOFF_MS }),
    },
  )

  async function lookUp(idempotencyKey: string, signal: AbortSignal): Promise<ChargeLookup> {
    try {
      const answer = await provider.findCharge(idempotencyKey, signal)
      lookups.inc({ answer: answer.state })
      return answer
    } catch (error) {
      lookups.inc({ answer: 'failed' })
      throw error
    }
  }

  return {
    name: provider.name,

    async charge(request) {
      try {
        return await withinTime.execute(({ signal }) => provider.charge(request, signal))
      } catch (error) {
        if (error instanceof TaskCancelledError) return NO_ANSWER
        throw error
      }
    },

    async settledCharge(idempotencyKey) {
      let answer: ChargeLookup
      try {
        answer = await untilSettled.execute(({ attempt }) => {
          if (attempt > 0)
            logger.info({ idempotencyKey, attempt }, 'asking the provider again what it did with a charge')
          return withinTime.execute(({ signal }) => lookUp(idempotencyKey, signal))
        })
      } catch (error) {
        if (!(error instanceof TaskCancelledError)) throw error
        throw new ProviderUnavailableError(`the provider did not answer the lookup of ${idempotencyKey} in time`)
      }
      if (answer.state === 'pending') {
        throw new ProviderUnavailableError(`the provider cannot say yet what it did with ${idempotencyKey}`)
      }
      return answer
    },

    async refund(request) {
      try {
        return await withinTime.execute(({ signal }) => provider.refund(request, signal))
      } catch (error) {
        if (!(error instanceof TaskCancelledError)) throw error
        throw new ProviderUnavailableError(`the provider did not answer the refund ${request.idempotencyKey} in time`)
      }
    },
  }
}
