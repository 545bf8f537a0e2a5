import { fileURLToPath } from 'node:url'
import { authSettings, bool, originList, positiveInt, redisSettings, serviceSettings } from '@timedeal/platform'
import { z } from 'zod'

const serviceUrl = (service: string, port: number) =>
  z.url({ error: `expected the base URL of ${service}'s public listener` }).default(`http://127.0.0.1:${port}`)

/** Where each service's public listener is; the gateway never calls an internal listener. */
function upstreamSettings() {
  return {
    USER_URL: serviceUrl('user-service', 8081),
    GOODS_URL: serviceUrl('goods-service', 8082),
    ORDER_URL: serviceUrl('order-service', 8083),
    PAYMENT_URL: serviceUrl('payment-service', 8084),
    CHAT_URL: serviceUrl('chat-service', 8085),
    /** How long a service may take to start answering (its status and headers); the body may stream on. */
    UPSTREAM_TIMEOUT_MS: positiveInt(10_000),
    /** Consecutive connection failures or timeouts of one service that open its breaker. */
    UPSTREAM_BREAKER_THRESHOLD: positiveInt(5),
    /** How long an open breaker answers 503 at once before letting one request try the service again. */
    UPSTREAM_BREAKER_OPEN_MS: positiveInt(5_000),
    /** Keep-alive connections to one service, at most. */
    UPSTREAM_MAX_CONNECTIONS: positiveInt(64),
  }
}

/** Requests per client address and per user, counted in Redis so every gateway instance shares them. */
function rateLimitSettings() {
  return {
    RATE_LIMIT_WINDOW_MS: positiveInt(60_000),
    /** Requests to /api and /ws from one client address in one window. */
    RATE_LIMIT_PER_ADDRESS: positiveInt(600),
    /** Requests carrying one user's valid access token in one window. */
    RATE_LIMIT_PER_USER: positiveInt(300),
    /** Before every counter key; deployments sharing a Redis differ. */
    RATE_LIMIT_KEY_PREFIX: z.string().min(1).default('gateway:limit:'),
    /** A counter that takes longer than this is skipped (the request goes through), so a slow Redis never stalls traffic. */
    RATE_LIMIT_TIMEOUT_MS: positiveInt(250),
  }
}

/** How access tokens are checked; the gateway calls no internal route, so it needs no service credential. */
function tokenSettings() {
  const { JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE } = authSettings()
  return { JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE }
}

/** Every setting of the gateway, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('gateway', 8080),
  ...redisSettings(),
  ...tokenSettings(),
  ...upstreamSettings(),
  ...rateLimitSettings(),
  /** Origins other than the gateway's own that browsers may call from (CORS); empty: same origin only. */
  CORS_ALLOWED_ORIGINS: originList().default([]),
  /**
   * Behind a proxy that terminates TLS (an Ingress): the client address is the last
   * `X-Forwarded-For` hop and `X-Forwarded-Proto` says whether the browser used TLS. Off, both
   * come from the socket and whatever a client sent in those headers is replaced.
   */
  TRUST_PROXY: bool(false),
  /** The built web app (`make build`); the gateway serves it when the folder holds an index.html. */
  WEB_DIST_DIR: z
    .string()
    .min(1)
    .default(fileURLToPath(new URL('../../../web/dist', import.meta.url))),
  /** How long the merged OpenAPI document is reused before the services are asked again. */
  OPENAPI_CACHE_MS: positiveInt(30_000),
})

export type Settings = z.infer<typeof settingsSchema>
