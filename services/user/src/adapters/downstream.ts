/**
 * A read-only HTTP client of one other service, for the parts of my page. Every call goes
 * through one set of policies, composed once here (cockatiel), one set per service:
 *
 *   timeout → bulkhead → retry → circuit breaker → fetch
 *
 * - The timeout is the whole budget of a part: queueing, every attempt and the backoff between
 *   them. A page never waits longer than this for any part.
 * - The bulkhead caps the calls in flight to the service; a few more wait, the rest are refused
 *   at once. A slow service then holds a bounded number of our sockets, not all of them.
 * - A GET that could not connect, or was answered 503, is tried again after a short backoff:
 *   reads are safe to repeat, and the timeout above bounds the retries.
 * - The breaker opens after `failureThreshold` failed attempts in a row (no connection, a 5xx,
 *   no answer within the budget); while open, calls fail at once without reaching the service,
 *   until `halfOpenAfterMs` lets one trial call through.
 */
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel'
import type { z } from 'zod'

export interface DownstreamOptions {
  /** The service's name in logs, metrics and degraded reasons, e.g. `order-service`. */
  readonly name: string
  readonly baseUrl: string
  /** The whole budget of one call, retries included. */
  readonly timeoutMs: number
  /** Repeats of a GET that could not connect or was answered 503. */
  readonly retries: number
  readonly retryBackoffMs: number
  readonly maxConcurrentCalls: number
  readonly maxQueuedCalls: number
  readonly failureThreshold: number
  readonly halfOpenAfterMs: number
  readonly observer?: DownstreamObserver
  readonly onBreakerChange?: (state: BreakerState) => void
}

export type BreakerState = 'closed' | 'open' | 'half_open'

/** How one call ended, as the metrics and the degraded reasons name it. */
export type CallOutcome = 'ok' | 'timeout' | 'breaker_open' | 'busy' | 'unreachable' | 'bad_status' | 'bad_answer'

export interface DownstreamObserver {
  callEnded(service: string, outcome: CallOutcome, seconds: number): void
}

/** A call that gave no usable answer, with why, in words a page can show. */
export class DownstreamFailure extends Error {
  readonly outcome: Exclude<CallOutcome, 'ok'>

  constructor(outcome: Exclude<CallOutcome, 'ok'>, message: string) {
    super(message)
    this.name = 'DownstreamFailure'
    this.outcome = outcome
  }
}

export interface Downstream {
  readonly name: string
  /** GETs `path` with `headers` and parses the JSON answer; any failure is a {@link DownstreamFailure}. */
  getJson<T>(path: string, headers: Record<string, string>, schema: z.ZodType<T>): Promise<T>
  breakerState(): BreakerState
}

interface Answer {
  readonly status: number
  readonly text: string
}

/** fetch's own failure to connect or to keep a connection: nothing was answered. */
const isConnectionFailure = (error: Error) => error instanceof TypeError && error.message === 'fetch failed'
/** An attempt the timeout cut short: the service did not answer in time. */
const isAborted = (error: Error) => error.name === 'AbortError' || error.name === 'TimeoutError'
const statusOf = (answer: unknown) => (answer as Answer).status

const breakerStates: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
}

function policiesFor(options: DownstreamOptions) {
  const breaker = circuitBreaker(
    handleWhen((error) => isConnectionFailure(error) || isAborted(error)).orWhenResult(
      (answer) => statusOf(answer) >= 500,
    ),
    { halfOpenAfter: options.halfOpenAfterMs, breaker: new ConsecutiveBreaker(options.failureThreshold) },
  )
  breaker.onStateChange((state) => options.onBreakerChange?.(breakerStates[state]))
  const retries = retry(
    handleWhen(isConnectionFailure).orWhenResult((answer) => statusOf(answer) === 503),
    {
      maxAttempts: options.retries,
      backoff: new ExponentialBackoff({ initialDelay: options.retryBackoffMs, maxDelay: options.timeoutMs }),
    },
  )
  const policy = wrap(
    timeout(options.timeoutMs, TimeoutStrategy.Aggressive),
    bulkhead(options.maxConcurrentCalls, options.maxQueuedCalls),
    retries,
    breaker,
  )
  return { policy, breaker }
}

export function createDownstream(options: DownstreamOptions): Downstream {
  const base = options.baseUrl.replace(/\/+$/, '')
  const { policy, breaker } = policiesFor(options)
  const { name } = options

  const failureOf = (error: unknown): DownstreamFailure => {
    if (error instanceof DownstreamFailure) return error
    if (error instanceof TaskCancelledError) {
      return new DownstreamFailure('timeout', `${name} did not answer within ${options.timeoutMs} ms`)
    }
    if (error instanceof BrokenCircuitError) {
      return new DownstreamFailure('breaker_open', `${name} failed repeatedly; not called for a moment`)
    }
    if (error instanceof BulkheadRejectedError) {
      return new DownstreamFailure('busy', `too many calls to ${name} are waiting already`)
    }
    return new DownstreamFailure('unreachable', `${name} cannot be reached`)
  }

  async function fetchAnswer(url: string, headers: Record<string, string>): Promise<Answer> {
    return policy.execute(async ({ signal }) => {
      const response = await fetch(url, { headers: { ...headers, accept: 'application/json' }, signal })
      // Read whole inside the budget, so a body that stalls times out too.
      return { status: response.status, text: await response.text() }
    })
  }

  return {
    name,
    breakerState: () => breakerStates[breaker.state],
    async getJson(path, headers, schema) {
      const started = performance.now()
      let outcome: CallOutcome = 'ok'
      try {
        const answer = await fetchAnswer(`${base}${path}`, headers)
        if (answer.status !== 200) {
          throw new DownstreamFailure('bad_status', `${name} answered ${answer.status}`)
        }
        const parsed = schema.safeParse(parseJson(answer.text))
        if (!parsed.success)
          throw new DownstreamFailure('bad_answer', `${name} answered with a body this page cannot read`)
        return parsed.data
      } catch (error) {
        const failure = failureOf(error)
        outcome = failure.outcome
        throw failure
      } finally {
        options.observer?.callEnded(name, outcome, (performance.now() - started) / 1000)
      }
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
