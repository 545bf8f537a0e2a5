import { randomBytes } from 'node:crypto'
import { hash, verify } from '@node-rs/argon2'

export interface PasswordHasher {
  hash(password: string): Promise<string>
  verify(passwordHash: string, password: string): Promise<boolean>
  /** Spends the time of a real check and fails: used when no account matches, so timing reveals nothing. */
  verifyNobody(password: string): Promise<false>
}

export interface Argon2Cost {
  /** KiB of memory per hash. */
  readonly memoryCost: number
  readonly timeCost: number
}

/** The OWASP baseline for argon2id: 19 MiB, two passes, one lane. */
export const ARGON2_BASELINE: Argon2Cost = { memoryCost: 19_456, timeCost: 2 }

/** Argon2id (the package's default algorithm) in PHC strings, so parameters travel with each hash. */
export function createArgon2Hasher(cost: Argon2Cost = ARGON2_BASELINE): PasswordHasher {
  const options = { memoryCost: cost.memoryCost, timeCost: cost.timeCost, parallelism: 1 }
  // Made up front, so even the first probe for an unknown address takes a normal check's time.
  const decoy = hash(randomBytes(24).toString('base64url'), options)
  return {
    hash: (password) => hash(password, options),
    verify: async (passwordHash, password) => {
      try {
        return await verify(passwordHash, password)
      } catch {
        return false
      }
    },
    verifyNobody: async (password) => {
      await verify(await decoy, password)
      return false
    },
  }
}
