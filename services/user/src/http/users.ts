import { type AppEnv, ROLES, readJson, validate } from '@timedeal/platform'
import { type Context, Hono } from 'hono'
import { z } from 'zod'
import type { Registration } from '../flows/registration.ts'
import { email, givenPassword, name, newPassword } from './inputs.ts'

const signUpBody = z.object({
  email,
  password: newPassword,
  name,
  role: z.enum(ROLES, { error: `expected one of ${ROLES.join(', ')}` }).default('BUYER'),
})
const verifyBody = z.object({
  email,
  // The password of the sign-up to activate: the code proves the mailbox, the password the sign-up.
  password: givenPassword,
  code: z
    .string({ error: 'expected the code' })
    .trim()
    .regex(/^\d{6}$/, 'expected the 6-digit code from the mail'),
})

/** `/api/users`: sign-up and its verification. */
export function userRoutes(registration: Registration, clientAddress: (c: Context) => string): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .post('/', async (c) => {
      const input = validate(signUpBody, await readJson(c.req.raw))
      await registration.signUp(input, clientAddress(c))
      return c.json(
        { status: 'VERIFICATION_SENT', detail: 'if this address can be used, a 6-digit code was mailed to it' },
        202,
      )
    })
    .post('/verify', async (c) => {
      await registration.verify(validate(verifyBody, await readJson(c.req.raw)))
      return c.json({ status: 'VERIFIED' })
    })
}
