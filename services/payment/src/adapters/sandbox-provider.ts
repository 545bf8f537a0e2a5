import { createHash } from 'node:crypto'
import {
  type ChargeRequest,
  type ChargeResult,
  type PaymentProvider,
  ProviderUnavailableError,
  type RefundRequest,
} from './provider.ts'

/**
 * What the sandbox does with a charge, decided by the request alone so tests and demos can ask
 * for each outcome:
 * - token `tok_decline`, or an amount ending in 13 (e.g. 10,013 won): declined, `CARD_DECLINED`;
 * - token `tok_timeout`, or an amount ending in 408: never answers (the caller's timeout decides);
 * - token `tok_unavailable`, or an amount ending in 503: the provider is down, every time;
 * - anything else is approved, unless the random failure rate declines it (`RANDOM_DECLINE`).
 */
export type SandboxBehaviour = 'approve' | 'decline' | 'hang' | 'unavailable'

export function sandboxBehaviour(request: Pick<ChargeRequest, 'amount' | 'paymentToken'>): SandboxBehaviour {
  if (request.paymentToken === 'tok_decline' || request.amount % 100 === 13) return 'decline'
  if (request.paymentToken === 'tok_timeout' || request.amount % 1000 === 408) return 'hang'
  if (request.paymentToken === 'tok_unavailable' || request.amount % 1000 === 503) return 'unavailable'
  return 'approve'
}

export interface SandboxOptions {
  /** 0..1: share of otherwise approved charges declined at random. */
  readonly failureRate: number
  /** Time each call takes. */
  readonly latencyMs: number
  readonly random?: () => number
}

/** Keys remembered for idempotent answers; the oldest are forgotten beyond this. */
const REMEMBERED_KEYS = 50_000

export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox'
  readonly #options: SandboxOptions
  readonly #random: () => number
  readonly #charges = new Map<string, ChargeResult>()
  readonly #refunds = new Map<string, string>()

  constructor(options: SandboxOptions) {
    this.#options = options
    this.#random = options.random ?? Math.random
  }

  async charge(request: ChargeRequest, signal: AbortSignal): Promise<ChargeResult> {
    await pause(this.#options.latencyMs, signal)
    const known = this.#charges.get(request.idempotencyKey)
    if (known) return known
    const behaviour = sandboxBehaviour(request)
    if (behaviour === 'hang') await pause(Number.POSITIVE_INFINITY, signal)
    if (behaviour === 'unavailable') throw new ProviderUnavailableError('the sandbox provider is unavailable')
    let result: ChargeResult
    if (behaviour === 'decline') result = { approved: false, code: 'CARD_DECLINED' }
    else if (this.#random() < this.#options.failureRate) result = { approved: false, code: 'RANDOM_DECLINE' }
    else result = { approved: true, reference: `sbx_ch_${digest(request.idempotencyKey)}` }
    remember(this.#charges, request.idempotencyKey, result)
    return result
  }

  async refund(request: RefundRequest, signal: AbortSignal): Promise<{ reference: string }> {
    await pause(this.#options.latencyMs, signal)
    const reference = this.#refunds.get(request.idempotencyKey) ?? `sbx_re_${digest(request.idempotencyKey)}`
    remember(this.#refunds, request.idempotencyKey, reference)
    return { reference }
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value)
  if (map.size > REMEMBERED_KEYS) {
    const oldest = map.keys().next()
    if (!oldest.done) map.delete(oldest.value)
  }
}

const digest = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 24)

/** Waits `ms` (forever for Infinity), or rejects as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason)
  if (ms <= 0) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined
    function done() {
      signal.removeEventListener('abort', aborted)
      resolve()
    }
    function aborted() {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', aborted, { once: true })
  })
}
