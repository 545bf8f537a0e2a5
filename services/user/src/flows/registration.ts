import { randomInt, randomUUID } from 'node:crypto'
import { type Logger, Problem, type Role } from '@timedeal/platform'
import type { AccountStore } from '../adapters/account-store.ts'
import type { DataCipher } from '../adapters/data-cipher.ts'
import type { Mailer } from '../adapters/mailer.ts'
import type { PasswordHasher } from '../adapters/password-hasher.ts'
import type { RateLimiter } from '../adapters/rate-limiter.ts'
import type { PendingSignUp, SignUpStore } from '../adapters/sign-up-store.ts'
import { alreadyRegisteredMail, type MailMessage, verificationMail } from '../domain/messages.ts'
import { newVerificationCode, VERIFICATION_CODE_TTL_MS } from '../domain/verification.ts'
import type { UserMetrics } from '../metrics.ts'
import { type LimitSettings, limitRules, rateLimited } from './limits.ts'

export interface SignUp {
  readonly email: string
  readonly password: string
  readonly name: string
  readonly role: Role
}

export interface RegistrationDeps {
  readonly accounts: AccountStore
  readonly signUps: SignUpStore
  readonly hasher: PasswordHasher
  readonly cipher: DataCipher
  readonly mailer: Mailer
  readonly limiter: RateLimiter
  readonly limits: LimitSettings
  readonly clock: () => Date
  readonly metrics: UserMetrics
  readonly logger: Logger
}

const CODE_PURPOSE = 'mailbox-code'
const codeSubject = (email: string, code: string) => `${email}:${code}`

/**
 * The sign-up among `signUps` whose password is `password`, newest first. Each check costs a
 * password hash, so there are at most `MAX_PENDING_SIGN_UPS` of them.
 */
export async function signUpWithPassword(
  hasher: PasswordHasher,
  signUps: readonly PendingSignUp[],
  password: string,
): Promise<PendingSignUp | undefined> {
  for (const signUp of signUps) {
    if (await hasher.verify(signUp.passwordHash, password)) return signUp
  }
  return undefined
}

/**
 * Sign-up and e-mail verification. A sign-up answers the same way whether or not the address
 * has an account (the mailbox owner learns the difference, nobody else): an address without an
 * account gets a new code; a verified address gets a notice instead. Sign-ups of one address
 * never change each other: each keeps its own password and role, and verifying takes the code
 * (proof of the mailbox) together with a password (proof of the sign-up), activating only the
 * sign-up that password belongs to.
 */
export function createRegistration(deps: RegistrationDeps) {
  const { accounts, signUps, clock } = deps

  async function sendCode(email: string, name: string): Promise<MailMessage> {
    const code = newVerificationCode(randomInt)
    const now = clock()
    const digest = deps.cipher.digest(CODE_PURPOSE, codeSubject(email, code))
    await signUps.saveCode(email, digest, new Date(now.getTime() + VERIFICATION_CODE_TTL_MS), now)
    return verificationMail(email, name, code, VERIFICATION_CODE_TTL_MS / 60_000)
  }

  async function register(input: SignUp, passwordHash: string): Promise<{ outcome: string; mail: MailMessage }> {
    const existing = await accounts.findByEmail(input.email)
    if (existing) return { outcome: 'already_verified', mail: alreadyRegisteredMail(existing.email, existing.name) }
    const earlier = await signUps.pending(input.email)
    await signUps.add({ id: randomUUID(), ...input, passwordHash, createdAt: clock() })
    return { outcome: earlier.length > 0 ? 'repeated' : 'created', mail: await sendCode(input.email, input.name) }
  }

  return {
    async signUp(input: SignUp, clientAddress: string): Promise<void> {
      const verdict = await deps.limiter.hit(limitRules('signup', input.email, clientAddress, deps.limits))
      if (!verdict.allowed) {
        deps.metrics.signUps.inc({ outcome: 'rate_limited' })
        throw rateLimited(verdict)
      }
      // Hashed on every path, so a known address takes as long to answer as a new one.
      const passwordHash = await deps.hasher.hash(input.password)
      const result = await register(input, passwordHash)
      try {
        await deps.mailer.send(result.mail)
      } catch (error) {
        deps.logger.error({ err: error }, 'the sign-up mail could not be sent')
        throw new Problem({
          status: 503,
          code: 'MAIL_UNAVAILABLE',
          detail: 'the verification mail could not be sent; try again shortly',
        })
      }
      deps.metrics.signUps.inc({ outcome: result.outcome })
    },

    /**
     * Activates the sign-up whose password is `password` when `code` is the address's pending
     * code. Every failure looks the same.
     */
    async verify(input: { email: string; code: string; password: string }): Promise<void> {
      const outcome = await signUps.verify(
        input.email,
        {
          codeMatches: (stored) =>
            deps.cipher.matchesDigest(CODE_PURPOSE, codeSubject(input.email, input.code), stored),
          signUpWithPassword: (candidates) => signUpWithPassword(deps.hasher, candidates, input.password),
        },
        clock(),
      )
      if (outcome !== 'verified') {
        throw new Problem({
          status: 400,
          code: 'VERIFICATION_FAILED',
          detail:
            'the code or the password is wrong, or the code expired or is used up; sign up again with the same address to get a new code',
        })
      }
    },
  }
}

export type Registration = ReturnType<typeof createRegistration>
