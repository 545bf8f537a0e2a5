import { type AppEnv, PROBLEM_CONTENT_TYPE, Problem, problemBody, readJson, validate } from '@timedeal/platform'
import { type Context, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { z } from 'zod'
import type { Sessions, SignedIn } from '../flows/sessions.ts'
import { email, givenPassword } from './inputs.ts'

/** The browser's refresh-token cookie; the `__Secure-` prefix makes browsers insist on HTTPS. */
export const REFRESH_COOKIE = 'timedeal_refresh'
const REFRESH_COOKIE_PATH = '/api/auth'

const signInBody = z.object({
  email,
  password: givenPassword,
  refreshTokenTransport: z.enum(['body', 'cookie'], { error: 'expected body or cookie' }).default('body'),
})
const refreshBody = z.object({ refreshToken: z.string().min(1).max(200).optional() })

export interface AuthRoutesDeps {
  readonly sessions: Sessions
  readonly clientAddress: (c: Context) => string
  readonly refreshTtlSeconds: number
}

/** `/api/auth`: sign-in, refresh and sign-out. */
export function authRoutes(deps: AuthRoutesDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .post('/login', async (c) => {
      const { refreshTokenTransport, ...credentials } = validate(signInBody, await readJson(c.req.raw))
      const signedIn = await deps.sessions.signIn(credentials, deps.clientAddress(c))
      return respondSignedIn(c, signedIn, refreshTokenTransport)
    })
    .post('/refresh', async (c) => {
      const presented = await presentedRefreshToken(c)
      try {
        return respondSignedIn(c, await deps.sessions.refresh(presented.token), presented.transport)
      } catch (error) {
        if (error instanceof Problem && presented.transport === 'cookie') return problemClearingCookie(c, error)
        throw error
      }
    })
    .post('/logout', async (c) => {
      const presented = await presentedRefreshToken(c)
      await deps.sessions.signOut(presented.token)
      if (presented.transport === 'cookie') clearRefreshCookie(c)
      return c.body(null, 204)
    })

  function respondSignedIn(c: Context, signedIn: SignedIn, transport: 'body' | 'cookie') {
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
    return c.json({
      tokenType: 'Bearer',
      accessToken: signedIn.accessToken.token,
      expiresIn: signedIn.accessToken.expiresInSeconds,
      ...(transport === 'body' ? { refreshToken: signedIn.refreshToken } : {}),
      refreshTokenExpiresAt: signedIn.refreshTokenExpiresAt.toISOString(),
      user: { id: account.id, email: account.email, name: account.name, role: account.role },
    })
  }
}

/**
 * The refresh token of a request: from the body (`{"refreshToken": "..."}`) for API clients,
 * else from the cookie browsers send. The answer goes back the way the token came.
 */
async function presentedRefreshToken(c: Context): Promise<{ token: string; transport: 'body' | 'cookie' }> {
  const hasBody = (c.req.header('content-type') ?? '').includes('json') && c.req.header('content-length') !== '0'
  const { refreshToken } = validate(refreshBody, hasBody ? await readJson(c.req.raw) : {})
  if (refreshToken) return { token: refreshToken, transport: 'body' }
  const cookie = getCookie(c, REFRESH_COOKIE, 'secure')
  if (cookie) return { token: cookie, transport: 'cookie' }
  throw new Problem({
    status: 400,
    code: 'REFRESH_TOKEN_MISSING',
    detail: `send {"refreshToken": "..."} or the ${REFRESH_COOKIE} cookie`,
  })
}

function clearRefreshCookie(c: Context): void {
  deleteCookie(c, REFRESH_COOKIE, { prefix: 'secure', secure: true, path: REFRESH_COOKIE_PATH })
}

/** A problem answered through the context, so the cookie-clearing header set on it goes along. */
function problemClearingCookie(c: Context, problem: Problem): Response {
  clearRefreshCookie(c)
  return c.body(JSON.stringify(problemBody(problem, c.req.path)), problem.status, {
    ...problem.headers,
    'content-type': PROBLEM_CONTENT_TYPE,
  })
}
