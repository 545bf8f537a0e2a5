import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DataCipher, parseDataKeys } from '../src/adapters/data-cipher.ts'
import { newDataKey } from './support.ts'

describe('personal-data encryption (AES-256-GCM)', () => {
  const k1 = newDataKey('k1')
  const k2 = newDataKey('k2')

  test('round-trips a value and names the key beside it', () => {
    const cipher = new DataCipher(parseDataKeys(k1))
    const sealed = cipher.encrypt('+82 10-1234-5678', 'users.phone:u1')
    assert.match(sealed, /^k1:[\w-]+:[\w-]+:[\w-]+$/)
    assert.ok(!sealed.includes('1234'))
    assert.equal(cipher.decrypt(sealed, 'users.phone:u1'), '+82 10-1234-5678')
  })

  test('uses a fresh IV each time, so equal values do not look equal', () => {
    const cipher = new DataCipher(parseDataKeys(k1))
    assert.notEqual(cipher.encrypt('same', 'c'), cipher.encrypt('same', 'c'))
  })

  test('refuses a value moved to another row or column, and a tampered value', () => {
    const cipher = new DataCipher(parseDataKeys(k1))
    const sealed = cipher.encrypt('Seoul', 'users.address:u1')
    assert.throws(() => cipher.decrypt(sealed, 'users.address:u2'))
    const [id, iv, ciphertext, tag] = sealed.split(':')
    const flipped = Buffer.from(ciphertext ?? '', 'base64url')
    flipped[0] = (flipped[0] ?? 0) ^ 1
    assert.throws(() => cipher.decrypt([id, iv, flipped.toString('base64url'), tag].join(':'), 'users.address:u1'))
  })

  test('after a key rotation new values use the new key and old ones stay readable', () => {
    const before = new DataCipher(parseDataKeys(k1))
    const old = before.encrypt('old value', 'c')
    const after = new DataCipher(parseDataKeys(`${k2},${k1}`))
    assert.equal(after.decrypt(old, 'c'), 'old value')
    assert.match(after.encrypt('new value', 'c'), /^k2:/)
    const withoutOldKey = new DataCipher(parseDataKeys(k2))
    assert.throws(() => withoutOldKey.decrypt(old, 'c'), /data key k1 is not configured/)
  })

  test('keyed digests match only the same value, also after a key rotation', () => {
    const before = new DataCipher(parseDataKeys(k1))
    const digest = before.digest('code', 'u1:123456')
    const after = new DataCipher(parseDataKeys(`${k2},${k1}`))
    assert.equal(after.matchesDigest('code', 'u1:123456', digest), true)
    assert.equal(after.matchesDigest('code', 'u1:123457', digest), false)
    assert.equal(after.matchesDigest('other-purpose', 'u1:123456', digest), false)
  })

  test('DATA_KEYS must name 32-byte keys with unique ids', () => {
    assert.throws(() => parseDataKeys('k1:c2hvcnQ='), /32 bytes/)
    assert.throws(() => parseDataKeys('no key'), /id:base64key/)
    assert.throws(() => parseDataKeys(`${k1},${k1}`), /unique/)
  })
})
