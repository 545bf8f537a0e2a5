import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import type { Logger } from '@timedeal/platform'
import { changeRows, selectRows } from '@timedeal/platform'
import { type JWK, type JWTVerifyGetKey, errors as joseErrors } from 'jose'
import type { Sequelize, Transaction } from 'sequelize'
import {
  currentSigningKey,
  type KeyPolicy,
  planRotation,
  prunableKeys,
  publishedKeys,
  rotationDue,
  type SigningKeyTimes,
} from '../domain/signing-keys.ts'
import type { DataCipher } from './data-cipher.ts'

export const SIGNING_ALGORITHM = 'EdDSA'

interface KeyRow {
  kid: string
  public_jwk: string
  private_key_encrypted: string
  activates_at: Date
  retires_at: Date | null
}

interface StoredKey extends SigningKeyTimes {
  readonly publicJwk: JWK
  readonly privateKeySealed: string
}

export interface SigningKey {
  readonly kid: string
  readonly privateKey: KeyObject
}

export interface RotationResult {
  readonly kid: string
  readonly activatesAt: Date
}

/** How long this process trusts its copy of the key table; another replica's rotation shows up within it. */
const CACHE_MS = 10_000
/** An unknown key id makes the table be read again, at most this often. */
const UNKNOWN_KID_RELOAD_MS = 1_000
const LOCK_NAME = 'timedeal.user.signing-keys'

const privateKeyContext = (kid: string) => `signing_keys.private_key:${kid}`

/**
 * Ed25519 token-signing keys in MySQL, private halves sealed with the data-encryption key.
 * Every replica reads the same table; rotations take a named lock so two replicas never rotate
 * at once, and the schedule in {@link KeyPolicy} decides what signs and what is published.
 */
export class SigningKeyStore {
  readonly #db: Sequelize
  readonly #cipher: DataCipher
  readonly #policy: KeyPolicy
  readonly #clock: () => Date
  readonly #logger: Logger
  readonly #privateKeys = new Map<string, KeyObject>()
  readonly #publicKeys = new Map<string, KeyObject>()
  #cache: { keys: StoredKey[]; loadedAt: number } | undefined

  constructor(options: { db: Sequelize; cipher: DataCipher; policy: KeyPolicy; clock: () => Date; logger: Logger }) {
    this.#db = options.db
    this.#cipher = options.cipher
    this.#policy = options.policy
    this.#clock = options.clock
    this.#logger = options.logger
  }

  /** The key to sign with now. */
  async signingKey(): Promise<SigningKey> {
    let current = currentSigningKey(await this.#keys(CACHE_MS), this.#clock())
    current ??= currentSigningKey(await this.#keys(0), this.#clock())
    if (!current) throw new Error('no signing key is active; the key schedule has not run')
    let privateKey = this.#privateKeys.get(current.kid)
    if (!privateKey) {
      const pem = this.#cipher.decrypt(current.privateKeySealed, privateKeyContext(current.kid))
      privateKey = createPrivateKey(pem)
      this.#privateKeys.set(current.kid, privateKey)
    }
    return { kid: current.kid, privateKey }
  }

  /** The public keys verifiers need now, as a JWKS document. */
  async jwks(): Promise<{ keys: JWK[] }> {
    const keys = publishedKeys(await this.#keys(CACHE_MS), this.#clock(), this.#policy)
    return { keys: keys.map((key) => key.publicJwk) }
  }

  /** Resolves a token's key id to a published public key, for verifying tokens in this process. */
  readonly verificationKey: JWTVerifyGetKey = async (header) => {
    const find = async (maxAgeMs: number) =>
      publishedKeys(await this.#keys(maxAgeMs), this.#clock(), this.#policy).find((key) => key.kid === header.kid)
    const key = (await find(CACHE_MS)) ?? (await find(UNKNOWN_KID_RELOAD_MS))
    if (!key) throw new joseErrors.JWKSNoMatchingKey()
    let publicKey = this.#publicKeys.get(key.kid)
    if (!publicKey) {
      publicKey = createPublicKey({ key: key.publicJwk as JsonWebKey, format: 'jwk' })
      this.#publicKeys.set(key.kid, publicKey)
    }
    return publicKey
  }

  /** Makes a new key now, whatever the schedule says (a compromised key, or an operator's choice). */
  async rotate(): Promise<RotationResult> {
    return this.#locked(async (transaction, keys) => this.#rotate(keys, transaction))
  }

  /** Rotates when the schedule says so (and makes the very first key); returns the new key, if any. */
  async rotateIfDue(): Promise<RotationResult | undefined> {
    if (!rotationDue(await this.#keys(0), this.#clock(), this.#policy)) return undefined
    return this.#locked(async (transaction, keys) =>
      rotationDue(keys, this.#clock(), this.#policy) ? this.#rotate(keys, transaction) : undefined,
    )
  }

  /** Deletes keys no token can carry any more. */
  async prune(): Promise<number> {
    const stale = prunableKeys(await this.#keys(0), this.#clock(), this.#policy)
    if (stale.length === 0) return 0
    const removed = await changeRows(this.#db, 'DELETE FROM signing_keys WHERE kid IN (:kids)', {
      kids: stale.map((key) => key.kid),
    })
    this.#cache = undefined
    return removed
  }

  async #rotate(keys: StoredKey[], transaction: Transaction): Promise<RotationResult> {
    const now = this.#clock()
    const plan = planRotation(keys, now, this.#policy)
    const kid = `${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(6).toString('hex')}`
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const publicJwk: JWK = { ...publicKey.export({ format: 'jwk' }), kid, alg: SIGNING_ALGORITHM, use: 'sig' }
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    if (plan.retiring.length > 0) {
      await changeRows(
        this.#db,
        'UPDATE signing_keys SET retires_at = :at WHERE kid IN (:kids) AND retires_at IS NULL',
        { at: plan.activatesAt, kids: plan.retiring },
        transaction,
      )
    }
    await changeRows(
      this.#db,
      `INSERT INTO signing_keys (kid, algorithm, public_jwk, private_key_encrypted, created_at, activates_at)
       VALUES (:kid, :algorithm, :publicJwk, :privateKey, :now, :activatesAt)`,
      {
        kid,
        algorithm: SIGNING_ALGORITHM,
        publicJwk: JSON.stringify(publicJwk),
        privateKey: this.#cipher.encrypt(pem, privateKeyContext(kid)),
        now,
        activatesAt: plan.activatesAt,
      },
      transaction,
    )
    this.#cache = undefined
    this.#logger.info({ kid, activatesAt: plan.activatesAt, retiring: plan.retiring }, 'signing key rotated')
    return { kid, activatesAt: plan.activatesAt }
  }

  /** Runs `work` holding the rotation lock, with the key table read inside the same transaction. */
  async #locked<T>(work: (transaction: Transaction, keys: StoredKey[]) => Promise<T>): Promise<T> {
    return this.#db.transaction(async (transaction) => {
      const [lock] = await selectRows<{ acquired: number | null }>(
        this.#db,
        'SELECT GET_LOCK(:name, 10) AS acquired',
        { name: LOCK_NAME },
        transaction,
      )
      if (lock?.acquired !== 1) throw new Error(`could not take the lock ${LOCK_NAME} within 10 s`)
      try {
        return await work(transaction, await this.#read(transaction))
      } finally {
        await selectRows(this.#db, 'SELECT RELEASE_LOCK(:name)', { name: LOCK_NAME }, transaction)
      }
    })
  }

  async #keys(maxAgeMs: number): Promise<StoredKey[]> {
    if (this.#cache && Date.now() - this.#cache.loadedAt < maxAgeMs) return this.#cache.keys
    const keys = await this.#read()
    this.#cache = { keys, loadedAt: Date.now() }
    return keys
  }

  async #read(transaction?: Transaction): Promise<StoredKey[]> {
    const rows = await selectRows<KeyRow>(
      this.#db,
      `SELECT kid, public_jwk, private_key_encrypted, activates_at, retires_at FROM signing_keys
       WHERE algorithm = :algorithm ORDER BY activates_at`,
      { algorithm: SIGNING_ALGORITHM },
      transaction,
    )
    return rows.map((row) => ({
      kid: row.kid,
      activatesAt: row.activates_at,
      retiresAt: row.retires_at,
      publicJwk: JSON.parse(row.public_jwk) as JWK,
      privateKeySealed: row.private_key_encrypted,
    }))
  }
}
