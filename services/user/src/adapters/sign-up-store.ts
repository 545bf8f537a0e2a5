import type { Role } from '@timedeal/platform'
import { changeRows, selectRows } from '@timedeal/platform'
import { type Sequelize, type Transaction, UniqueConstraintError } from 'sequelize'
import { judgeVerification, MAX_PENDING_SIGN_UPS, type SignUpVerificationOutcome } from '../domain/verification.ts'

/** A sign-up waiting for its address to be verified. */
export interface PendingSignUp {
  readonly id: string
  readonly email: string
  readonly name: string
  readonly role: Role
  readonly passwordHash: string
  readonly createdAt: Date
}

/** What proves an address and picks the sign-up to activate. */
export interface VerificationProof {
  /** Whether the given code is the one whose digest is stored for the address. */
  readonly codeMatches: (codeDigest: string) => boolean
  /** The sign-up whose password was given, if any (newest sign-ups come first). */
  readonly signUpWithPassword: (signUps: readonly PendingSignUp[]) => Promise<PendingSignUp | undefined>
}

interface SignUpRow {
  id: string
  email: string
  name: string
  role: Role
  password_hash: string
  created_at: Date
}

const toSignUp = (row: SignUpRow): PendingSignUp => ({
  id: row.id,
  email: row.email,
  name: row.name,
  role: row.role,
  passwordHash: row.password_hash,
  createdAt: row.created_at,
})

/**
 * Sign-ups and the verification code of their address, in `timedeal_user`. Every sign-up keeps
 * its own password and role; the code belongs to the address (it proves the mailbox). An account
 * comes into being only when one sign-up is verified, with that sign-up's own details.
 */
export class SignUpStore {
  readonly #db: Sequelize

  constructor(db: Sequelize) {
    this.#db = db
  }

  /** Records a sign-up beside the address's earlier ones, keeping the newest {@link MAX_PENDING_SIGN_UPS}. */
  async add(signUp: PendingSignUp): Promise<void> {
    await this.#db.transaction(async (transaction) => {
      await changeRows(
        this.#db,
        `INSERT INTO sign_ups (id, email, name, role, password_hash, created_at)
         VALUES (:id, :email, :name, :role, :passwordHash, :createdAt)`,
        { ...signUp },
        transaction,
      )
      await changeRows(
        this.#db,
        `DELETE FROM sign_ups WHERE email = :email AND id NOT IN (
           SELECT id FROM (
             SELECT id FROM sign_ups WHERE email = :email ORDER BY created_at DESC, id LIMIT :keep
           ) AS newest)`,
        { email: signUp.email, keep: MAX_PENDING_SIGN_UPS },
        transaction,
      )
    })
  }

  /** The address's sign-ups nobody verified yet, newest first. */
  async pending(email: string, transaction?: Transaction): Promise<PendingSignUp[]> {
    const rows = await selectRows<SignUpRow>(
      this.#db,
      'SELECT * FROM sign_ups WHERE email = :email ORDER BY created_at DESC, id LIMIT :keep',
      { email, keep: MAX_PENDING_SIGN_UPS },
      transaction,
    )
    return rows.map(toSignUp)
  }

  /** Stores the address's code, replacing an earlier one (and its spent attempts). */
  async saveCode(email: string, codeDigest: string, expiresAt: Date, now: Date): Promise<void> {
    await changeRows(
      this.#db,
      `INSERT INTO email_verifications (email, code_digest, attempts, expires_at, created_at)
       VALUES (:email, :codeDigest, 0, :expiresAt, :now)
       ON DUPLICATE KEY UPDATE code_digest = VALUES(code_digest), attempts = 0, expires_at = VALUES(expires_at),
                               created_at = VALUES(created_at)`,
      { email, codeDigest, expiresAt, now },
    )
  }

  /**
   * One attempt at verifying `email`, decided and recorded in one transaction (the code's row is
   * locked, so parallel attempts cannot share a try). The right code with the password of one of
   * the address's sign-ups turns that sign-up, and no other, into a verified account; the rest
   * of its sign-ups and the code are gone afterwards. A password of no sign-up spends a try.
   */
  async verify(email: string, proof: VerificationProof, now: Date): Promise<SignUpVerificationOutcome> {
    try {
      return await this.#db.transaction(async (transaction) => {
        const [code] = await selectRows<{ code_digest: string; attempts: number; expires_at: Date }>(
          this.#db,
          'SELECT code_digest, attempts, expires_at FROM email_verifications WHERE email = :email FOR UPDATE',
          { email },
          transaction,
        )
        if (!code) return 'none'
        const judged = judgeVerification(
          { expiresAt: code.expires_at, attempts: code.attempts },
          proof.codeMatches(code.code_digest),
          now,
        )
        const signUp =
          judged === 'verified' ? await proof.signUpWithPassword(await this.pending(email, transaction)) : undefined
        const outcome = judged === 'verified' && !signUp ? 'wrong-password' : judged
        if (outcome === 'wrong-code' || outcome === 'wrong-password') {
          await changeRows(
            this.#db,
            'UPDATE email_verifications SET attempts = attempts + 1 WHERE email = :email',
            { email },
            transaction,
          )
        }
        if (outcome !== 'verified' || !signUp) return outcome
        await changeRows(
          this.#db,
          `INSERT INTO users (id, email, name, role, password_hash, email_verified_at, password_changed_at,
                              created_at, updated_at)
           VALUES (:id, :email, :name, :role, :passwordHash, :now, :now, :now, :now)`,
          { ...signUp, now },
          transaction,
        )
        await changeRows(this.#db, 'DELETE FROM sign_ups WHERE email = :email', { email }, transaction)
        await changeRows(this.#db, 'DELETE FROM email_verifications WHERE email = :email', { email }, transaction)
        return 'verified'
      })
    } catch (error) {
      // The address got an account some other way (the demo seed): there is nothing to verify.
      if (error instanceof UniqueConstraintError) return 'none'
      throw error
    }
  }

  /** Drops sign-ups (and codes) older than `cutoff` that nobody verified. */
  async pruneOlderThan(cutoff: Date): Promise<void> {
    await changeRows(this.#db, 'DELETE FROM sign_ups WHERE created_at < :cutoff', { cutoff })
    await changeRows(this.#db, 'DELETE FROM email_verifications WHERE expires_at < :cutoff', { cutoff })
  }
}
