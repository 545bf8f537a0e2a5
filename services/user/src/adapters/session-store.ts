import { randomUUID } from 'node:crypto'
import { changeRows, selectRows } from '@timedeal/platform'
import type { Sequelize, Transaction } from 'sequelize'
import { judgeRefresh, type RefreshDecision, type RevocationReason } from '../domain/sessions.ts'

export interface IssuedRefreshToken {
  readonly tokenHash: string
  readonly expiresAt: Date
}

/** What happened to a presented refresh token; 'unknown' when no stored token has its hash. */
export type RotationResult =
  | { readonly decision: 'unknown' }
  | { readonly decision: RefreshDecision; readonly userId: string; readonly familyId: string }

interface TokenRow {
  family_id: string
  user_id: string
  expires_at: Date
  used_at: Date | null
  family_revoked_at: Date | null
}

/** Session families and their refresh tokens (stored only as SHA-256 hashes). */
export class SessionStore {
  readonly #db: Sequelize

  constructor(db: Sequelize) {
    this.#db = db
  }

  /** Starts a family with its first token; returns the family id. */
  async start(userId: string, first: IssuedRefreshToken, now: Date): Promise<string> {
    const familyId = randomUUID()
    await this.#db.transaction(async (transaction) => {
      await changeRows(
        this.#db,
        'INSERT INTO session_families (id, user_id, created_at) VALUES (:familyId, :userId, :now)',
        { familyId, userId, now },
        transaction,
      )
      await changeRows(
        this.#db,
        `INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)
         VALUES (:tokenHash, :familyId, :now, :expiresAt)`,
        { familyId, now, ...first },
        transaction,
      )
    })
    return familyId
  }

  /**
   * Exchanges the token with hash `presentedHash` for `next`, in one transaction that locks the
   * presented row: of two parallel uses, one rotates and the other is caught as a reuse. A reuse
   * revokes the family, and that revocation is committed even though the caller gets an error.
   */
  async rotate(presentedHash: string, next: IssuedRefreshToken, now: Date): Promise<RotationResult> {
    return this.#db.transaction(async (transaction) => {
      const [row] = await selectRows<TokenRow>(
        this.#db,
        `SELECT t.family_id, t.expires_at, t.used_at, f.user_id, f.revoked_at AS family_revoked_at
         FROM refresh_tokens t JOIN session_families f ON f.id = t.family_id
         WHERE t.token_hash = :presentedHash
         FOR UPDATE`,
        { presentedHash },
        transaction,
      )
      if (!row) return { decision: 'unknown' as const }
      const decision = judgeRefresh(
        { expiresAt: row.expires_at, usedAt: row.used_at, familyRevokedAt: row.family_revoked_at },
        now,
      )
      const result = { decision, userId: row.user_id, familyId: row.family_id }
      if (decision === 'reuse-detected') {
        await this.#revokeFamily(row.family_id, 'reuse-detected', now, transaction)
      } else if (decision === 'rotate') {
        await changeRows(
          this.#db,
          'UPDATE refresh_tokens SET used_at = :now WHERE token_hash = :presentedHash',
          { presentedHash, now },
          transaction,
        )
        await changeRows(
          this.#db,
          `INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)
           VALUES (:tokenHash, :familyId, :now, :expiresAt)`,
          { familyId: row.family_id, now, ...next },
          transaction,
        )
      }
      return result
    })
  }

  /** Ends the family the token belongs to; an unknown token changes nothing. */
  async revokeByToken(tokenHash: string, reason: RevocationReason, now: Date): Promise<void> {
    await changeRows(
      this.#db,
      `UPDATE session_families f JOIN refresh_tokens t ON t.family_id = f.id
       SET f.revoked_at = :now, f.revoked_reason = :reason
       WHERE t.token_hash = :tokenHash AND f.revoked_at IS NULL`,
      { tokenHash, reason, now },
    )
  }

  /** Ends every live family of the user except `keepFamilyId` (the caller's own session). */
  async revokeAllOf(userId: string, reason: RevocationReason, now: Date, keepFamilyId?: string): Promise<number> {
    return changeRows(
      this.#db,
      `UPDATE session_families SET revoked_at = :now, revoked_reason = :reason
       WHERE user_id = :userId AND revoked_at IS NULL AND id <> :keep`,
      { userId, reason, now, keep: keepFamilyId ?? '' },
    )
  }

  /** Deletes tokens that expired more than `graceMs` ago; families left empty go with them. */
  async pruneExpired(now: Date, graceMs: number): Promise<number> {
    const before = new Date(now.getTime() - graceMs)
    const removed = await changeRows(this.#db, 'DELETE FROM refresh_tokens WHERE expires_at < :before', { before })
    await changeRows(
      this.#db,
      `DELETE f FROM session_families f LEFT JOIN refresh_tokens t ON t.family_id = f.id
       WHERE t.token_hash IS NULL AND f.created_at < :before`,
      { before },
    )
    return removed
  }

  async #revokeFamily(familyId: string, reason: RevocationReason, now: Date, transaction: Transaction): Promise<void> {
    await changeRows(
      this.#db,
      `UPDATE session_families SET revoked_at = :now, revoked_reason = :reason
       WHERE id = :familyId AND revoked_at IS NULL`,
      { familyId, reason, now },
      transaction,
    )
  }
}
