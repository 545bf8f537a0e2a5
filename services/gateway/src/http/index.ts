import { createRoutes, type Routes, type TokenVerifier } from '@timedeal/platform'
import type { RateLimiter } from '../adapters/rate-limiter.ts'
import type { ServiceDocuments } from '../adapters/service-documents.ts'
import type { SocketPassthrough } from '../adapters/socket-passthrough.ts'
import type { Upstream } from '../adapters/upstreams.ts'
import type { UpstreamName } from '../domain/routing.ts'
import type { GatewayMetrics } from '../metrics.ts'
import { chatSocketRoutes } from './chat-socket.ts'
import { DOCS_PATH, docsRoutes } from './docs.ts'
import { corsPolicy, rateLimits, securityHeaders } from './edge.ts'
import { proxyRoutes } from './proxy.ts'
import { webAppRoutes } from './web-app.ts'

export interface PublicRoutesDeps {
  readonly upstreams: Readonly<Record<UpstreamName, Upstream>>
  readonly passthrough: SocketPassthrough
  readonly limiter: RateLimiter
  readonly verifier: TokenVerifier
  readonly documents: ServiceDocuments
  readonly metrics: GatewayMetrics
  readonly allowedOrigins: readonly string[]
  readonly trustProxy: boolean
  readonly webDistDir: string
}

/**
 * The gateway's routes, in the order a request meets them: security headers, CORS, rate limits,
 * then the API reference, the services' routes, the chat socket and the web app. Health,
 * readiness, metrics and the refusal of `/internal/*` come from the platform app these are
 * mounted on.
 */
export function publicRoutes(deps: PublicRoutesDeps): Routes {
  const { trustProxy } = deps
  const routes = createRoutes()
  routes.use(securityHeaders({ trustProxy, docsPath: DOCS_PATH }))
  routes.use(corsPolicy({ allowedOrigins: deps.allowedOrigins, trustProxy }))
  routes.use(
    rateLimits({
      limiter: deps.limiter,
      verifier: deps.verifier,
      trustProxy,
      onRefused: (scope) => deps.metrics.rateLimited.inc({ scope }),
    }),
  )
  routes.route('/', docsRoutes({ documents: deps.documents, trustProxy }))
  routes.route(
    '/',
    proxyRoutes(
      {
        upstreams: deps.upstreams,
        onFailure: (error) => deps.metrics.upstreamFailures.inc({ upstream: error.upstream, kind: error.failure.kind }),
      },
      trustProxy,
    ),
  )
  routes.route('/', chatSocketRoutes(deps.passthrough, trustProxy))
  routes.route('/', webAppRoutes(deps.webDistDir))
  return routes
}
