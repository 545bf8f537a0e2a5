import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { WebSocketServerLike } from '@hono/node-server'
import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context, Hono, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import { routePath } from 'hono/route'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Histogram, Registry } from 'prom-client'
import type { Logger } from './logger.ts'
import { httpDurationHistogram } from './metrics.ts'
import { answerInvalidInput, Problem, problemResponse } from './problem.ts'
import { continueTrace } from './trace.ts'

/** Variables every request carries. */
export type AppEnv = {
  Variables: {
    requestId: string
    traceparent: string
    logger: Logger
    /** What a failure that is not a problem becomes on this request, when its routes said (see `createRoutes`). */
    unexpectedFailure?: () => Problem
  }
}

/** A dependency `/readyz` checks; it throws (or rejects) when the dependency is unreachable. */
export interface ReadinessCheck {
  readonly name: string
  readonly check: () => Promise<unknown>
}

export interface ServiceAppOptions {
  readonly service: string
  /** The version `/openapi.json` states (default 0.1.0). */
  readonly version?: string
  readonly logger: Logger
  readonly metrics: Registry
  readonly readiness?: readonly ReadinessCheck[]
  /** Reports true once shutdown began, so `/readyz` fails before the listener closes. */
  readonly draining?: () => boolean
  readonly readinessTimeoutMs?: number
  /** Larger request bodies are refused with 413 (default 64 KiB). */
  readonly bodyLimitBytes?: number
}

/** What a service serves: its public routes, and the routes other services call. */
export interface ServiceRoutes {
  /** Served on the public listener (HTTP_PORT), where the gateway and the Ingress route. */
  readonly publicRoutes: Hono<AppEnv>
  /** Mounted under `/internal` and served only on the internal listener (INTERNAL_PORT). */
  readonly internalRoutes?: Hono<AppEnv>
  /**
   * A `ws` server created with `{ noServer: true }`: the public listener hands it the upgrades
   * that a public route accepts with `upgradeWebSocket` (`@hono/node-server`).
   */
  readonly websocket?: ListenerWebSocketServer
}

/** A `ws` server (`noServer: true`) whose connections the listener closes (1001) when it closes. */
export type ListenerWebSocketServer = WebSocketServerLike & {
  readonly clients: ReadonlySet<{ close(code?: number, reason?: string): void }>
}

export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024

/**
 * The apps of a service's two listeners: the public app with its routes, and, when the service
 * has internal routes, an internal app serving them under `/internal` and nothing else.
 */
export function createServiceApps(
  options: ServiceAppOptions,
  routes: ServiceRoutes,
): { publicApp: OpenAPIHono<AppEnv>; internalApp: OpenAPIHono<AppEnv> | undefined } {
  const publicApp = createServiceApp(options)
  publicApp.route('/', routes.publicRoutes)
  if (!routes.internalRoutes) return { publicApp, internalApp: undefined }
  const internalApp = createInternalApp(options)
  internalApp.route('/internal', routes.internalRoutes)
  return { publicApp, internalApp }
}

/**
 * The Hono app every service starts from: request ids and trace context, request metrics, a
 * cap on request bodies, `/healthz`, `/readyz`, `/metrics`, `/openapi.json` (the OpenAPI 3.1
 * document of every route mounted with `createRoute`), and problem+json for every error and
 * unknown route. Services mount their public routes on it; `/internal/*` is never served here,
 * whatever is mounted (it belongs to {@link createInternalApp}).
 */
export function createServiceApp(options: ServiceAppOptions): OpenAPIHono<AppEnv> {
  const timeoutMs = options.readinessTimeoutMs ?? 2000
  const app = baseApp(options)
  const notHere = (c: Context) => notFound(c.req.method, c.req.path)
  app.all('/internal', notHere)
  app.all('/internal/*', notHere)

  app.get('/healthz', (c) => c.json({ status: 'ok', service: options.service }))
  app.doc31(OPENAPI_PATH, documentInfo(options))

  app.get('/readyz', async (c) => {
    if (options.draining?.()) {
      return c.json({ status: 'draining', service: options.service, checks: {} }, 503)
    }
    const results = await Promise.all(
      (options.readiness ?? []).map(async ({ name, check }) => {
        try {
          await withTimeout(check(), timeoutMs, name)
          return [name, { status: 'up' }] as const
        } catch (error) {
          return [name, { status: 'down', error: error instanceof Error ? error.message : String(error) }] as const
        }
      }),
    )
    const ready = results.every(([, result]) => result.status === 'up')
    return c.json(
      { status: ready ? 'ready' : 'not ready', service: options.service, checks: Object.fromEntries(results) },
      ready ? 200 : 503,
    )
  })

  app.get('/metrics', async (c) => {
    return c.body(await options.metrics.metrics(), 200, { 'content-type': options.metrics.contentType })
  })

  return app
}

/**
 * The app of the internal listener: the same request handling and errors as the public app,
 * without probes or metrics (those are on the public listener).
 */
export function createInternalApp(options: ServiceAppOptions): OpenAPIHono<AppEnv> {
  const app = baseApp(options)
  app.doc31(INTERNAL_OPENAPI_PATH, documentInfo(options, 'internal routes'))
  return app
}

/** Where each listener serves the OpenAPI document of its routes. */
export const OPENAPI_PATH = '/openapi.json'
export const INTERNAL_OPENAPI_PATH = '/internal/openapi.json'

const documentInfo = (options: ServiceAppOptions, what?: string) => ({
  openapi: '3.1.0',
  info: { title: what ? `${options.service} ${what}` : options.service, version: options.version ?? '0.1.0' },
})

const notFound = (method: string, path: string) =>
  problemResponse(new Problem({ status: 404, code: 'NOT_FOUND', detail: `no route for ${method} ${path}` }), path)

/** Request ids, trace context, request metrics, the body cap, and problem+json for every error. */
function baseApp(options: ServiceAppOptions): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: answerInvalidInput })
  app.use(
    oneLayer(
      requestContext(options.logger, requestDurations(httpDurationHistogram(options.metrics))),
      bodyCap(options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES),
    ),
  )
  app.notFound((c) => notFound(c.req.method, c.req.path))
  app.onError((error, c) => renderError(error, c))
  return app
}

/**
 * Two middleware as one layer: each layer of Hono's chain is an async step on every request. A
 * failure of the second is answered as Hono answers a layer's, so the first still sees the answer
 * (the request metric counts a 413 like any other).
 */
function oneLayer(first: MiddlewareHandler<AppEnv>, second: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  return (c, next) =>
    first(c, async () => {
      try {
        const answer = await second(c, next)
        if (answer instanceof Response && !c.finalized) c.res = answer
      } catch (error) {
        if (!(error instanceof Error)) throw error
        c.error = error
        c.res = renderError(error, c)
      }
    })
}

/** What `@hono/node-server` passes to the app beside the request. */
interface NodeBindings {
  readonly incoming?: IncomingMessage
  readonly outgoing?: ServerResponse
}

const nodeBindingsOf = (c: Context): NodeBindings => (c.env as NodeBindings | undefined) ?? {}

// A caller's id is kept only when it is short and plain; anything else is replaced, so logs and
// headers never carry what a caller smuggled in.
const PLAIN_REQUEST_ID = /^[\w\-=]{1,255}$/

/**
 * The request id, the trace context, the request's logger and its duration metric. The id goes
 * on every answer, whoever built it: over a real listener it is set on the outgoing message,
 * which keeps its headers when the answer is written, so the answer itself is never rebuilt.
 */
function requestContext(logger: Logger, observe: ObserveDuration): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now()
    const given = c.req.header('x-request-id')
    const requestId = given && PLAIN_REQUEST_ID.test(given) ? given : randomUUID()
    const { traceparent, traceId } = continueTrace(c.req.header('traceparent'))
    c.set('requestId', requestId)
    c.set('traceparent', traceparent)
    c.set('logger', lazyChild(logger, { requestId, traceId }))
    const { outgoing } = nodeBindingsOf(c)
    const onOutgoing = outgoing !== undefined && typeof outgoing.setHeader === 'function' && !outgoing.headersSent
    if (onOutgoing) outgoing.setHeader('x-request-id', requestId)
    await next()
    if (!onOutgoing) c.header('x-request-id', requestId)
    observe(c.req.method, routePath(c), c.res.status, (performance.now() - started) / 1000)
  }
}

/**
 * A child logger with the request's fields, made on its first use: most requests log nothing,
 * and a pino child serialises its fields when it is made.
 */
function lazyChild(logger: Logger, fields: Record<string, string>): Logger {
  let child: Logger | undefined
  const target = () => {
    child ??= logger.child(fields)
    return child
  }
  return new Proxy({} as Logger, {
    get(_, property) {
      const value = Reflect.get(target(), property)
      return typeof value === 'function' ? value.bind(target()) : value
    },
    set: (_, property, value) => Reflect.set(target(), property, value),
    has: (_, property) => Reflect.has(target(), property),
  })
}

type ObserveDuration = (method: string, route: string, status: number, seconds: number) => void

/** Records into the histogram, reusing one labels object per method, route and status. */
function requestDurations(histogram: Histogram<'method' | 'route' | 'status'>): ObserveDuration {
  const labelSets = new Map<string, { method: string; route: string; status: string }>()
  return (method, route, status, seconds) => {
    const key = `${method} ${status} ${route}`
    let labels = labelSets.get(key)
    if (!labels) {
      labels = { method, route, status: String(status) }
      labelSets.set(key, labels)
    }
    histogram.observe(labels, seconds)
  }
}

/**
 * Refuses bodies over `limit` bytes with 413. Over HTTP/1.1 a body has a declared length or is
 * chunked: a declared one is judged by its header alone, a request with neither has no body,
 * and the body is never touched here. Chunked bodies (and requests not from a listener) are
 * counted as they stream, by Hono's `bodyLimit`.
 */
function bodyCap(limit: number): MiddlewareHandler<AppEnv> {
  const tooLarge = () =>
    new Problem({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
      detail: `the request body is larger than ${limit} bytes`,
    })
  const streamed = bodyLimit({
    maxSize: limit,
    onError: () => {
      throw tooLarge()
    },
  })
  return async (c, next) => {
    const { incoming } = nodeBindingsOf(c)
    if (incoming?.httpVersionMajor !== 1 || incoming.headers['transfer-encoding'] !== undefined) {
      return streamed(c, next)
    }
    const declared = incoming.headers['content-length']
    if (declared !== undefined && Number(declared) > limit) throw tooLarge()
    await next()
  }
}

/**
 * The one error renderer: a `Problem` as itself, Hono's own rejections (a body that is not
 * JSON, a wrong content type) as their problem, anything else as the request's
 * `unexpectedFailure` (default a 500 INTERNAL that reveals nothing), logged.
 */
export function renderError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof Problem) return problemResponse(error, c.req.path)
  if (error instanceof HTTPException) return problemResponse(rejection(error), c.req.path)
  c.get('logger')?.error({ err: error, path: c.req.path }, 'unhandled error')
  return problemResponse((c.get('unexpectedFailure') ?? internalFailure)(), c.req.path)
}

/**
 * Middleware after which the app's error renderer answers any failure of the request that is
 * not a problem (nor one of Hono's rejections) with `failure()` instead of 500 INTERNAL.
 */
export function answerUnexpectedFailuresWith(failure: () => Problem): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set('unexpectedFailure', failure)
    await next()
  }
}

const internalFailure = () =>
  new Problem({ status: 500, code: 'INTERNAL', detail: 'the server failed to handle this request' })

/** Hono's validators reject with HTTPExceptions; they get the problem codes clients branch on. */
function rejection(error: HTTPException): Problem {
  const status = error.status as ContentfulStatusCode
  if (status === 415) {
    return new Problem({ status, code: 'UNSUPPORTED_MEDIA_TYPE', detail: 'send the body as application/json' })
  }
  if (status === 400 && error.message.startsWith('Malformed JSON')) {
    return new Problem({ status, code: 'MALFORMED_JSON', detail: 'the request body is not valid JSON' })
  }
  return new Problem({ status, code: httpCode(status), detail: error.message || 'request rejected' })
}

function httpCode(status: number): string {
  if (status === 400) return 'BAD_REQUEST'
  if (status === 401) return 'UNAUTHORIZED'
  if (status === 403) return 'FORBIDDEN'
  if (status === 413) return 'PAYLOAD_TOO_LARGE'
  if (status === 429) return 'RATE_LIMITED'
  return status >= 500 ? 'INTERNAL' : 'REQUEST_REJECTED'
}

async function withTimeout<T>(promise: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Who is calling, for per-address limits: the last `X-Forwarded-For` hop when the service sits
 * behind a proxy it trusts (the hop that proxy added), else the socket's peer.
 */
export function clientAddressOf(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const lastHop = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim()
    if (lastHop) return lastHop
  }
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket.remoteAddress ?? 'unknown'
}
