import { createHash, randomBytes } from 'node:crypto'
import { type Logger, Problem } from '@timedeal/platform'
import type { AccessTokenIssuer, IssuedAccessToken } from '../adapters/access-tokens.ts'
import type { AccountStore } from '../adapters/account-store.ts'
import type { PasswordHasher } from '../adapters/password-hasher.ts'
import type { RateLimiter } from '../adapters/rate-limiter.ts'
import type { IssuedRefreshToken, SessionStore } from '../adapters/session-store.ts'
import type { SignUpStore } from '../adapters/sign-up-store.ts'
import type { Account } from '../domain/accounts.ts'
import type { UserMetrics } from '../metrics.ts'
import { accountLimitKey, type LimitSettings, limitRules, rateLimited } from './limits.ts'
import { signUpWithPassword } from './registration.ts'

export interface SessionDeps {
  readonly accounts: AccountStore
  readonly signUps: SignUpStore
  readonly sessions: SessionStore
  readonly hasher: PasswordHasher
  readonly tokens: AccessTokenIssuer
  readonly limiter: RateLimiter
  readonly limits: LimitSettings
  readonly refreshTtlSeconds: number
  readonly clock: () => Date
  readonly metrics: UserMetrics
  readonly logger: Logger
}

export interface SignedIn {
  readonly account: Account
  readonly accessToken: IssuedAccessToken
  /** Opaque; only its SHA-256 is stored. */
  readonly refreshToken: string
  readonly refreshTokenExpiresAt: Date
}

export const hashRefreshToken = (token: string): string => createHash('sha256').update(token).digest('hex')

const invalidCredentials = () =>
  new Problem({ status: 401, code: 'INVALID_CREDENTIALS', detail: 'the e-mail address or the password is wrong' })

const refreshProblems = {
  unknown: () =>
    new Problem({
      status: 401,
      code: 'REFRESH_TOKEN_INVALID',
      detail: 'the refresh token is not known; sign in again',
    }),
  expired: () =>
    new Problem({ status: 401, code: 'REFRESH_TOKEN_EXPIRED', detail: 'the refresh token has expired; sign in again' }),
  'family-revoked': () =>
    new Problem({
      status: 401,
      code: 'REFRESH_TOKEN_REVOKED',
      detail: 'this session was signed out or revoked; sign in again',
    }),
  'reuse-detected': () =>
    new Problem({
      status: 401,
      code: 'REFRESH_TOKEN_REUSED',
      detail:
        'this refresh token was already used, so it may have been stolen; the whole session is revoked, sign in again',
    }),
}

/** Sign-in, refresh-token rotation and sign-out. */
export function createSessions(deps: SessionDeps) {
  const { clock } = deps

  function newRefreshToken(): { token: string; issued: IssuedRefreshToken } {
    const token = randomBytes(32).toString('base64url')
    const expiresAt = new Date(clock().getTime() + deps.refreshTtlSeconds * 1000)
    return { token, issued: { tokenHash: hashRefreshToken(token), expiresAt } }
  }

  /** No account has the address: only the password of one of its sign-ups is told that it waits for verification. */
  async function refuseWithoutAccount(input: { email: string; password: string }): Promise<never> {
    const pending = await deps.signUps.pending(input.email)
    const signUp =
      pending.length > 0
        ? await signUpWithPassword(deps.hasher, pending, input.password)
        : await deps.hasher.verifyNobody(input.password)
    if (signUp) {
      deps.metrics.signIns.inc({ outcome: 'not_verified' })
      throw new Problem({
        status: 403,
        code: 'EMAIL_NOT_VERIFIED',
        detail: 'confirm your e-mail address with the code we sent first',
      })
    }
    deps.metrics.signIns.inc({ outcome: 'invalid_credentials' })
    throw invalidCredentials()
  }

  return {
    /**
     * Unknown address and wrong password are one answer, and take the same time (a decoy hash
     * is checked when nothing matches the address). Only someone who knows the password of a
     * sign-up learns that it is not verified yet.
     */
    async signIn(input: { email: string; password: string }, clientAddress: string): Promise<SignedIn> {
      const verdict = await deps.limiter.hit(limitRules('login', input.email, clientAddress, deps.limits))
      if (!verdict.allowed) {
        deps.metrics.signIns.inc({ outcome: 'rate_limited' })
        throw rateLimited(verdict)
      }
      const account = await deps.accounts.findByEmail(input.email)
      if (!account) return refuseWithoutAccount(input)
      if (!(await deps.hasher.verify(account.passwordHash, input.password))) {
        deps.metrics.signIns.inc({ outcome: 'invalid_credentials' })
        throw invalidCredentials()
      }
      // The account's owner proved the password: earlier mistakes no longer count against them.
      await deps.limiter.reset(accountLimitKey('login', input.email))
      const refresh = newRefreshToken()
      const sessionId = await deps.sessions.start(account.id, refresh.issued, clock())
      const accessToken = await deps.tokens.issue({ userId: account.id, role: account.role, sessionId })
      deps.metrics.signIns.inc({ outcome: 'success' })
      return { account, accessToken, refreshToken: refresh.token, refreshTokenExpiresAt: refresh.issued.expiresAt }
    },

    /** Exchanges a refresh token for a new pair; a token used twice ends its whole session. */
    async refresh(presented: string): Promise<SignedIn> {
      const next = newRefreshToken()
      const result = await deps.sessions.rotate(hashRefreshToken(presented), next.issued, clock())
      if (result.decision !== 'rotate') {
        deps.metrics.refreshes.inc({ outcome: result.decision === 'family-revoked' ? 'revoked' : result.decision })
        if (result.decision === 'reuse-detected') {
          deps.logger.warn(
            { userId: result.userId, sessionId: result.familyId },
            'a rotated refresh token was used again; its session is revoked',
          )
        }
        throw refreshProblems[result.decision]()
      }
      const account = await deps.accounts.findById(result.userId)
      if (!account) throw refreshProblems.unknown()
      const accessToken = await deps.tokens.issue({
        userId: account.id,
        role: account.role,
        sessionId: result.familyId,
      })
      deps.metrics.refreshes.inc({ outcome: 'rotated' })
      return { account, accessToken, refreshToken: next.token, refreshTokenExpiresAt: next.issued.expiresAt }
    },

    /** Ends the session of the refresh token. Idempotent: an unknown or revoked token is fine. */
    async signOut(presented: string): Promise<void> {
      await deps.sessions.revokeByToken(hashRefreshToken(presented), 'sign-out', clock())
    },
  }
}

export type Sessions = ReturnType<typeof createSessions>
