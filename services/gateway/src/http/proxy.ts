import { type AppEnv, clientAddressOf, Problem } from '@timedeal/platform'
import { type Context, Hono } from 'hono'
import { type Upstream, UpstreamError, type UpstreamFailure } from '../adapters/upstreams.ts'
import { type UpstreamName, upstreamOf } from '../domain/routing.ts'
import { forwardedProto, requestedHost } from './client.ts'

export interface ProxyDeps {
  readonly upstreams: Readonly<Record<UpstreamName, Upstream>>
  /** Told of every request a service did not answer. */
  readonly onFailure?: (error: UpstreamError) => void
}

/**
 * `/api/*` to the service that owns the prefix, bodies streamed both ways. Registered for every
 * method: these routes are the services' own, documented in the merged document, not here.
 */
export function proxyRoutes(deps: ProxyDeps, trustProxy: boolean): Hono<AppEnv> {
  return new Hono<AppEnv>().all('/api/*', async (c) => {
    const name = upstreamOf(c.req.path)
    if (!name) {
      throw new Problem({ status: 404, code: 'NOT_FOUND', detail: `no route for ${c.req.method} ${c.req.path}` })
    }
    const url = new URL(c.req.url)
    try {
      const answer = await deps.upstreams[name].request({
        method: c.req.method,
        path: `${url.pathname}${url.search}`,
        headers: upstreamHeaders(c, trustProxy),
        body: c.req.raw.body,
        signal: c.req.raw.signal,
      })
      return new Response(answer.body, { status: answer.status, headers: answer.headers })
    } catch (error) {
      // The client went away: nobody reads an answer, and it is no failure of the service.
      if (c.req.raw.signal.aborted) return new Response(null, { status: 499 })
      if (error instanceof UpstreamError) deps.onFailure?.(error)
      throw asProblem(error)
    }
  })
}

/** Request headers that describe one connection, or that only the gateway may set; never passed on. */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
  'traceparent',
  'tracestate',
  'x-request-id',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  // The service credential belongs to internal listeners; a browser never has a reason to send it.
  'x-timedeal-internal',
])

/**
 * What the service receives: the client's headers as they were (its `Authorization` among them:
 * every service verifies the token itself, and no identity header is ever added), this hop's
 * trace context and request id, and where the request came from.
 */
export function upstreamHeaders(c: Context<AppEnv>, trustProxy: boolean): Record<string, string> {
  const headers: Record<string, string> = {}
  const named = new Set(
    (c.req.header('connection') ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  )
  c.req.raw.headers.forEach((value, name) => {
    if (!NOT_FORWARDED.has(name) && !named.has(name)) headers[name] = value
  })
  Object.assign(headers, forwardingHeaders(c, trustProxy))
  headers.traceparent = c.var.traceparent
  const tracestate = c.req.header('tracestate')
  if (tracestate) headers.tracestate = tracestate
  headers['x-request-id'] = c.var.requestId
  return headers
}

/**
 * `X-Forwarded-For/-Proto/-Host`. The last `X-Forwarded-For` hop is always the client's address
 * as the gateway determined it, which is the hop services behind it take (user-service's
 * `TRUST_PROXY`); what a client wrote there itself is dropped unless the gateway trusts its proxy.
 */
export function forwardingHeaders(c: Context, trustProxy: boolean): Record<string, string> {
  const earlier = trustProxy ? c.req.header('x-forwarded-for') : undefined
  return {
    'x-forwarded-for': earlier?.trim() ? earlier : clientAddressOf(c, false),
    'x-forwarded-proto': forwardedProto(c, trustProxy),
    'x-forwarded-host': requestedHost(c, trustProxy),
  }
}

/** A service that could not answer, as the problem the client gets. */
export function asProblem(error: unknown): unknown {
  if (!(error instanceof UpstreamError)) return error
  return upstreamProblem(error.upstream, error.failure, error)
}

export function upstreamProblem(upstream: UpstreamName, failure: UpstreamFailure, cause?: unknown): Problem {
  const service = `${upstream}-service`
  switch (failure.kind) {
    case 'breaker-open':
      return new Problem({
        status: 503,
        code: 'UPSTREAM_UNAVAILABLE',
        detail: `${service} failed repeatedly and is not called for a moment; try again shortly`,
        extensions: { upstream: service },
        headers: { 'retry-after': String(Math.max(1, Math.ceil(failure.retryAfterMs / 1000))) },
        cause,
      })
    case 'timeout':
      return new Problem({
        status: 504,
        code: 'UPSTREAM_TIMEOUT',
        detail: `${service} did not answer in time`,
        extensions: { upstream: service },
        cause,
      })
    case 'unreachable':
      return new Problem({
        status: 502,
        code: 'UPSTREAM_UNREACHABLE',
        detail: `${service} cannot be reached; try again shortly`,
        extensions: { upstream: service },
        cause,
      })
  }
}
