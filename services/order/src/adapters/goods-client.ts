/**
 * order-service's view of goods-service: the price of a goods and its stock reservations, over
 * HTTP. Every call goes through one set of policies, composed once here (cockatiel):
 *
 *   bulkhead → retry → circuit breaker → timeout → undici request
 *
 * - The bulkhead lets `maxConcurrentCalls` calls out at once and queues up to `maxQueuedCalls`
 *   more; past that the caller gets 429 with `Retry-After`. A sale opening is a burst: sending
 *   it all at once would only make goods-service queue it, and our timeouts count that queue.
 * - The timeout starts when a call leaves the bulkhead, so time spent waiting in our own queue
 *   never times a call out, nor counts against goods-service.
 * - The breaker opens after `failureThreshold` failures in a row (timeouts, refused connections,
 *   5xx) and then answers 503 GOODS_UNAVAILABLE at once for `openMs`, before one trial call.
 * - A call that failed to connect, or whose connection broke, is tried once more: every call
 *   here is safe to repeat (reads, and reservation commands keyed by the reservation id).
 *
 * Calls go out through one undici Agent that keeps its connections alive, at most
 * `maxConcurrentCalls` per origin: the bulkhead never lets more out at once, so a burst reuses
 * the same few sockets instead of opening (and closing) one per call.
 */
import { INTERNAL_CREDENTIAL_HEADER, type Logger, PROBLEM_CONTENT_TYPE, Problem } from '@timedeal/platform'
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  CircuitState,
  ConsecutiveBreaker,
  ConstantBackoff,
  circuitBreaker,
  handleWhen,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { Agent, type Dispatcher, request } from 'undici'
import { z } from 'zod'
import type { GoodsCallMetrics } from '../metrics.ts'

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

/** goods-service's answer to a reservation: its state, and until when it holds the units. */
export interface Reservation {
  readonly state: 'RESERVED' | 'CONFIRMED' | 'RELEASED'
  /** When an unconfirmed reservation gives its units back (goods-service's clock). */
  readonly expiresAt: Date
}

/** Which reservation to release: goods-service keeps a reservation's records beside its goods. */
export interface ReservationRef {
  readonly reservationId: string
  readonly goodsId: string
}

/** What confirming a reservation came to: it is the buyer's now, or it went back to stock first. */
export type ConfirmOutcome = 'CONFIRMED' | 'EXPIRED' | 'RELEASED' | 'NOT_FOUND'

/** Trace headers of the request being served, passed on so one trace spans both services. */
export type CallContext = Readonly<Record<string, string>>

export interface GoodsClient {
  /** The goods, or undefined when goods-service does not know the id. */
  goods(goodsId: string, context?: CallContext): Promise<GoodsSummary | undefined>
  /** Takes the units; a refusal is thrown as goods-service's own problem (code and status). */
  reserve(request: ReservationRequest, context?: CallContext): Promise<Reservation>
  confirm(reservationId: string, context?: CallContext): Promise<ConfirmOutcome>
  /** Gives the units back; releasing twice, or an unknown id, is not an error. */
  release(reservation: ReservationRef, reason: string, context?: CallContext): Promise<void>
  /**
   * Confirms many reservations in one call per {@link MAX_CONFIRMATIONS_PER_CALL}; answers each
   * one's outcome by reservation id. An outage is thrown as it is for `confirm`.
   */
  confirmMany(reservations: readonly ReservationRef[], context?: CallContext): Promise<Map<string, BatchConfirmOutcome>>
  /** Closes the kept-alive connections; calls after it fail. */
  close?(): Promise<void>
}

export interface GoodsClientOptions {
  readonly baseUrl: string
  /** Where goods-service serves `/internal/*`; defaults to `baseUrl`. */
  readonly internalUrl?: string
  readonly internalSecret: string
  /** How long one call may take once it has left the queue. */
  readonly timeoutMs: number
  /** Calls in flight to goods-service at most; the rest wait in the queue. */
  readonly maxConcurrentCalls: number
  /** Calls that may wait for a free slot; one more is refused with 429. */
  readonly maxQueuedCalls: number
  /** Consecutive failures (timeouts, refused connections, 5xx) that open the breaker. */
  readonly failureThreshold: number
  /** How long an open breaker refuses calls before it lets one through to try. */
  readonly openMs: number
  /** How long an idle connection to goods-service stays open for the next call. */
  readonly keepAliveMs?: number
  readonly logger?: Logger
  readonly metrics?: GoodsCallMetrics
}

/** What the caller of a full queue is asked to wait before trying again. */
export const QUEUE_FULL_RETRY_AFTER_SECONDS = 1

/** A delay before the one repeat of a call whose connection failed. */
const RECONNECT_DELAY_MS = 50

/** Long enough to carry a connection across the pauses of a sale, short of a proxy's idle cut. */
const DEFAULT_KEEP_ALIVE_MS = 30_000

const goodsBody = z.object({ id: z.string(), sellerId: z.string(), price: z.number().int().nonnegative() })
const reservationBody = z.object({
  state: z.enum(['RESERVED', 'CONFIRMED', 'RELEASED']),
  expiresAt: z.iso.datetime({ offset: true }),
})
const problemFields = z.object({ code: z.string(), detail: z.string().optional() })

export const goodsUnavailable = (detail = 'goods-service cannot be reached; try again shortly') =>
  new Problem({ status: 503, code: 'GOODS_UNAVAILABLE', detail })

const queueFull = () =>
  new Problem({
    status: 429,
    code: 'TOO_MANY_PENDING_ORDERS',
    detail: 'too many orders are waiting for goods-service; try again in a moment',
    headers: { 'retry-after': String(QUEUE_FULL_RETRY_AFTER_SECONDS) },
  })

/** goods-service's answer, read whole inside the timeout so a stalled body times out too. */
interface Answer {
  readonly status: number
  readonly contentType: string
  readonly text: string
}

/** The system's and undici's codes for a connection that could not be made or broke: nothing was answered. */
const CONNECTION_FAILURES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
])
const isConnectionFailure = (error: Error) => CONNECTION_FAILURES.has((error as { code?: unknown }).code as string)

/** What tells the breaker goods-service is failing: no answer in time, no connection, or a 5xx. */
const isFailure = (error: Error) => error instanceof TaskCancelledError || isConnectionFailure(error)
const isServerError = (answer: unknown) => (answer as Answer).status >= 500

/** The policies every call to goods-service goes through, outermost first, and their parts. */
function goodsPolicies(options: GoodsClientOptions) {
  const queue = bulkhead(options.maxConcurrentCalls, options.maxQueuedCalls)
  const breaker = circuitBreaker(handleWhen(isFailure).orWhenResult(isServerError), {
    halfOpenAfter: options.openMs,
    breaker: new ConsecutiveBreaker(options.failureThreshold),
  })
  breaker.onBreak(() => options.logger?.warn('goods-service failed repeatedly; calls to it stop for a moment'))
  breaker.onReset(() => options.logger?.info('goods-service answers again'))
  const policy = wrap(
    queue,
    retry(handleWhen(isConnectionFailure), { maxAttempts: 1, backoff: new ConstantBackoff(RECONNECT_DELAY_MS) }),
    breaker,
    // A call returns only once its answer is read whole, so nothing is left to abort then; aborting
    // anyway costs every call an AbortError (a DOMException with its stack).
    timeout(options.timeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false }),
  )
  return { policy, queue, breaker }
}

export function createGoodsClient(options: GoodsClientOptions): GoodsClient {
  const agent = new Agent({
    connections: options.maxConcurrentCalls,
    keepAliveTimeout: options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
  })
  const base = options.baseUrl.replace(/\/+$/, '')
  const internalBase = (options.internalUrl ?? options.baseUrl).replace(/\/+$/, '')
  const policies = goodsPolicies(options)
  const { policy } = policies
  const refused = options.metrics?.refused
  options.metrics?.watch({
    inFlight: () => options.maxConcurrentCalls - policies.queue.executionSlots,
    queued: () => options.maxQueuedCalls - policies.queue.queueSlots,
    breakerOpen: () => policies.breaker.state !== CircuitState.Closed,
  })

  /** One call through the policies; a refusal before or instead of an answer is a problem. */
  async function call(
    method: string,
    url: string,
    body: unknown,
    context: CallContext = {},
    credential = false,
  ): Promise<Answer> {
    try {
      return await policy.execute(async ({ signal }) => {
        const response = await request(url, {
          dispatcher: agent,
          method: method as Dispatcher.HttpMethod,
          headers: {
            ...context,
            ...(credential ? { [INTERNAL_CREDENTIAL_HEADER]: options.internalSecret } : {}),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal,
        })
        const contentType = response.headers['content-type']
        return {
          status: response.statusCode,
          contentType: typeof contentType === 'string' ? contentType : '',
          text: await response.body.text(),
        }
      })
    } catch (error) {
      if (error instanceof BulkheadRejectedError) {
        refused?.inc({ reason: 'queue_full' })
        throw queueFull()
      }
      if (error instanceof BrokenCircuitError) {
        refused?.inc({ reason: 'breaker_open' })
        throw goodsUnavailable('goods-service failed repeatedly; not calling it for a moment')
      }
      if (error instanceof TaskCancelledError) {
        throw goodsUnavailable(`goods-service did not answer within ${options.timeoutMs} ms`)
      }
      if (error instanceof Error && isConnectionFailure(error)) throw goodsUnavailable()
      throw error
    }
  }

  const internal = (method: string, path: string, body: unknown, context?: CallContext) =>
    call(method, `${internalBase}/internal/reservations${path}`, body, context, true)

  /** goods-service's problem as ours: the buyer sees its code and status; 5xx become 503. */
  function problemOf(answer: Answer): Problem {
    if (answer.status >= 500) return goodsUnavailable(`goods-service answered ${answer.status}`)
    // A refused service credential is this service's misconfiguration, not the buyer's fault.
    if (answer.status === 401 || answer.status === 403) {
      return goodsUnavailable(`goods-service refused order-service's credential (${answer.status})`)
    }
    const parsed = problemFields.safeParse(parseJson(answer.text))
    if (!parsed.success || !answer.contentType.includes(PROBLEM_CONTENT_TYPE)) {
      return goodsUnavailable(`goods-service answered ${answer.status} without a problem description`)
    }
    return new Problem({
      status: answer.status as ContentfulStatusCode,
      code: parsed.data.code,
      detail: parsed.data.detail ?? 'goods-service refused the request',
    })
  }

  const isOk = (answer: Answer) => answer.status >= 200 && answer.status < 300

  return {
    async goods(goodsId, context) {
      const answer = await call('GET', `${base}/api/goods/${encodeURIComponent(goodsId)}`, undefined, context)
      if (answer.status === 404) return undefined
      if (!isOk(answer)) throw problemOf(answer)
      const parsed = goodsBody.safeParse(parseJson(answer.text))
      if (!parsed.success) throw goodsUnavailable('goods-service answered with goods this client cannot read')
      return parsed.data
    },

    async reserve(request, context) {
      const answer = await internal('POST', '', request, context)
      if (!isOk(answer)) throw problemOf(answer)
      const parsed = reservationBody.safeParse(parseJson(answer.text))
      if (!parsed.success) throw goodsUnavailable('goods-service answered with a reservation this client cannot read')
      return { state: parsed.data.state, expiresAt: new Date(parsed.data.expiresAt) }
    },

    async confirm(reservationId, context) {
      const answer = await internal('POST', `/${encodeURIComponent(reservationId)}/confirm`, undefined, context)
      if (isOk(answer)) return 'CONFIRMED'
      const problem = problemOf(answer)
      if (problem.code === 'RESERVATION_EXPIRED') return 'EXPIRED'
      if (problem.code === 'RESERVATION_RELEASED') return 'RELEASED'
      if (problem.code === 'RESERVATION_NOT_FOUND') return 'NOT_FOUND'
      throw problem
    },

    async release({ reservationId, goodsId }, reason, context) {
      const answer = await internal(
        'POST',
        `/${encodeURIComponent(reservationId)}/release`,
        { goodsId, reason },
        context,
      )
      if (isOk(answer) || answer.status === 404) return
      throw problemOf(answer)
    },

    async confirmMany(reservations, context) {
      const outcomes = new Map<string, BatchConfirmOutcome>()
      for (let start = 0; start < reservations.length; start += MAX_CONFIRMATIONS_PER_CALL) {
        const part = reservations.slice(start, start + MAX_CONFIRMATIONS_PER_CALL)
        const answer = await internal('POST', '/confirmations', { reservations: part }, context)
        if (!isOk(answer)) throw problemOf(answer)
        const parsed = confirmationsBody.safeParse(parseJson(answer.text))
        if (!parsed.success) throw goodsUnavailable('goods-service answered confirmations this client cannot read')
        for (const { reservationId, outcome } of parsed.data.outcomes) outcomes.set(reservationId, outcome)
      }
      return outcomes
    },

    async close() {
      await agent.close()
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

/** What confirming one reservation of a batch came to; `CONFLICT`: the id belongs to other goods. */
export type BatchConfirmOutcome = ConfirmOutcome | 'CONFLICT'

/** goods-service's limit on reservations per confirmations call. */
export const MAX_CONFIRMATIONS_PER_CALL = 200

const confirmationsBody = z.object({
  outcomes: z.array(
    z.object({
      reservationId: z.string(),
      outcome: z.enum(['CONFIRMED', 'EXPIRED', 'RELEASED', 'NOT_FOUND', 'CONFLICT']),
    }),
  ),
})
