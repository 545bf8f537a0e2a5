import { createRoute } from '@hono/zod-openapi'
import { createRoutes, jsonResponse, type Routes } from '@timedeal/platform'
import { z } from 'zod'

const jwksDocument = z.object({ keys: z.array(z.record(z.string(), z.unknown())) })

const showJwks = createRoute({
  method: 'get',
  path: '/.well-known/jwks.json',
  summary: 'The public keys access tokens are signed with',
  responses: { 200: jsonResponse(jwksDocument, 'the published keys, by `kid`') },
})

/** `GET /.well-known/jwks.json`: the public signing keys every verifier fetches. */
export function jwksRoutes(jwks: () => Promise<z.infer<typeof jwksDocument>>): Routes {
  return createRoutes().openapi(showJwks, async (c) => {
    c.header('cache-control', 'public, max-age=60')
    return c.json(await jwks(), 200)
  })
}
