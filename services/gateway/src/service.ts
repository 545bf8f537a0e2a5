import { type AppEnv, type Logger, type Redis, type TokenVerifier, tokenVerifierFromSettings } from '@timedeal/platform'
import type { Hono } from 'hono'
import type { Registry } from 'prom-client'
import { createRateLimiter } from './adapters/rate-limiter.ts'
import { serviceDocuments } from './adapters/service-documents.ts'
import { SocketPassthrough } from './adapters/socket-passthrough.ts'
import { createUpstream, type Upstream, UpstreamError } from './adapters/upstreams.ts'
import { UPSTREAM_NAMES, type UpstreamName } from './domain/routing.ts'
import { publicRoutes } from './http/index.ts'
import { asProblem, upstreamProblem } from './http/proxy.ts'
import { breakerChanged, createGatewayMetrics } from './metrics.ts'
import type { Settings } from './settings.ts'

export interface GatewayDeps {
  readonly settings: Settings
  readonly redis: Redis
  readonly logger: Logger
  readonly metrics: Registry
  /** Defaults to user-service's JWKS at `JWT_JWKS_URL`. */
  readonly verifier?: TokenVerifier
}

export interface Gateway {
  readonly publicRoutes: Hono<AppEnv>
  /** Takes the listener's WebSocket upgrades that `/ws/chat` accepted, and carries them to chat-service. */
  readonly websocket: SocketPassthrough
  readonly upstreams: Readonly<Record<UpstreamName, Upstream>>
  /** Closes the tunnels and the connection pools. */
  stop(): Promise<void>
}

const UPSTREAM_URL_SETTINGS = {
  user: 'USER_URL',
  goods: 'GOODS_URL',
  order: 'ORDER_URL',
  payment: 'PAYMENT_URL',
  chat: 'CHAT_URL',
} as const satisfies Record<UpstreamName, keyof Settings>

/** Builds the gateway from its settings and a Redis client. `main.ts` and the tests build it the same way. */
export function startGateway(deps: GatewayDeps): Gateway {
  const { settings, logger } = deps
  const metrics = createGatewayMetrics(deps.metrics)
  const upstreams = Object.fromEntries(
    UPSTREAM_NAMES.map((name) => [
      name,
      createUpstream({
        name,
        baseUrl: settings[UPSTREAM_URL_SETTINGS[name]],
        timeoutMs: settings.UPSTREAM_TIMEOUT_MS,
        failureThreshold: settings.UPSTREAM_BREAKER_THRESHOLD,
        openMs: settings.UPSTREAM_BREAKER_OPEN_MS,
        maxConnections: settings.UPSTREAM_MAX_CONNECTIONS,
        onBreakerChange: breakerChanged(metrics),
      }),
    ]),
  ) as Record<UpstreamName, Upstream>
  const passthrough = new SocketPassthrough({
    upstream: upstreams.chat,
    logger: logger.child({ component: 'chat-passthrough' }),
    problemOf: (error) => {
      if (error instanceof UpstreamError) {
        metrics.upstreamFailures.inc({ upstream: error.upstream, kind: error.failure.kind })
        return asProblem(error) as ReturnType<typeof upstreamProblem>
      }
      return upstreamProblem('chat', { kind: 'unreachable', reason: String(error) }, error)
    },
    onOpen: () => metrics.openTunnels.inc(),
    onClose: () => metrics.openTunnels.dec(),
  })
  const limiter = createRateLimiter({
    redis: deps.redis,
    keyPrefix: settings.RATE_LIMIT_KEY_PREFIX,
    windowMs: settings.RATE_LIMIT_WINDOW_MS,
    limits: { address: settings.RATE_LIMIT_PER_ADDRESS, user: settings.RATE_LIMIT_PER_USER },
    timeoutMs: settings.RATE_LIMIT_TIMEOUT_MS,
    logger: logger.child({ component: 'rate-limits' }),
    onSkipped: (scope) => metrics.rateLimitSkipped.inc({ scope }),
  })
  const routes = publicRoutes({
    upstreams,
    passthrough,
    limiter,
    verifier: deps.verifier ?? tokenVerifierFromSettings(settings),
    documents: serviceDocuments({ upstreams, cacheMs: settings.OPENAPI_CACHE_MS, logger }),
    metrics,
    allowedOrigins: settings.CORS_ALLOWED_ORIGINS,
    trustProxy: settings.TRUST_PROXY,
    webDistDir: settings.WEB_DIST_DIR,
  })
  return {
    publicRoutes: routes as unknown as Hono<AppEnv>,
    websocket: passthrough,
    upstreams,
    async stop() {
      passthrough.close()
      await Promise.all(Object.values(upstreams).map((upstream) => upstream.close()))
    },
  }
}
