/**
 * order-service's view of goods-service: the price of a goods and its stock reservations, over
 * HTTP with a timeout per call. After a run of failures the client stops calling for a while
 * and answers 503 GOODS_UNAVAILABLE at once, so a goods-service outage does not pile up
 * requests (and connections) waiting on timeouts.
 */
import { INTERNAL_CREDENTIAL_HEADER, PROBLEM_CONTENT_TYPE, Problem } from '@timedeal/platform'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { z } from 'zod'

export interface GoodsSummary {
  readonly id: string
  readonly sellerId: string
  /** Whole won (KRW). */
  readonly price: number
}

export interface ReservationRequest {
  readonly reservationId: string
  readonly goodsId: string
  readonly userId: string
  readonly quantity: number
}

/** What confirming a reservation came to: it is the buyer's now, or it went back to stock first. */
export type ConfirmOutcome = 'CONFIRMED' | 'EXPIRED' | 'RELEASED' | 'NOT_FOUND'

/** Trace headers of the request being served, passed on so one trace spans both services. */
export type CallContext = Readonly<Record<string, string>>

export interface GoodsClient {
  /** The goods, or undefined when goods-service does not know the id. */
  goods(goodsId: string, context?: CallContext): Promise<GoodsSummary | undefined>
  /** Takes the units; a refusal is thrown as goods-service's own problem (code and status). */
  reserve(request: ReservationRequest, context?: CallContext): Promise<void>
  confirm(reservationId: string, context?: CallContext): Promise<ConfirmOutcome>
  /** Gives the units back; releasing twice, or an unknown id, is not an error. */
  release(reservationId: string, reason: string, context?: CallContext): Promise<void>
}

export interface GoodsClientOptions {
  readonly baseUrl: string
  /** Where goods-service serves `/internal/*`; defaults to `baseUrl`. */
  readonly internalUrl?: string
  readonly internalSecret: string
  readonly timeoutMs: number
  /** Consecutive failures (timeouts, refused connections, 5xx) that open the breaker. */
  readonly failureThreshold: number
  /** How long an open breaker refuses calls before it lets one through to try. */
  readonly openMs: number
  readonly fetch?: typeof fetch
  readonly now?: () => number
}

const goodsBody = z.object({ id: z.string(), sellerId: z.string(), price: z.number().int().nonnegative() })
const problemFields = z.object({ code: z.string(), detail: z.string().optional() })

export const goodsUnavailable = (detail = 'goods-service cannot be reached; try again shortly') =>
  new Problem(503, 'GOODS_UNAVAILABLE', detail)

/**
 * Closed → open after `failureThreshold` failures in a row; open refuses for `openMs`; then
 * half-open lets one call through, whose outcome closes it or opens it again.
 */
export class CircuitBreaker {
  readonly #threshold: number
  readonly #openMs: number
  readonly #now: () => number
  #failures = 0
  #openedAt: number | undefined
  #trial = false

  constructor(threshold: number, openMs: number, now: () => number = Date.now) {
    this.#threshold = threshold
    this.#openMs = openMs
    this.#now = now
  }

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.#openedAt === undefined) return 'closed'
    return this.#now() - this.#openedAt >= this.#openMs ? 'half-open' : 'open'
  }

  /** Whether a call may go out now; in half-open, only one at a time. */
  allow(): boolean {
    const state = this.state
    if (state === 'closed') return true
    if (state === 'open' || this.#trial) return false
    this.#trial = true
    return true
  }

  succeeded(): void {
    this.#failures = 0
    this.#openedAt = undefined
    this.#trial = false
  }

  failed(): void {
    this.#failures += 1
    if (this.#trial || this.#failures >= this.#threshold) this.#openedAt = this.#now()
    this.#trial = false
  }
}

export function createGoodsClient(options: GoodsClientOptions): GoodsClient {
  const doFetch = options.fetch ?? fetch
  const breaker = new CircuitBreaker(options.failureThreshold, options.openMs, options.now)
  const base = options.baseUrl.replace(/\/+$/, '')
  const internalBase = (options.internalUrl ?? options.baseUrl).replace(/\/+$/, '')

  /** One call; answers with goods-service's response, which the callers read. */
  async function call(method: string, path: string, body: unknown, context: CallContext = {}): Promise<Response> {
    if (!breaker.allow()) throw goodsUnavailable('goods-service failed repeatedly; not calling it for a moment')
    let response: Response
    try {
      response = await doFetch(`${path.startsWith('/internal/') ? internalBase : base}${path}`, {
        method,
        headers: {
          ...context,
          [INTERNAL_CREDENTIAL_HEADER]: options.internalSecret,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(options.timeoutMs),
      })
    } catch (error) {
      breaker.failed()
      const timedOut = error instanceof Error && error.name === 'TimeoutError'
      throw goodsUnavailable(
        timedOut ? `goods-service did not answer within ${options.timeoutMs} ms` : 'goods-service cannot be reached',
      )
    }
    if (response.status >= 500) breaker.failed()
    else breaker.succeeded()
    return response
  }

  /** goods-service's problem as ours: the buyer sees its code and status; 5xx become 503. */
  async function problemOf(response: Response): Promise<Problem> {
    const text = await response.text()
    if (response.status >= 500) return goodsUnavailable(`goods-service answered ${response.status}`)
    // A refused service credential is this service's misconfiguration, not the buyer's fault.
    if (response.status === 401 || response.status === 403) {
      return goodsUnavailable(`goods-service refused order-service's credential (${response.status})`)
    }
    const parsed = problemFields.safeParse(parseJson(text))
    if (!parsed.success || !(response.headers.get('content-type') ?? '').includes(PROBLEM_CONTENT_TYPE)) {
      return goodsUnavailable(`goods-service answered ${response.status} without a problem description`)
    }
    return new Problem(
      response.status as ContentfulStatusCode,
      parsed.data.code,
      parsed.data.detail ?? 'goods-service refused the request',
    )
  }

  return {
    async goods(goodsId, context) {
      const response = await call('GET', `/api/goods/${encodeURIComponent(goodsId)}`, undefined, context)
      if (response.status === 404) {
        await response.body?.cancel()
        return undefined
      }
      if (!response.ok) throw await problemOf(response)
      const parsed = goodsBody.safeParse(await response.json())
      if (!parsed.success) throw goodsUnavailable('goods-service answered with goods this client cannot read')
      return parsed.data
    },

    async reserve(request, context) {
      const response = await call('POST', '/internal/reservations', request, context)
      if (!response.ok) throw await problemOf(response)
      await response.body?.cancel()
    },

    async confirm(reservationId, context) {
      const response = await call(
        'POST',
        `/internal/reservations/${encodeURIComponent(reservationId)}/confirm`,
        undefined,
        context,
      )
      if (response.ok) {
        await response.body?.cancel()
        return 'CONFIRMED'
      }
      const problem = await problemOf(response)
      if (problem.code === 'RESERVATION_EXPIRED') return 'EXPIRED'
      if (problem.code === 'RESERVATION_RELEASED') return 'RELEASED'
      if (problem.code === 'RESERVATION_NOT_FOUND') return 'NOT_FOUND'
      throw problem
    },

    async release(reservationId, reason, context) {
      const response = await call(
        'POST',
        `/internal/reservations/${encodeURIComponent(reservationId)}/release`,
        { reason },
        context,
      )
      if (response.ok || response.status === 404) {
        await response.body?.cancel()
        return
      }
      throw await problemOf(response)
    },
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
