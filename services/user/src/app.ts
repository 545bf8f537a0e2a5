import type { IncomingMessage } from 'node:http'
import {
  type AppEnv,
  type AuthedEnv,
  authenticate,
  PROBLEM_CONTENT_TYPE,
  Problem,
  problemBody,
  ROLES,
  readJson,
  requireServiceCredential,
  type TokenVerifier,
  validate,
} from '@timedeal/platform'
import { type Context, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { z } from 'zod'
import type { MailSink } from './adapters/mailer.ts'
import type { RotationResult } from './adapters/signing-keys.ts'
import { normalizeEmail, PASSWORD_MAX_LENGTH, passwordWeakness } from './domain/accounts.ts'
import type { Profiles } from './flows/profile.ts'
import type { Registration } from './flows/registration.ts'
import type { Sessions, SignedIn } from './flows/sessions.ts'

export interface UserRoutesDeps {
  readonly registration: Registration
  readonly sessions: Sessions
  readonly profiles: Profiles
  readonly jwks: () => Promise<{ keys: unknown[] }>
  /** Checks access tokens; user-service resolves its own keys instead of fetching its JWKS. */
  readonly verifier: TokenVerifier
  /** Take the client address from the last `X-Forwarded-For` hop (behind the gateway), not the socket. */
  readonly trustProxy: boolean
  readonly refreshTtlSeconds: number
}

export interface UserInternalRoutesDeps {
  readonly rotateSigningKey: () => Promise<RotationResult>
  readonly internalSecret: string
  /**
   * Present only in development (TIMEDEAL_ENV=development): mounts `GET /internal/dev/mail`,
   * which reads the sink when MAILER=sink.
   */
  readonly developmentMail?: { readonly sink: MailSink | undefined }
}

/** The browser's refresh-token cookie; the `__Secure-` prefix makes browsers insist on HTTPS. */
export const REFRESH_COOKIE = 'timedeal_refresh'
const REFRESH_COOKIE_PATH = '/api/auth'

// Inputs, validated once here; the flows receive typed, normalized values.
const email = z
  .string({ error: 'expected an e-mail address' })
  .trim()
  .toLowerCase()
  .pipe(z.email({ error: 'expected an e-mail address' }).max(254, 'expected at most 254 characters'))
  .transform(normalizeEmail)
const newPassword = z.string({ error: 'expected a password' }).superRefine((value, ctx) => {
  const weakness = passwordWeakness(value)
  if (weakness) ctx.addIssue({ code: 'custom', message: weakness })
})
// Existing passwords are not re-judged, only bounded (argon2 would hash megabytes otherwise).
const givenPassword = z
  .string({ error: 'expected a password' })
  .min(1)
  .max(PASSWORD_MAX_LENGTH * 4)
const name = z.string({ error: 'expected a name' }).trim().min(1, 'expected a name').max(100)
const phone = z
  .string({ error: 'expected a phone number' })
  .trim()
  .regex(/^\+?[0-9][0-9 ()-]{5,22}$/, 'expected a phone number such as +82 10-1234-5678')
const address = z.string({ error: 'expected an address' }).trim().min(1, 'expected an address').max(500)

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
const signInBody = z.object({
  email,
  password: givenPassword,
  refreshTokenTransport: z.enum(['body', 'cookie'], { error: 'expected body or cookie' }).default('body'),
})
const refreshBody = z.object({ refreshToken: z.string().min(1).max(200).optional() })
const profileChanges = z
  .object({ name: name.optional(), phone: phone.nullable().optional(), address: address.nullable().optional() })
  .refine((changes) => Object.values(changes).some((value) => value !== undefined), {
    message: 'send at least one of name, phone, address',
  })
const passwordChange = z.object({ currentPassword: givenPassword, newPassword })
const mailQuery = z.object({ to: email })

/**
 * The public routes of user-service. Health, readiness and metrics come from the platform app
 * this is mounted on.
 */
export function userRoutes(deps: UserRoutesDeps): Hono<AppEnv> {
  const clientAddress = (c: Context) => clientAddressOf(c, deps.trustProxy)

  const me = new Hono<AuthedEnv>()
    .use(authenticate(deps.verifier))
    .get('/', async (c) => c.json(await deps.profiles.view(c.var.caller.id)))
    .patch('/', async (c) => {
      const changes = validate(profileChanges, await readJson(c.req.raw))
      return c.json(await deps.profiles.update(c.var.caller.id, changes))
    })
    .post('/password', async (c) => {
      const input = validate(passwordChange, await readJson(c.req.raw))
      await deps.profiles.changePassword(c.var.caller, input, clientAddress(c))
      return c.body(null, 204)
    })

  return new Hono<AppEnv>()
    .get('/.well-known/jwks.json', async (c) => {
      c.header('cache-control', 'public, max-age=60')
      return c.json(await deps.jwks())
    })
    .post('/api/users', async (c) => {
      const input = validate(signUpBody, await readJson(c.req.raw))
      await deps.registration.signUp(input, clientAddress(c))
      return c.json(
        { status: 'VERIFICATION_SENT', detail: 'if this address can be used, a 6-digit code was mailed to it' },
        202,
      )
    })
    .post('/api/users/verify', async (c) => {
      await deps.registration.verify(validate(verifyBody, await readJson(c.req.raw)))
      return c.json({ status: 'VERIFIED' })
    })
    .route('/api/users/me', me)
    .post('/api/auth/login', async (c) => {
      const { refreshTokenTransport, ...credentials } = validate(signInBody, await readJson(c.req.raw))
      const signedIn = await deps.sessions.signIn(credentials, clientAddress(c))
      return respondSignedIn(c, signedIn, refreshTokenTransport)
    })
    .post('/api/auth/refresh', async (c) => {
      const presented = await presentedRefreshToken(c)
      try {
        return respondSignedIn(c, await deps.sessions.refresh(presented.token), presented.transport)
      } catch (error) {
        if (error instanceof Problem && presented.transport === 'cookie') return problemClearingCookie(c, error)
        throw error
      }
    })
    .post('/api/auth/logout', async (c) => {
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
 * The routes other services and developers call on the internal listener (mounted under
 * `/internal`), each behind the service credential.
 */
export function userInternalRoutes(deps: UserInternalRoutesDeps): Hono<AppEnv> {
  const internal = new Hono<AppEnv>()
    .use(requireServiceCredential(deps.internalSecret))
    .post('/signing-keys/rotate', async (c) => {
      const rotated = await deps.rotateSigningKey()
      return c.json({ kid: rotated.kid, activatesAt: rotated.activatesAt.toISOString() }, 201)
    })
  const mail = deps.developmentMail
  if (!mail) return internal
  return internal.get('/dev/mail', async (c) => {
    if (!mail.sink)
      throw new Problem({
        status: 404,
        code: 'MAIL_SINK_DISABLED',
        detail: 'the development mail sink is off (MAILER=smtp)',
      })
    const { to } = validate(mailQuery, c.req.query(), 'query')
    return c.json({ messages: await mail.sink.messagesTo(to) })
  })
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

/** Who is calling, for per-address limits: the gateway's last `X-Forwarded-For` hop when trusted, else the socket. */
export function clientAddressOf(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const lastHop = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim()
    if (lastHop) return lastHop
  }
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket.remoteAddress ?? 'unknown'
}
