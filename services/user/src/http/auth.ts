import { createRoute } from '@hono/zod-openapi'
import {
  createRoutes,
  emptyResponse,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  Problem,
  problemResponses,
  ROLES,
  type Routes,
} from '@timedeal/platform'
import type { Context, MiddlewareHandler } from 'hono'
import { generateCookie, setCookie } from 'hono/cookie'
import { z } from 'zod'
import { RATE_LIMIT_PROBLEMS } from '../flows/limits.ts'
import type { Sessions, SignedIn } from '../flows/sessions.ts'
import { email, givenPassword } from './inputs.ts'

/** The browser's refresh-token cookie; the `__Secure-` prefix makes browsers insist on HTTPS. */
export const REFRESH_COOKIE = 'timedeal_refresh'
const REFRESH_COOKIE_PATH = '/api/auth'
const SENT_REFRESH_COOKIE = `__Secure-${REFRESH_COOKIE}`

const signInBody = z.object({
  email,
  password: givenPassword,
  refreshTokenTransport: z.enum(['body', 'cookie'], { error: 'expected body or cookie' }).default('body'),
})
const refreshBody = z.object({ refreshToken: z.string().min(1).max(200).optional() })
// Browsers send the refresh token as this cookie instead of in the body.
const refreshCookie = z.object({ [SENT_REFRESH_COOKIE]: z.string().optional() })

const signedInView = z.object({
  tokenType: z.literal('Bearer'),
  accessToken: z.string(),
  expiresIn: z.number().int(),
  refreshToken: z.string().optional().describe('only when the refresh token travels in the body'),
  refreshTokenExpiresAt: z.string(),
  user: z.object({ id: z.string(), email: z.string(), name: z.string(), role: z.enum(ROLES) }),
})

const REFRESH_TOKEN_PROBLEMS = {
  400: ['REFRESH_TOKEN_MISSING'],
  401: ['REFRESH_TOKEN_REUSED', 'REFRESH_TOKEN_REVOKED', 'REFRESH_TOKEN_EXPIRED', 'REFRESH_TOKEN_INVALID'],
} as const

/**
 * Browsers post `Content-Type: application/json` with an empty body when the token is in the
 * cookie: such a request has no body, rather than a malformed one.
 */
const emptyBodyIsNoBody: MiddlewareHandler = async (c, next) => {
  if (c.req.header('content-length') === '0' && c.req.header('content-type')) {
    const headers = new Headers(c.req.raw.headers)
    headers.delete('content-type')
    c.req.raw = new Request(c.req.raw.url, { method: c.req.raw.method, headers })
  }
  await next()
}

const signIn = createRoute({
  method: 'post',
  path: '/login',
  summary: 'Sign in: an access token and a new session',
  request: { body: jsonBody(signInBody) },
  responses: {
    200: jsonResponse(signedInView, 'signed in; with `cookie` transport the refresh token is only the cookie'),
    ...problemResponses(JSON_BODY_PROBLEMS, RATE_LIMIT_PROBLEMS, {
      401: ['INVALID_CREDENTIALS'],
      403: ['EMAIL_NOT_VERIFIED'],
    }),
  },
})

const refresh = createRoute({
  method: 'post',
  path: '/refresh',
  summary: 'Exchange a refresh token (body, else cookie) for new tokens',
  middleware: [emptyBodyIsNoBody] as const,
  request: {
    body: jsonBody(refreshBody, { optional: true }),
    cookies: refreshCookie,
  },
  responses: {
    200: jsonResponse(signedInView, 'the new tokens, answered the way the refresh token came'),
    ...problemResponses(JSON_BODY_PROBLEMS, REFRESH_TOKEN_PROBLEMS),
  },
})

const signOut = createRoute({
  method: 'post',
  path: '/logout',
  summary: 'End the session of a refresh token (body, else cookie)',
  middleware: [emptyBodyIsNoBody] as const,
  request: {
    body: jsonBody(refreshBody, { optional: true }),
    cookies: refreshCookie,
  },
  responses: {
    204: emptyResponse('signed out (also when the token was unknown or revoked already)'),
    ...problemResponses(JSON_BODY_PROBLEMS, { 400: ['REFRESH_TOKEN_MISSING'] }),
  },
})

export interface AuthRoutesDeps {
  readonly sessions: Sessions
  readonly clientAddress: (c: Context) => string
  readonly refreshTtlSeconds: number
}

type Transport = 'body' | 'cookie'

/** `/api/auth`: sign-in, refresh and sign-out. */
export function authRoutes(deps: AuthRoutesDeps): Routes {
  return createRoutes()
    .openapi(signIn, async (c) => {
      const { refreshTokenTransport, ...credentials } = c.req.valid('json')
      const signedIn = await deps.sessions.signIn(credentials, deps.clientAddress(c))
      return c.json(signedInAnswer(c, signedIn, refreshTokenTransport), 200)
    })
    .openapi(refresh, async (c) => {
      const presented = presentedRefreshToken(c.req.valid('json'), c.req.valid('cookie'))
      try {
        return c.json(signedInAnswer(c, await deps.sessions.refresh(presented.token), presented.transport), 200)
      } catch (error) {
        if (error instanceof Problem && presented.transport === 'cookie') throw clearingCookie(error)
        throw error
      }
    })
    .openapi(signOut, async (c) => {
      const presented = presentedRefreshToken(c.req.valid('json'), c.req.valid('cookie'))
      await deps.sessions.signOut(presented.token)
      if (presented.transport === 'cookie') c.header('set-cookie', clearedCookie())
      return c.body(null, 204)
    })

  /** The body of a sign-in or refresh; with `cookie` transport the refresh token goes as the cookie only. */
  function signedInAnswer(c: Context, signedIn: SignedIn, transport: Transport) {
    if (transport === 'cookie') {
      setCookie(c, REFRESH_COOKIE, signedIn.refreshToken, {
        prefix: 'secure',
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
        path: REFRESH_COOKIE_PATH,
        maxAge: deps.refreshTtlSeconds,
      })
    }
    c.header('cache-control', 'no-store')
    const { account } = signedIn
    return {
      tokenType: 'Bearer' as const,
      accessToken: signedIn.accessToken.token,
      expiresIn: signedIn.accessToken.expiresInSeconds,
      ...(transport === 'body' ? { refreshToken: signedIn.refreshToken } : {}),
      refreshTokenExpiresAt: signedIn.refreshTokenExpiresAt.toISOString(),
      user: { id: account.id, email: account.email, name: account.name, role: account.role },
    }
  }
}

/**
 * The refresh token of a request: from the body (`{"refreshToken": "..."}`) for API clients,
 * else from the cookie browsers send. The answer goes back the way the token came.
 */
function presentedRefreshToken(
  body: z.infer<typeof refreshBody>,
  cookies: z.infer<typeof refreshCookie>,
): { token: string; transport: Transport } {
  if (body.refreshToken) return { token: body.refreshToken, transport: 'body' }
  const cookie = cookies[SENT_REFRESH_COOKIE]
  if (cookie) return { token: cookie, transport: 'cookie' }
  throw new Problem({
    status: 400,
    code: 'REFRESH_TOKEN_MISSING',
    detail: `send {"refreshToken": "..."} or the ${REFRESH_COOKIE} cookie`,
  })
}

/** The `Set-Cookie` that removes the refresh cookie. */
const clearedCookie = () =>
  generateCookie(REFRESH_COOKIE, '', { prefix: 'secure', secure: true, path: REFRESH_COOKIE_PATH, maxAge: 0 })

/** A refused cookie is cleared, so the browser stops presenting it. */
function clearingCookie(problem: Problem): Problem {
  return new Problem({
    status: problem.status,
    code: problem.code,
    detail: problem.message,
    extensions: problem.extensions,
    headers: { ...problem.headers, 'set-cookie': clearedCookie() },
    cause: problem,
  })
}
