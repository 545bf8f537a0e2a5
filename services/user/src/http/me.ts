import { type AuthedEnv, authenticate, readJson, type TokenVerifier, validate } from '@timedeal/platform'
import { type Context, Hono } from 'hono'
import { z } from 'zod'
import type { Profiles } from '../flows/profile.ts'
import { givenPassword, name, newPassword } from './inputs.ts'

const phone = z
  .string({ error: 'expected a phone number' })
  .trim()
  .regex(/^\+?[0-9][0-9 ()-]{5,22}$/, 'expected a phone number such as +82 10-1234-5678')
const address = z.string({ error: 'expected an address' }).trim().min(1, 'expected an address').max(500)

const profileChanges = z
  .object({ name: name.optional(), phone: phone.nullable().optional(), address: address.nullable().optional() })
  .refine((changes) => Object.values(changes).some((value) => value !== undefined), {
    message: 'send at least one of name, phone, address',
  })
const passwordChange = z.object({ currentPassword: givenPassword, newPassword })

/** `/api/users/me`: the caller's own profile and password, behind an access token. */
export function meRoutes(
  profiles: Profiles,
  verifier: TokenVerifier,
  clientAddress: (c: Context) => string,
): Hono<AuthedEnv> {
  return new Hono<AuthedEnv>()
    .use(authenticate(verifier))
    .get('/', async (c) => c.json(await profiles.view(c.var.caller.id)))
    .patch('/', async (c) => {
      const changes = validate(profileChanges, await readJson(c.req.raw))
      return c.json(await profiles.update(c.var.caller.id, changes))
    })
    .post('/password', async (c) => {
      const input = validate(passwordChange, await readJson(c.req.raw))
      await profiles.changePassword(c.var.caller, input, clientAddress(c))
      return c.body(null, 204)
    })
}
