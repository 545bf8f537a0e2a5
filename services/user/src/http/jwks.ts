import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'

/** `GET /.well-known/jwks.json`: the public signing keys every verifier fetches. */
export function jwksRoutes(jwks: () => Promise<{ keys: unknown[] }>): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/.well-known/jwks.json', async (c) => {
    c.header('cache-control', 'public, max-age=60')
    return c.json(await jwks())
  })
}
