/**
 * The services behind the gateway, over HTTP and raw TCP. Each service has one keep-alive
 * connection pool (undici) and one set of policies (cockatiel), composed once here:
 *
 *   circuit breaker → timeout → request
 *
 * - The timeout covers the wait for the answer's status and headers only: a body (either way)
 *   streams as long as it needs, so a large download or a slow upload is never cut short.
 * - The breaker opens after `failureThreshold` connection failures or timeouts in a row and then
 *   refuses at once for `openMs`, before letting one request try. A service's own answers, 5xx
 *   included, are passed on as they are: they say something about the request, not the route.
 * - Nothing is retried: a request may carry a body that has already been streamed, and whether a
 *   request is safe to repeat is for the client (and its Idempotency-Key) to decide.
 */
import { connect as connectTcp, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel'
import { Pool } from 'undici'
import type { UpstreamName } from '../domain/routing.ts'

export interface UpstreamRequest {
  readonly method: string
  /** Path and query, as the client sent them. */
  readonly path: string
  readonly headers: Record<string, string>
  readonly body: ReadableStream<Uint8Array> | null
  /** Aborted when the client goes away: a request it no longer waits for is not waited for either. */
  readonly signal?: AbortSignal
}

export interface UpstreamAnswer {
  readonly status: number
  readonly headers: Headers
  /** Streams the service's body as it arrives; null for answers without one. */
  readonly body: ReadableStream<Uint8Array> | null
}

/** Why a service could not answer; the HTTP layer turns each into its problem. */
export type UpstreamFailure =
  | { readonly kind: 'breaker-open'; readonly retryAfterMs: number }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'unreachable'; readonly reason: string }

export class UpstreamError extends Error {
  override name = 'UpstreamError'
  readonly upstream: UpstreamName
  readonly failure: UpstreamFailure

  constructor(upstream: UpstreamName, failure: UpstreamFailure, cause?: unknown) {
    super(`${upstream}-service: ${failure.kind}`, { cause })
    this.upstream = upstream
    this.failure = failure
  }
}

export interface Upstream {
  readonly name: UpstreamName
  readonly origin: URL
  /** Sends one request and resolves once the status and headers are in. */
  request(request: UpstreamRequest): Promise<UpstreamAnswer>
  /** A TCP connection to the service, through the same breaker and timeout (WebSocket upgrades). */
  connect(): Promise<Socket>
  breakerOpen(): boolean
  close(): Promise<void>
}

export interface UpstreamOptions {
  readonly name: UpstreamName
  readonly baseUrl: string
  readonly timeoutMs: number
  readonly failureThreshold: number
  readonly openMs: number
  readonly maxConnections: number
  /** Told every time the breaker opens or closes. */
  readonly onBreakerChange?: (name: UpstreamName, open: boolean) => void
}

/** Errors that mean the service was not reached or dropped the connection: nothing was answered. */
const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
])

export const isTransportFailure = (error: unknown): boolean =>
  error instanceof Error && TRANSPORT_CODES.has((error as NodeJS.ErrnoException).code ?? '')

/** Response headers that describe one connection, not the answer; never passed on. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

export function createUpstream(options: UpstreamOptions): Upstream {
  const origin = new URL(options.baseUrl)
  const pool = new Pool(origin.origin, {
    connections: options.maxConnections,
    keepAliveTimeout: 30_000,
    // The policies' timeout governs the wait for headers; the body may take its time.
    headersTimeout: 0,
    bodyTimeout: 0,
  })
  const breaker = circuitBreaker(
    handleWhen((error) => error instanceof TaskCancelledError || isTransportFailure(error)),
    { halfOpenAfter: options.openMs, breaker: new ConsecutiveBreaker(options.failureThreshold) },
  )
  breaker.onStateChange((state) => options.onBreakerChange?.(options.name, state === CircuitState.Open))
  // The answer's body keeps streaming after the call returns, so the signal must not abort then.
  const policy = wrap(
    breaker,
    timeout(options.timeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false }),
  )

  const failed = (error: unknown): UpstreamError => {
    if (error instanceof UpstreamError) return error
    if (error instanceof BrokenCircuitError) {
      return new UpstreamError(options.name, { kind: 'breaker-open', retryAfterMs: options.openMs }, error)
    }
    if (error instanceof TaskCancelledError) return new UpstreamError(options.name, { kind: 'timeout' }, error)
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error))
    return new UpstreamError(options.name, { kind: 'unreachable', reason }, error)
  }

  return {
    name: options.name,
    origin,
    async request(request) {
      try {
        return await policy.execute(async ({ signal }) => {
          const answer = await pool.request({
            method: request.method as 'GET',
            path: request.path,
            headers: request.headers,
            body: request.body ? Readable.fromWeb(request.body as import('node:stream/web').ReadableStream) : null,
            signal: request.signal ? AbortSignal.any([signal, request.signal]) : signal,
          })
          return {
            status: answer.statusCode,
            headers: responseHeaders(answer.headers),
            body: bodyOf(request.method, answer.statusCode, answer.body),
          }
        })
      } catch (error) {
        if (isTransportFailure(error) || error instanceof BrokenCircuitError || error instanceof TaskCancelledError) {
          throw failed(error)
        }
        // Anything else (the client's own body failing, say) is not the service's fault.
        throw error
      }
    },
    async connect() {
      try {
        return await policy.execute(({ signal }) => openSocket(origin, signal))
      } catch (error) {
        throw failed(error)
      }
    },
    breakerOpen: () => breaker.state === CircuitState.Open,
    close: () => pool.close(),
  }
}

function responseHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers()
  const named = new Set(
    String(raw.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase()),
  )
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one)
  }
  return headers
}

function bodyOf(method: string, status: number, body: Readable): ReadableStream<Uint8Array> | null {
  if (method === 'HEAD' || status === 204 || status === 304) {
    body.resume()
    return null
  }
  return Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>
}

function openSocket(origin: URL, signal: AbortSignal): Promise<Socket> {
  const port = Number(origin.port || (origin.protocol === 'https:' ? 443 : 80))
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: origin.hostname, port, signal })
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}
