/** How long a mailed verification code stays valid. */
export const VERIFICATION_CODE_TTL_MS = 15 * 60_000

/** Wrong guesses allowed per code; then only a new sign-up (which mails a new code) helps. */
export const VERIFICATION_MAX_ATTEMPTS = 5

/**
 * Sign-ups of one address kept while it is not verified, newest first; older ones are dropped.
 * Each is a password someone chose: verification activates only the one whose password it is
 * given, so a later sign-up never replaces an earlier one's password or role.
 */
export const MAX_PENDING_SIGN_UPS = 5

/** How long a sign-up nobody verified is kept. */
export const PENDING_SIGN_UP_RETENTION_MS = 24 * 60 * 60_000

/** A six-digit code, leading zeros kept. `randomBelow(n)` returns a uniform integer in [0, n). */
export function newVerificationCode(randomBelow: (limit: number) => number): string {
  return String(randomBelow(1_000_000)).padStart(6, '0')
}

export interface PendingVerification {
  readonly expiresAt: Date
  readonly attempts: number
}

export type VerificationOutcome = 'verified' | 'wrong-code' | 'expired' | 'exhausted'

/** What one attempt at verifying an address ended with; a password of no sign-up spends a try like a wrong code. */
export type SignUpVerificationOutcome = VerificationOutcome | 'wrong-password' | 'none'

/** Judges one attempt at a pending code. A spent or expired code fails even when it matches. */
export function judgeVerification(pending: PendingVerification, codeMatches: boolean, now: Date): VerificationOutcome {
  if (now.getTime() >= pending.expiresAt.getTime()) return 'expired'
  if (pending.attempts >= VERIFICATION_MAX_ATTEMPTS) return 'exhausted'
  return codeMatches ? 'verified' : 'wrong-code'
}
