import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { passwordWeakness } from '../src/domain/accounts.ts'
import { judgeRefresh } from '../src/domain/sessions.ts'
import {
  currentSigningKey,
  type KeyPolicy,
  planRotation,
  prunableKeys,
  publishedKeys,
  RETIRED_KEY_MARGIN_MS,
  rotationDue,
} from '../src/domain/signing-keys.ts'
import { judgeVerification, newVerificationCode, VERIFICATION_MAX_ATTEMPTS } from '../src/domain/verification.ts'

const at = (minutes: number) => new Date(Date.UTC(2030, 0, 1) + minutes * 60_000)

describe('password policy', () => {
  test('accepts a long enough password with some variety', () => {
    assert.equal(passwordWeakness('correct horse battery'), undefined)
  })

  test('refuses short, monotonous, oversized and well-known passwords with a reason', () => {
    assert.match(passwordWeakness('short') ?? '', /at least 10/)
    assert.match(passwordWeakness('aaaaaaaaaaaa') ?? '', /more than one distinct/)
    assert.match(passwordWeakness('x'.repeat(64) + 'y'.repeat(65)) ?? '', /at most 128/)
    assert.match(passwordWeakness('Password123') ?? '', /well known/)
  })

  test('counts characters, not bytes', () => {
    assert.equal(passwordWeakness('비밀번호비밀번호비밀'), undefined)
  })
})

describe('verification codes', () => {
  test('are six digits, leading zeros kept', () => {
    assert.equal(
      newVerificationCode(() => 42),
      '000042',
    )
    assert.equal(
      newVerificationCode(() => 999_999),
      '999999',
    )
  })

  test('a matching code within its time verifies', () => {
    assert.equal(judgeVerification({ expiresAt: at(15), attempts: 0 }, true, at(1)), 'verified')
  })

  test('a wrong code counts as an attempt', () => {
    assert.equal(judgeVerification({ expiresAt: at(15), attempts: 0 }, false, at(1)), 'wrong-code')
  })

  test('an expired or used-up code fails even when it matches', () => {
    assert.equal(judgeVerification({ expiresAt: at(15), attempts: 0 }, true, at(15)), 'expired')
    assert.equal(
      judgeVerification({ expiresAt: at(15), attempts: VERIFICATION_MAX_ATTEMPTS }, true, at(1)),
      'exhausted',
    )
  })
})

describe('refresh-token families', () => {
  const live = { expiresAt: at(60), usedAt: null, familyRevokedAt: null }

  test('the latest token of a live family rotates', () => {
    assert.equal(judgeRefresh(live, at(1)), 'rotate')
  })

  test('a token already exchanged is a reuse', () => {
    assert.equal(judgeRefresh({ ...live, usedAt: at(0) }, at(1)), 'reuse-detected')
  })

  test('any token of a revoked family is refused as revoked, used or not', () => {
    assert.equal(judgeRefresh({ ...live, familyRevokedAt: at(0) }, at(1)), 'family-revoked')
    assert.equal(judgeRefresh({ ...live, usedAt: at(0), familyRevokedAt: at(0) }, at(1)), 'family-revoked')
  })

  test('an expired token does not rotate', () => {
    assert.equal(judgeRefresh(live, at(60)), 'expired')
  })
})

describe('signing-key schedule', () => {
  const policy: KeyPolicy = { lifetimeMs: 60 * 60_000, publishAheadMs: 60_000, accessTokenTtlMs: 15 * 60_000 }

  test('the very first key is due at once and signs at once', () => {
    assert.equal(rotationDue([], at(0), policy), true)
    assert.deepEqual(planRotation([], at(0), policy), { activatesAt: at(0), retiring: [] })
  })

  test('a rotation publishes the new key ahead and retires the current one when it takes over', () => {
    const keys = [{ kid: 'a', activatesAt: at(0), retiresAt: null }]
    const plan = planRotation(keys, at(10), policy)
    assert.deepEqual(plan, { activatesAt: at(11), retiring: ['a'] })
    const rotated = [
      { kid: 'a', activatesAt: at(0), retiresAt: plan.activatesAt },
      { kid: 'b', activatesAt: plan.activatesAt, retiresAt: null },
    ]
    assert.equal(currentSigningKey(rotated, at(10.5))?.kid, 'a', 'the old key signs until the new one activates')
    assert.equal(currentSigningKey(rotated, at(11))?.kid, 'b')
    assert.deepEqual(
      publishedKeys(rotated, at(10.5), policy).map((key) => key.kid),
      ['a', 'b'],
      'the new key is published before it signs',
    )
  })

  test('a retired key stays published until its last token expired, plus a margin', () => {
    const keys = [
      { kid: 'a', activatesAt: at(0), retiresAt: at(30) },
      { kid: 'b', activatesAt: at(30), retiresAt: null },
    ]
    const lastValid = at(30 + 15 + RETIRED_KEY_MARGIN_MS / 60_000)
    assert.deepEqual(
      publishedKeys(keys, new Date(lastValid.getTime() - 1), policy).map((key) => key.kid),
      ['a', 'b'],
    )
    assert.deepEqual(
      publishedKeys(keys, lastValid, policy).map((key) => key.kid),
      ['b'],
    )
    assert.deepEqual(prunableKeys(keys, lastValid, policy), [])
    assert.deepEqual(
      prunableKeys(keys, at(30 + 15 + 5 + 24 * 60), policy).map((key) => key.kid),
      ['a'],
    )
  })

  test('a scheduled rotation waits for the lifetime and never stacks on a pending key', () => {
    const keys = [{ kid: 'a', activatesAt: at(0), retiresAt: null }]
    assert.equal(rotationDue(keys, at(59), policy), false)
    assert.equal(rotationDue(keys, at(60), policy), true)
    const pending = [
      { kid: 'a', activatesAt: at(0), retiresAt: at(61) },
      { kid: 'b', activatesAt: at(61), retiresAt: null },
    ]
    assert.equal(rotationDue(pending, at(60.5), policy), false)
  })
})
