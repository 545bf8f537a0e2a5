import { timingSafeEqual } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose'
import { z } from 'zod'
import type { AppEnv } from './http.ts'
import { Problem } from './problem.ts'

export const ROLES = ['BUYER', 'SELLER'] as const
export type Role = (typeof ROLES)[number]

/** Who is calling, as proven by a verified access token. */
export interface Caller {
  readonly id: string
  readonly role: Role
  /** The raw access token, forwarded on service-to-service calls. */
  readonly token: string
}

/** The env of routes behind {@link authenticate}: every handler can read `c.var.caller`. */
export type AuthedEnv = { Variables: AppEnv['Variables'] & { caller: Caller } }

export interface TokenVerifier {
  /** Resolves the caller of a valid access token; rejects with a 401 (or 503) {@link Problem}. */
  verify(token: string): Promise<Caller>
}

interface TokenVerifierCommonOptions {
  readonly issuer: string
  readonly audience: string
  readonly clockToleranceSeconds?: number
  /**
   * How long a verified token is answered from memory (default 60 s; never past its expiry), so
   * a caller's every request does not check the signature again. 0 checks every time.
   */
  readonly verifiedTokenTtlMs?: number
  /** How many verified tokens are remembered at most (default 10,000; the oldest go first). */
  readonly verifiedTokenLimit?: number
}

/**
 * Where the verification keys come from: user-service's JWKS over HTTP (every other service), or
 * a key lookup of the issuer itself (user-service checks its own tokens without calling itself).
 */
export type TokenVerifierOptions = TokenVerifierCommonOptions &
  (
    | {
        readonly jwksUrl: string
        /** The shortest time between two fetches of the JWKS caused by an unknown key id. */
        readonly keyRefetchCooldownMs?: number
      }
    | { readonly keys: JWTVerifyGetKey }
  )

export const ACCESS_TOKEN_ALGORITHMS = ['EdDSA', 'ES256']

const accessClaims = z.object({
  sub: z.string().min(1),
  role: z.enum(ROLES),
})

/**
 * Verifies access tokens against user-service's JWKS. Keys are cached; a token signed with an
 * unknown key id makes the set be fetched again (at most every 30 s by default), so a key
 * rotation is followed without a restart.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const keys =
    'keys' in options
      ? options.keys
      : createRemoteJWKSet(new URL(options.jwksUrl), {
          cooldownDuration: options.keyRefetchCooldownMs ?? 30_000,
          cacheMaxAge: 10 * 60_000,
          timeoutDuration: 3_000,
        })
  const remembered = verifiedTokens(options.verifiedTokenTtlMs ?? 60_000, options.verifiedTokenLimit ?? 10_000)
  return {
    async verify(token) {
      const known = remembered.get(token)
      if (known) return known
      let payload: JWTPayload
      try {
        ;({ payload } = await jwtVerify(token, keys, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ACCESS_TOKEN_ALGORITHMS,
          clockTolerance: options.clockToleranceSeconds ?? 5,
          typ: 'at+jwt',
          // A token without an expiry would be valid forever.
          requiredClaims: ['exp'],
        }))
      } catch (error) {
        throw tokenProblem(error)
      }
      const claims = accessClaims.safeParse(payload)
      if (!claims.success)
        throw new Problem({
          status: 401,
          code: 'TOKEN_INVALID',
          detail: 'the access token lacks a subject or a known role',
        })
      const caller: Caller = { id: claims.data.sub, role: claims.data.role, token }
      remembered.add(token, caller, (payload.exp as number) * 1000)
      return caller
    },
  }
}

/**
 * Tokens already verified, by their exact string: a hit is the same signed text, so it proves
 * what it proved before, until its expiry (the clock tolerance is not stretched from memory) or
 * `ttlMs`, whichever comes first; the ttl bounds how long a token of a retired key still passes.
 */
function verifiedTokens(ttlMs: number, limit: number) {
  const entries = new Map<string, { readonly caller: Caller; readonly until: number }>()
  return {
    get(token: string): Caller | undefined {
      const entry = entries.get(token)
      if (!entry) return undefined
      if (entry.until > Date.now()) return entry.caller
      entries.delete(token)
      return undefined
    },
    add(token: string, caller: Caller, expiresAtMs: number): void {
      if (ttlMs <= 0) return
      entries.delete(token)
      entries.set(token, { caller, until: Math.min(expiresAtMs, Date.now() + ttlMs) })
      // Maps keep insertion order: the first key is the one remembered longest ago.
      while (entries.size > limit) entries.delete(entries.keys().next().value as string)
    },
  }
}

function tokenProblem(error: unknown): Problem {
  if (error instanceof joseErrors.JWTExpired)
    return new Problem({ status: 401, code: 'TOKEN_EXPIRED', detail: 'the access token has expired' })
  // A JWKS answer other than 200 comes as the generic JOSE error: the keys are unavailable, the
  // token is not at fault.
  const unreachable =
    error instanceof joseErrors.JWKSTimeout ||
    (error instanceof TypeError && /fetch/i.test(error.message)) ||
    (error instanceof joseErrors.JOSEError && error.code === 'ERR_JOSE_GENERIC')
  if (unreachable) {
    return new Problem({
      status: 503,
      code: 'AUTH_UNAVAILABLE',
      detail: 'the signing keys could not be fetched; try again shortly',
    })
  }
  if (error instanceof joseErrors.JOSEError) {
    return new Problem({ status: 401, code: 'TOKEN_INVALID', detail: 'the access token is not valid' })
  }
  return new Problem({
    status: 503,
    code: 'AUTH_UNAVAILABLE',
    detail: 'the access token could not be checked; try again shortly',
  })
}

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(header: string | undefined | null): string | undefined {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
  return match?.[1]
}

const unauthenticated = () =>
  new Problem({
    status: 401,
    code: 'UNAUTHENTICATED',
    detail: 'send an access token as "Authorization: Bearer <token>"',
  })

/**
 * Rejects requests without a valid access token and puts the caller on `c.var.caller`. A 401
 * carries the `WWW-Authenticate` challenge of RFC 6750.
 */
export function authenticate(verifier: TokenVerifier): MiddlewareHandler<AuthedEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.header('authorization'))
    if (!token) throw withHeaders(unauthenticated(), { 'www-authenticate': 'Bearer' })
    let caller: Caller
    try {
      caller = await verifier.verify(token)
    } catch (error) {
      if (!(error instanceof Problem) || error.status !== 401) throw error
      throw withHeaders(error, { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    c.set('caller', caller)
    await next()
  }
}

const withHeaders = (problem: Problem, headers: Record<string, string>) =>
  new Problem({
    status: problem.status,
    code: problem.code,
    detail: problem.message,
    extensions: problem.extensions,
    headers: { ...problem.headers, ...headers },
  })

/** Lets only callers with one of `roles` through; use after {@link authenticate}. */
export function requireRole(...roles: Role[]): MiddlewareHandler<AuthedEnv> {
  return async (c, next) => {
    const caller = c.get('caller')
    if (!caller) throw unauthenticated()
    if (!roles.includes(caller.role)) {
      throw new Problem({ status: 403, code: 'FORBIDDEN_ROLE', detail: `this needs the ${roles.join(' or ')} role` })
    }
    await next()
  }
}

export const INTERNAL_CREDENTIAL_HEADER = 'x-timedeal-internal'

/**
 * Guards `/internal/...` routes with a service credential of their own (a shared secret from
 * settings), separate from user tokens, compared in constant time.
 */
export function requireServiceCredential(secret: string): MiddlewareHandler<AppEnv> {
  const expected = Buffer.from(secret)
  return async (c, next) => {
    const given = Buffer.from(c.req.header(INTERNAL_CREDENTIAL_HEADER) ?? '')
    if (given.length === 0)
      throw new Problem({
        status: 401,
        code: 'SERVICE_CREDENTIAL_REQUIRED',
        detail: 'internal routes need a service credential',
      })
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new Problem({
        status: 403,
        code: 'SERVICE_CREDENTIAL_INVALID',
        detail: 'the service credential is not valid',
      })
    }
    await next()
  }
}

/**
 * Headers for a call to another service on behalf of the current request: the caller's own
 * token (so the callee applies its own authorization), the trace context and the request id.
 */
export function forwardedHeaders<E extends AppEnv>(
  c: Context<E>,
  extra: Record<string, string> = {},
): Record<string, string> {
  const headers: Record<string, string> = {
    traceparent: c.var.traceparent,
    'x-request-id': c.var.requestId,
    ...extra,
  }
  const authorization = c.req.header('authorization')
  if (authorization) headers.authorization = authorization
  return headers
}

/** The verifier a service builds from its `authSettings()` values. */
export function tokenVerifierFromSettings(settings: {
  readonly JWT_JWKS_URL: string
  readonly JWT_ISSUER: string
  readonly JWT_AUDIENCE: string
}): TokenVerifier {
  return createTokenVerifier({
    jwksUrl: settings.JWT_JWKS_URL,
    issuer: settings.JWT_ISSUER,
    audience: settings.JWT_AUDIENCE,
  })
}
