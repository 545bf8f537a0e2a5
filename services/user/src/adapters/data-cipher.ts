import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

export interface DataKey {
  readonly id: string
  readonly key: Buffer
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/

/**
 * Parses `DATA_KEYS`: `id:base64key[,id:base64key...]`, each key 32 bytes, the first one
 * current. Older keys stay listed so values sealed under them remain readable.
 */
export function parseDataKeys(value: string): DataKey[] {
  const keys = value.split(',').map((entry) => {
    const [id = '', encoded = '', ...rest] = entry.trim().split(':')
    if (!KEY_ID.test(id) || rest.length > 0) {
      throw new Error('expected id:base64key[,id:base64key...] with ids of letters, digits, _ or -')
    }
    const key = Buffer.from(encoded, 'base64')
    if (key.length !== 32) throw new Error(`key ${id} must be 32 bytes (base64 of 32 random bytes)`)
    return { id, key }
  })
  if (new Set(keys.map((key) => key.id)).size !== keys.length) throw new Error('key ids must be unique')
  return keys
}

const ALGORITHM = 'aes-256-gcm'
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * Seals values at rest with AES-256-GCM as `keyId:iv:ciphertext:tag` (base64url parts). The
 * key id beside each value is what makes rotation work: new values use the current key, old
 * ones are opened with the key they name. `context` is bound as associated data, so a value
 * copied to another row or column fails to open instead of reading as someone else's.
 */
export class DataCipher {
  readonly #current: DataKey
  readonly #byId: ReadonlyMap<string, DataKey>

  constructor(keys: readonly DataKey[]) {
    const [current] = keys
    if (!current) throw new Error('at least one data key is needed')
    this.#current = current
    this.#byId = new Map(keys.map((key) => [key.id, key]))
  }

  get currentKeyId(): string {
    return this.#current.id
  }

  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv(ALGORITHM, this.#current.key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(Buffer.from(context))
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return [this.#current.id, iv, ciphertext, cipher.getAuthTag()]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join(':')
  }

  decrypt(sealed: string, context: string): string {
    const [id = '', iv = '', ciphertext = '', tag = '', ...rest] = sealed.split(':')
    if (rest.length > 0 || !tag) throw new Error('not a sealed value')
    const decipher = createDecipheriv(ALGORITHM, this.#key(id), Buffer.from(iv, 'base64url'), {
      authTagLength: TAG_BYTES,
    })
    decipher.setAAD(Buffer.from(context))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
  }

  /**
   * A keyed digest (`keyId:hmac`) for short secrets such as verification codes: a plain hash
   * of six digits is reversed by trying all million, a keyed one needs the key too.
   */
  digest(purpose: string, value: string): string {
    return `${this.#current.id}:${this.#hmac(this.#current, purpose, value).toString('base64url')}`
  }

  matchesDigest(purpose: string, value: string, stored: string): boolean {
    const [id = '', encoded = ''] = stored.split(':')
    const key = this.#byId.get(id)
    if (!key) return false
    const expected = Buffer.from(encoded, 'base64url')
    const actual = this.#hmac(key, purpose, value)
    return expected.length === actual.length && timingSafeEqual(expected, actual)
  }

  #key(id: string): Buffer {
    const key = this.#byId.get(id)
    if (!key) throw new Error(`data key ${id} is not configured; keep retired keys in DATA_KEYS`)
    return key.key
  }

  #hmac(key: DataKey, purpose: string, value: string): Buffer {
    // A separate key per purpose, so a digest never doubles as anything the cipher key protects.
    const derived = Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), `timedeal-user:${purpose}`, 32))
    return createHmac('sha256', derived).update(value).digest()
  }
}
