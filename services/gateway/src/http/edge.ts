import { type AppEnv, bearerToken, clientAddressOf, Problem, type TokenVerifier } from '@timedeal/platform'
import type { MiddlewareHandler } from 'hono'
import { cors } from 'hono/cors'
import { NONCE, secureHeaders } from 'hono/secure-headers'
import type { LimitScope, LimitVerdict, RateLimiter } from '../adapters/rate-limiter.ts'
import { forwardedProto, requestedHost } from './client.ts'

/** The paths whose requests are counted, and where CORS applies: the API and the chat socket. */
export const isApiPath = (path: string) =>
  path === '/api' || path.startsWith('/api/') || path === '/ws' || path.startsWith('/ws/')

/**
 * The policy of the web app: a Vite build of React served from this origin, talking to `/api`
 * and `/ws/chat` on this origin (CSP 3's 'self' takes in ws: and wss: of the same host). Inline
 * styles are allowed because React sets style attributes; scripts only from files served here.
 */
const appPolicy = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  workerSrc: ["'self'", 'blob:'],
  manifestSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
}

const commonHeaders = {
  // Only over TLS, added below: HSTS on a plain-HTTP answer would pin a development host to HTTPS.
  strictTransportSecurity: false,
  xFrameOptions: 'DENY',
  referrerPolicy: 'strict-origin-when-cross-origin',
  crossOriginEmbedderPolicy: false,
} as const

const HSTS = 'max-age=31536000; includeSubDomains'

/**
 * Security headers on every answer of the gateway's routes. The API reference page runs one
 * inline script (its configuration), allowed by a per-request nonce and nothing else.
 */
export function securityHeaders(options: { trustProxy: boolean; docsPath: string }): MiddlewareHandler<AppEnv> {
  const forApp = secureHeaders({ ...commonHeaders, contentSecurityPolicy: appPolicy })
  const forDocs = secureHeaders({
    ...commonHeaders,
    contentSecurityPolicy: { ...appPolicy, scriptSrc: ["'self'", NONCE] },
  })
  return async (c, next) => {
    const headers = c.req.path === options.docsPath ? forDocs : forApp
    await headers(c, next)
    if (forwardedProto(c, options.trustProxy) === 'https') c.res.headers.set('strict-transport-security', HSTS)
  }
}

/** Headers a browser app may send on cross-origin calls, and the ones it may read back. */
const ALLOWED_REQUEST_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'traceparent', 'x-request-id']
const EXPOSED_HEADERS = ['location', 'retry-after', 'x-request-id', 'www-authenticate']
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * CORS for the configured origins only (credentials included, for the refresh cookie). A
 * preflight, or a request that changes something, from any other foreign origin is refused with
 * 403: browsers would send the latter without asking first.
 */
export function corsPolicy(options: {
  allowedOrigins: readonly string[]
  trustProxy: boolean
}): MiddlewareHandler<AppEnv> {
  const allowed = new Set(options.allowedOrigins)
  const withCors = cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    credentials: true,
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ALLOWED_REQUEST_HEADERS,
    exposeHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  })
  return async (c, next) => {
    const origin = c.req.header('origin')
    if (origin === undefined || !isApiPath(c.req.path)) return next()
    if (allowed.has(origin)) return withCors(c, next)
    if (sameOrigin(origin, requestedHost(c, options.trustProxy))) return next()
    const preflight = c.req.method === 'OPTIONS' && c.req.header('access-control-request-method') !== undefined
    if (preflight || UNSAFE_METHODS.has(c.req.method)) {
      throw new Problem({
        status: 403,
        code: 'CORS_ORIGIN_REFUSED',
        detail: `requests from ${origin} are not allowed; the gateway accepts its own origin and CORS_ALLOWED_ORIGINS`,
      })
    }
    return next()
  }
}

function sameOrigin(origin: string, host: string): boolean {
  return URL.canParse(origin) && new URL(origin).host === host
}

export interface RateLimitDeps {
  readonly limiter: RateLimiter
  readonly verifier: TokenVerifier
  readonly trustProxy: boolean
  /** Told of every refusal. */
  readonly onRefused?: (scope: LimitScope) => void
}

/**
 * Counts each API request against its client address and, when it carries a valid access
 * token, against its user. The token is checked only for this count: an invalid or missing
 * token is the service's to refuse (every service verifies the token itself), so it passes on.
 */
export function rateLimits(deps: RateLimitDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!isApiPath(c.req.path) || c.req.method === 'OPTIONS') return next()
    const address = await deps.limiter.hit('address', clientAddressOf(c, deps.trustProxy))
    refuseOver(address, 'address', deps)
    const token = bearerToken(c.req.header('authorization'))
    const caller = token ? await deps.verifier.verify(token).catch(() => undefined) : undefined
    if (caller) refuseOver(await deps.limiter.hit('user', caller.id), 'user', deps)
    await next()
  }
}

const SCOPE_WORDS: Record<LimitScope, string> = { address: 'from this address', user: 'for this user' }

function refuseOver(verdict: LimitVerdict | undefined, scope: LimitScope, deps: RateLimitDeps): void {
  if (!verdict || verdict.allowed) return
  deps.onRefused?.(scope)
  const seconds = Math.max(1, Math.ceil(verdict.resetMs / 1000))
  throw new Problem({
    status: 429,
    code: 'RATE_LIMITED',
    detail: `more than ${verdict.limit} requests ${SCOPE_WORDS[scope]} in the current window; try again in ${seconds} s`,
    extensions: { scope },
    headers: { 'retry-after': String(seconds) },
  })
}
