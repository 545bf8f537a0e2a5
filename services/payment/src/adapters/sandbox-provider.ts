import { createHash } from 'node:crypto'
import type { Sequelize } from 'sequelize'
import {
  type ChargeLookup,
  type ChargeRequest,
  type ChargeResult,
  type PaymentProvider,
  ProviderUnavailableError,
  type RefundRequest,
} from './provider.ts'
import { type SandboxCharge, SandboxLedger } from './sandbox-ledger.ts'

/**
 * What the sandbox does with a charge, decided by the request alone so tests and demos can ask
 * for each outcome:
 * - token `tok_decline`, or an amount ending in 13 (e.g. 10,013 won): declined, `CARD_DECLINED`;
 * - token `tok_timeout`, or an amount ending in 408: never answers and takes nothing;
 * - token `tok_late_capture`, or an amount ending in 504: takes the money a while later
 *   (`lateCaptureMs`) but never answers the request itself;
 * - token `tok_unavailable`, or an amount ending in 503: the provider is down for this charge for
 *   `outageMs` after its first request (every call about it fails), then approves it;
 * - anything else is approved, unless the random failure rate declines it (`RANDOM_DECLINE`).
 */
export type SandboxBehaviour = 'approve' | 'decline' | 'hang' | 'late-capture' | 'unavailable'

export function sandboxBehaviour(request: Pick<ChargeRequest, 'amount' | 'paymentToken'>): SandboxBehaviour {
  if (request.paymentToken === 'tok_decline' || request.amount % 100 === 13) return 'decline'
  if (request.paymentToken === 'tok_timeout' || request.amount % 1000 === 408) return 'hang'
  if (request.paymentToken === 'tok_late_capture' || request.amount % 1000 === 504) return 'late-capture'
  if (request.paymentToken === 'tok_unavailable' || request.amount % 1000 === 503) return 'unavailable'
  return 'approve'
}

/** The answer to a charge on a key that a lookup closed before any charge came. */
export const CHARGE_CLOSED = 'CHARGE_CLOSED'

export interface SandboxOptions {
  /** Where the sandbox keeps its books: payment-service's database. */
  readonly sequelize: Sequelize
  /** 0..1: share of otherwise approved charges declined at random. */
  readonly failureRate: number
  /** Time each call takes. */
  readonly latencyMs: number
  /** How long after the request a late capture takes the money. */
  readonly lateCaptureMs: number
  /** How long the provider stays down for a charge that met an outage. */
  readonly outageMs: number
  readonly random?: () => number
  readonly clock?: () => Date
}

/**
 * The provider that ships with the project. Its charges and refunds are kept in MySQL like a
 * real provider's books: they outlive a restart of payment-service, every replica sees the same
 * ones, and a lookup by idempotency key finds what a timed-out request took.
 */
export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox'
  readonly #options: SandboxOptions
  readonly #random: () => number
  readonly #clock: () => Date
  readonly #ledger: SandboxLedger

  constructor(options: SandboxOptions) {
    this.#options = options
    this.#random = options.random ?? Math.random
    this.#clock = options.clock ?? (() => new Date())
    this.#ledger = new SandboxLedger(options.sequelize)
  }

  async charge(request: ChargeRequest, signal: AbortSignal): Promise<ChargeResult> {
    await pause(this.#options.latencyMs, signal)
    const known = await this.#ledger.findCharge(request.idempotencyKey)
    if (known?.outcome === 'DOWN') {
      this.#failDuringOutage(known)
      return this.#answer(await this.#ledger.replaceOutage(this.#decide(request, 'approve')), signal)
    }
    if (known) return this.#answer(known, signal)
    const behaviour = sandboxBehaviour(request)
    if (behaviour === 'hang') await pause(Number.POSITIVE_INFINITY, signal)
    if (behaviour === 'unavailable') {
      const at = this.#clock()
      await this.#ledger.recordCharge({
        ...this.#closed(request.idempotencyKey, at),
        orderId: request.orderId,
        amount: request.amount,
        outcome: 'DOWN',
        settlesAt: new Date(at.getTime() + this.#options.outageMs),
      })
      throw new ProviderUnavailableError('the sandbox provider is unavailable')
    }
    const standing = await this.#ledger.recordCharge(this.#decide(request, behaviour))
    // The money is taken (or about to be); the answer is what never comes back.
    if (behaviour === 'late-capture') await pause(Number.POSITIVE_INFINITY, signal)
    return this.#answer(standing, signal)
  }

  async findCharge(idempotencyKey: string, signal: AbortSignal): Promise<ChargeLookup> {
    await pause(this.#options.latencyMs, signal)
    const at = this.#clock()
    // Closing the key is what makes "absent" final: a request still on its way finds it closed.
    let entry =
      (await this.#ledger.findCharge(idempotencyKey)) ??
      (await this.#ledger.recordCharge(this.#closed(idempotencyKey, at)))
    if (entry.outcome === 'DOWN') {
      this.#failDuringOutage(entry)
      entry = await this.#ledger.replaceOutage(this.#closed(idempotencyKey, at))
    }
    if (entry.outcome === 'CLOSED') return { state: 'absent' }
    if (entry.settlesAt > at) return { state: 'pending' }
    if (entry.outcome === 'CAPTURED')
      return { state: 'captured', reference: entry.reference ?? '', amount: entry.amount }
    return { state: 'declined', code: entry.declineCode ?? 'DECLINED' }
  }

  async refund(request: RefundRequest, signal: AbortSignal): Promise<{ reference: string }> {
    await pause(this.#options.latencyMs, signal)
    const standing = await this.#ledger.recordRefund({
      idempotencyKey: request.idempotencyKey,
      chargeReference: request.chargeReference,
      amount: request.amount,
      reference: `sbx_re_${digest(request.idempotencyKey)}`,
      refundedAt: this.#clock(),
    })
    return { reference: standing.reference }
  }

  #closed(idempotencyKey: string, at: Date): SandboxCharge {
    const nothing = { orderId: null, amount: 0, reference: null, declineCode: null }
    return { idempotencyKey, ...nothing, outcome: 'CLOSED', requestedAt: at, settlesAt: at }
  }

  /** Every call about a charge that met an outage fails until the outage is over. */
  #failDuringOutage(down: SandboxCharge): void {
    if (down.settlesAt > this.#clock()) throw new ProviderUnavailableError('the sandbox provider is unavailable')
  }

  #decide(request: ChargeRequest, behaviour: SandboxBehaviour): SandboxCharge {
    const at = this.#clock()
    const entry = {
      idempotencyKey: request.idempotencyKey,
      orderId: request.orderId,
      amount: request.amount,
      requestedAt: at,
      settlesAt: at,
    }
    const declined = (code: string): SandboxCharge => ({
      ...entry,
      outcome: 'DECLINED',
      reference: null,
      declineCode: code,
    })
    if (behaviour === 'decline') return declined('CARD_DECLINED')
    if (behaviour !== 'late-capture' && this.#random() < this.#options.failureRate) return declined('RANDOM_DECLINE')
    const settlesAt = behaviour === 'late-capture' ? new Date(at.getTime() + this.#options.lateCaptureMs) : at
    const reference = `sbx_ch_${digest(request.idempotencyKey)}`
    return { ...entry, settlesAt, outcome: 'CAPTURED', reference, declineCode: null }
  }

  /** A key's standing answer, given once it is decided (a repeated request waits for that). */
  async #answer(entry: SandboxCharge, signal: AbortSignal): Promise<ChargeResult> {
    if (entry.outcome === 'CLOSED') return { approved: false, code: CHARGE_CLOSED }
    await pause(entry.settlesAt.getTime() - this.#clock().getTime(), signal)
    if (entry.outcome === 'CAPTURED') return { approved: true, reference: entry.reference ?? '' }
    return { approved: false, code: entry.declineCode ?? 'DECLINED' }
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
