import { randomInt, randomUUID } from 'node:crypto'
import { type Logger, Problem, type Role } from '@timedeal/platform'
import { type AccountStore, EmailTaken } from '../adapters/account-store.ts'
import type { DataCipher } from '../adapters/data-cipher.ts'
import type { Mailer } from '../adapters/mailer.ts'
import type { PasswordHasher } from '../adapters/password-hasher.ts'
import type { RateLimiter } from '../adapters/rate-limiter.ts'
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
  readonly hasher: PasswordHasher
  readonly cipher: DataCipher
  readonly mailer: Mailer
  readonly limiter: RateLimiter
  readonly limits: LimitSettings
  readonly clock: () => Date
  readonly metrics: UserMetrics
  readonly logger: Logger
}

const CODE_PURPOSE = 'email-verification'
const codeSubject = (userId: string, code: string) => `${userId}:${code}`

/**
 * Sign-up and e-mail verification. A sign-up answers the same way whether or not the address
 * has an account (the mailbox owner learns the difference, nobody else): a new address gets a
 * code; an address whose account is not verified yet gets its details replaced by the latest
 * sign-up and a new code; a verified address gets a notice instead of a code.
 */
export function createRegistration(deps: RegistrationDeps) {
  const { accounts, clock } = deps

  async function sendCode(userId: string, email: string, name: string): Promise<MailMessage> {
    const code = newVerificationCode(randomInt)
    const now = clock()
    const digest = deps.cipher.digest(CODE_PURPOSE, codeSubject(userId, code))
    await accounts.savePendingVerification(userId, digest, new Date(now.getTime() + VERIFICATION_CODE_TTL_MS), now)
    return verificationMail(email, name, code, VERIFICATION_CODE_TTL_MS / 60_000)
  }

  async function register(input: SignUp, passwordHash: string): Promise<{ outcome: string; mail: MailMessage }> {
    const existing = await accounts.findByEmail(input.email)
    if (existing?.emailVerified) {
      return { outcome: 'already_verified', mail: alreadyRegisteredMail(existing.email, existing.name) }
    }
    if (existing) {
      await accounts.replaceUnverified(existing.id, { name: input.name, role: input.role, passwordHash }, clock())
      return { outcome: 'repeated', mail: await sendCode(existing.id, input.email, input.name) }
    }
    const id = randomUUID()
    await accounts.create({ id, ...input, passwordHash, verified: false }, clock())
    return { outcome: 'created', mail: await sendCode(id, input.email, input.name) }
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
      let result: { outcome: string; mail: MailMessage }
      try {
        result = await register(input, passwordHash)
      } catch (error) {
        // Two sign-ups of one new address at once: the loser continues as the repeated one.
        if (!(error instanceof EmailTaken)) throw error
        result = await register(input, passwordHash)
      }
      try {
        await deps.mailer.send(result.mail)
      } catch (error) {
        deps.logger.error({ err: error }, 'the sign-up mail could not be sent')
        throw new Problem(503, 'MAIL_UNAVAILABLE', 'the verification mail could not be sent; try again shortly')
      }
      deps.metrics.signUps.inc({ outcome: result.outcome })
    },

    /** Marks the address verified when `code` is its pending code. Every failure looks the same. */
    async verify(input: { email: string; code: string }): Promise<void> {
      const outcome = await accounts.attemptVerification(
        input.email,
        (userId, stored) => deps.cipher.matchesDigest(CODE_PURPOSE, codeSubject(userId, input.code), stored),
        clock(),
      )
      if (outcome !== 'verified') {
        throw new Problem(
          400,
          'VERIFICATION_FAILED',
          'the code is wrong, expired or used up; sign up again with the same address to get a new one',
        )
      }
    },
  }
}

export type Registration = ReturnType<typeof createRegistration>
