import type { Role } from '@timedeal/platform'
import { changeRows, selectRows } from '@timedeal/platform'
import { type Sequelize, UniqueConstraintError } from 'sequelize'
import type { Account } from '../domain/accounts.ts'
import type { DataCipher } from './data-cipher.ts'

interface UserRow {
  id: string
  email: string
  name: string
  role: Role
  password_hash: string
  email_verified_at: Date | null
  phone_encrypted: string | null
  address_encrypted: string | null
  created_at: Date
}

export interface NewAccount {
  readonly id: string
  readonly email: string
  readonly name: string
  readonly role: Role
  readonly passwordHash: string
  readonly phone?: string | null
  readonly address?: string | null
}

export interface ProfileChanges {
  readonly name?: string
  readonly phone?: string | null
  readonly address?: string | null
}

/** Thrown by {@link AccountStore.create} when the address already has an account. */
export class EmailTaken extends Error {
  override name = 'EmailTaken'
}

const personal = (userId: string, field: 'phone' | 'address') => `users.${field}:${userId}`

/**
 * Accounts in `timedeal_user`, each with a verified address (sign-ups wait in `sign_ups` until
 * then). Personal data is sealed on the way in and opened on the way out, so nothing above this
 * module sees ciphertext and nothing below it sees plaintext.
 */
export class AccountStore {
  readonly #db: Sequelize
  readonly #cipher: DataCipher

  constructor(db: Sequelize, cipher: DataCipher) {
    this.#db = db
    this.#cipher = cipher
  }

  async findByEmail(email: string): Promise<Account | undefined> {
    const [row] = await selectRows<UserRow>(this.#db, 'SELECT * FROM users WHERE email = :email', { email })
    return row && this.#toAccount(row)
  }

  async findById(id: string): Promise<Account | undefined> {
    const [row] = await selectRows<UserRow>(this.#db, 'SELECT * FROM users WHERE id = :id', { id })
    return row && this.#toAccount(row)
  }

  /** An account whose address is known to be the owner's (a verified sign-up, the demo seed). */
  async create(account: NewAccount, now: Date): Promise<void> {
    try {
      await changeRows(
        this.#db,
        `INSERT INTO users (id, email, name, role, password_hash, email_verified_at, phone_encrypted, address_encrypted,
                            password_changed_at, created_at, updated_at)
         VALUES (:id, :email, :name, :role, :passwordHash, :now, :phone, :address, :now, :now, :now)`,
        {
          id: account.id,
          email: account.email,
          name: account.name,
          role: account.role,
          passwordHash: account.passwordHash,
          phone: this.#seal(account.id, 'phone', account.phone),
          address: this.#seal(account.id, 'address', account.address),
          now,
        },
      )
    } catch (error) {
      if (error instanceof UniqueConstraintError) throw new EmailTaken(account.email)
      throw error
    }
  }

  async updateProfile(id: string, changes: ProfileChanges, now: Date): Promise<void> {
    const sets: string[] = ['updated_at = :now']
    const values: Record<string, unknown> = { id, now }
    if (changes.name !== undefined) {
      sets.push('name = :name')
      values.name = changes.name
    }
    if (changes.phone !== undefined) {
      sets.push('phone_encrypted = :phone')
      values.phone = this.#seal(id, 'phone', changes.phone)
    }
    if (changes.address !== undefined) {
      sets.push('address_encrypted = :address')
      values.address = this.#seal(id, 'address', changes.address)
    }
    await changeRows(this.#db, `UPDATE users SET ${sets.join(', ')} WHERE id = :id`, values)
  }

  async changePassword(id: string, passwordHash: string, now: Date): Promise<void> {
    await changeRows(
      this.#db,
      'UPDATE users SET password_hash = :passwordHash, password_changed_at = :now, updated_at = :now WHERE id = :id',
      { id, passwordHash, now },
    )
  }

  #seal(userId: string, field: 'phone' | 'address', value: string | null | undefined): string | null {
    return value == null ? null : this.#cipher.encrypt(value, personal(userId, field))
  }

  #toAccount(row: UserRow): Account {
    return {
      id: row.id,
      email: row.email,
      name: row.name,
      role: row.role,
      passwordHash: row.password_hash,
      phone: row.phone_encrypted === null ? null : this.#cipher.decrypt(row.phone_encrypted, personal(row.id, 'phone')),
      address:
        row.address_encrypted === null
          ? null
          : this.#cipher.decrypt(row.address_encrypted, personal(row.id, 'address')),
      createdAt: row.created_at,
    }
  }
}
