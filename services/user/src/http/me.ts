import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  emptyResponse,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  problemResponses,
  type Routes,
  type TokenVerifier,
} from '@timedeal/platform'
import type { Context } from 'hono'
import { z } from 'zod'
import { RATE_LIMIT_PROBLEMS } from '../flows/limits.ts'
import type { Profiles } from '../flows/profile.ts'
import { givenPassword, name, newPassword } from './inputs.ts'
import { ACCOUNT_GONE, profile } from './profile.ts'

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

const showProfile = createRoute({
  method: 'get',
  path: '/',
  summary: "The caller's profile",
  responses: {
    200: jsonResponse(profile, 'the profile'),
    ...problemResponses(AUTH_PROBLEMS, ACCOUNT_GONE),
  },
})

const changeProfile = createRoute({
  method: 'patch',
  path: '/',
  summary: 'Change any of name, phone, address; null clears phone and address',
  request: { body: jsonBody(profileChanges) },
  responses: {
    200: jsonResponse(profile, 'the updated profile'),
    ...problemResponses(JSON_BODY_PROBLEMS, AUTH_PROBLEMS, ACCOUNT_GONE),
  },
})

const changePassword = createRoute({
  method: 'post',
  path: '/password',
  summary: 'Change the password; every other session of the account ends',
  request: { body: jsonBody(passwordChange) },
  responses: {
    204: emptyResponse('changed'),
    ...problemResponses(JSON_BODY_PROBLEMS, AUTH_PROBLEMS, ACCOUNT_GONE, RATE_LIMIT_PROBLEMS, {
      403: ['CURRENT_PASSWORD_WRONG'],
    }),
  },
})

/** `/api/users/me`: the caller's own profile and password, behind an access token. */
export function meRoutes(
  profiles: Profiles,
  verifier: TokenVerifier,
  clientAddress: (c: Context) => string,
): Routes<AuthedEnv> {
  const routes = createRoutes<AuthedEnv>()
  routes.use(authenticate(verifier))
  return routes
    .openapi(showProfile, async (c) => c.json(await profiles.view(c.var.caller.id), 200))
    .openapi(changeProfile, async (c) => c.json(await profiles.update(c.var.caller.id, c.req.valid('json')), 200))
    .openapi(changePassword, async (c) => {
      await profiles.changePassword(c.var.caller, c.req.valid('json'), clientAddress(c))
      return c.body(null, 204)
    })
}
