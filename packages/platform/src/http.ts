import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { routePath } from 'hono/route'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Registry } from 'prom-client'
import type { Logger } from './logger.ts'
import { httpDurationHistogram } from './metrics.ts'
import { Problem, problemResponse } from './problem.ts'
import { continueTrace } from './trace.ts'

/** Variables every request carries. */
export type AppEnv = {
  Variables: {
    requestId: string
    traceparent: string
    logger: Logger
  }
}

/** A dependency `/readyz` checks; it throws (or rejects) when the dependency is unreachable. */
export interface ReadinessCheck {
  readonly name: string
  readonly check: () => Promise<unknown>
}

export interface ServiceAppOptions {
  readonly service: string
  readonly logger: Logger
  readonly metrics: Registry
  readonly readiness?: readonly ReadinessCheck[]
  /** Reports true once shutdown began, so `/readyz` fails before the listener closes. */
  readonly draining?: () => boolean
  readonly readinessTimeoutMs?: number
}

/**
 * The Hono app every service starts from: request ids and trace context, request metrics,
 * `/healthz`, `/readyz`, `/metrics`, and problem+json for every error and unknown route.
 * Services mount their routes on it.
 */
export function createServiceApp(options: ServiceAppOptions): Hono<AppEnv> {
  const { logger, metrics } = options
  const duration = httpDurationHistogram(metrics)
  const timeoutMs = options.readinessTimeoutMs ?? 2000
  const app = new Hono<AppEnv>()

  app.use(async (c, next) => {
    const requestId = c.req.header('x-request-id') ?? randomUUID()
    const { traceparent, traceId } = continueTrace(c.req.header('traceparent'))
    c.set('requestId', requestId)
    c.set('traceparent', traceparent)
    c.set('logger', logger.child({ requestId, traceId }))
    const stop = duration.startTimer()
    await next()
    c.header('x-request-id', requestId)
    stop({ method: c.req.method, route: routePath(c), status: String(c.res.status) })
  })

  app.get('/healthz', (c) => c.json({ status: 'ok', service: options.service }))

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
    return c.body(await metrics.metrics(), 200, { 'content-type': metrics.contentType })
  })

  app.notFound((c) =>
    problemResponse(new Problem(404, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`), c.req.path),
  )

  app.onError((error, c) => {
    if (error instanceof Problem) return problemResponse(error, c.req.path)
    if (error instanceof HTTPException) {
      const status = error.status as ContentfulStatusCode
      return problemResponse(new Problem(status, httpCode(status), error.message || 'request rejected'), c.req.path)
    }
    ;(c.get('logger') ?? logger).error({ err: error, path: c.req.path }, 'unhandled error')
    return problemResponse(new Problem(500, 'INTERNAL', 'the server failed to handle this request'), c.req.path)
  })

  return app
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

/** Reads a JSON body; a body that is not JSON is a 400, not a crash. */
export async function readJson(request: Request): Promise<unknown> {
  const type = request.headers.get('content-type') ?? ''
  if (!type.includes('json')) {
    throw new Problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json')
  }
  try {
    return await request.json()
  } catch {
    throw new Problem(400, 'MALFORMED_JSON', 'the request body is not valid JSON')
  }
}
