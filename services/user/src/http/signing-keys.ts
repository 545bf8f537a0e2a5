import { createRoute } from '@hono/zod-openapi'
import {
  createRoutes,
  jsonResponse,
  problemResponses,
  type Routes,
  SERVICE_CREDENTIAL_PROBLEMS,
} from '@timedeal/platform'
import { z } from 'zod'
import type { RotationResult } from '../adapters/signing-keys.ts'

const rotate = createRoute({
  method: 'post',
  path: '/rotate',
  summary: 'Rotate the signing key now, the way the schedule does',
  responses: {
    201: jsonResponse(
      z.object({ kid: z.string(), activatesAt: z.string() }),
      'the new key, published now, signing from `activatesAt`',
    ),
    ...problemResponses(SERVICE_CREDENTIAL_PROBLEMS),
  },
})

/** Internal `/signing-keys`: rotation on demand, beside the scheduled one. */
export function signingKeyRoutes(rotateSigningKey: () => Promise<RotationResult>): Routes {
  return createRoutes().openapi(rotate, async (c) => {
    const rotated = await rotateSigningKey()
    return c.json({ kid: rotated.kid, activatesAt: rotated.activatesAt.toISOString() }, 201)
  })
}
