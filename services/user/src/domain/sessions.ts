/**
 * A session is a family of refresh tokens: sign-in starts one, and every refresh replaces the
 * presented token with a new one of the same family. A token that was already replaced and
 * comes back means two parties hold the family (one of them stole it), so the whole family ends.
 */
export interface RefreshTokenState {
  readonly expiresAt: Date
  /** When the token was exchanged for its successor; null while it is the family's latest. */
  readonly usedAt: Date | null
  readonly familyRevokedAt: Date | null
}

export type RefreshDecision = 'rotate' | 'reuse-detected' | 'family-revoked' | 'expired'

export function judgeRefresh(token: RefreshTokenState, now: Date): RefreshDecision {
  if (token.familyRevokedAt) return 'family-revoked'
  if (token.usedAt) return 'reuse-detected'
  if (now.getTime() >= token.expiresAt.getTime()) return 'expired'
  return 'rotate'
}

/** Why a family ended, kept for the audit trail. */
export type RevocationReason = 'sign-out' | 'reuse-detected' | 'password-changed'
