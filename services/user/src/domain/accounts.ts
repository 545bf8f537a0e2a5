import type { Role } from '@timedeal/platform'

/** An account as the rest of the service sees it: personal data already decrypted. */
export interface Account {
  readonly id: string
  readonly email: string
  readonly name: string
  readonly role: Role
  readonly passwordHash: string
  readonly phone: string | null
  readonly address: string | null
  readonly createdAt: Date
}

/** What a user sees of their own account. */
export interface ProfileView {
  readonly id: string
  readonly email: string
  readonly name: string
  readonly role: Role
  readonly phone: string | null
  readonly address: string | null
  readonly createdAt: string
}

export function profileView(account: Account): ProfileView {
  return {
    id: account.id,
    email: account.email,
    name: account.name,
    role: account.role,
    phone: account.phone,
    address: account.address,
    createdAt: account.createdAt.toISOString(),
  }
}

/** Addresses are compared case-insensitively: one account per mailbox, whatever the spelling. */
export const normalizeEmail = (email: string): string => email.trim().toLowerCase()

export const PASSWORD_MIN_LENGTH = 10
export const PASSWORD_MAX_LENGTH = 128

// The first passwords any guessing attack tries; length alone lets these through.
const wellKnownPasswords = new Set([
  '1234567890',
  '0123456789',
  '1q2w3e4r5t',
  'qwertyuiop',
  'password12',
  'password123',
  'password1234',
  'iloveyou12',
  'letmein123',
  'welcome123',
  'admin12345',
  'abcdefghij',
  'passw0rd123',
  'qwerty12345',
  'timedeal123',
])

/** Why a password is refused, or undefined when it is acceptable. Lengths count characters, not bytes. */
export function passwordWeakness(password: string): string | undefined {
  const characters = [...password]
  if (characters.length < PASSWORD_MIN_LENGTH) return `use at least ${PASSWORD_MIN_LENGTH} characters`
  if (characters.length > PASSWORD_MAX_LENGTH) return `use at most ${PASSWORD_MAX_LENGTH} characters`
  if (new Set(characters).size === 1) return 'use more than one distinct character'
  if (wellKnownPasswords.has(password.toLowerCase())) return 'this password is too well known; choose another'
  return undefined
}
