import { createRoute } from '@hono/zod-openapi'
import {
  createRoutes,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  problemResponses,
  ROLES,
  type Routes,
} from '@timedeal/platform'
import type { Context } from 'hono'
import { z } from 'zod'
import { RATE_LIMIT_PROBLEMS } from '../flows/limits.ts'
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

const signUp = createRoute({
  method: 'post',
  path: '/',
  summary: 'Sign up; a 6-digit code is mailed to the address',
  description: 'The answer is the same whether or not the address is registered already.',
  request: { body: jsonBody(signUpBody) },
  responses: {
    202: jsonResponse(
      z.object({ status: z.literal('VERIFICATION_SENT'), detail: z.string() }),
      'the sign-up is waiting for its code',
    ),
    ...problemResponses(JSON_BODY_PROBLEMS, RATE_LIMIT_PROBLEMS, { 503: ['MAIL_UNAVAILABLE'] }),
  },
})

const verify = createRoute({
  method: 'post',
  path: '/verify',
  summary: 'Activate the sign-up of this password with the mailed code',
  request: { body: jsonBody(verifyBody) },
  responses: {
    200: jsonResponse(z.object({ status: z.literal('VERIFIED') }), 'the account exists and can sign in'),
    ...problemResponses(JSON_BODY_PROBLEMS, { 400: ['VERIFICATION_FAILED'] }),
  },
})

/** `/api/users`: sign-up and its verification. */
export function userRoutes(registration: Registration, clientAddress: (c: Context) => string): Routes {
  return createRoutes()
    .openapi(signUp, async (c) => {
      await registration.signUp(c.req.valid('json'), clientAddress(c))
      return c.json(
        {
          status: 'VERIFICATION_SENT' as const,
          detail: 'if this address can be used, a 6-digit code was mailed to it',
        },
        202,
      )
    })
    .openapi(verify, async (c) => {
      await registration.verify(c.req.valid('json'))
      return c.json({ status: 'VERIFIED' as const }, 200)
    })
}
