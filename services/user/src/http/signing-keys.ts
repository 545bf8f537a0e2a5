import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'
import type { RotationResult } from '../adapters/signing-keys.ts'

/** Internal `/signing-keys`: rotation on demand, beside the scheduled one. */
export function signingKeyRoutes(rotateSigningKey: () => Promise<RotationResult>): Hono<AppEnv> {
  return new Hono<AppEnv>().post('/rotate', async (c) => {
    const rotated = await rotateSigningKey()
    return c.json({ kid: rotated.kid, activatesAt: rotated.activatesAt.toISOString() }, 201)
  })
}
