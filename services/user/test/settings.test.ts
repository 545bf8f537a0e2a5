import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { loadSettings } from '@timedeal/platform'
import { settingsSchema } from '../src/settings.ts'

describe('user-service settings', () => {
  test('work out of the box for make dev: mail sink, a development data key, 15-minute access tokens', () => {
    const settings = loadSettings(settingsSchema, {})
    assert.equal(settings.MAILER, 'sink')
    assert.equal(settings.DATA_KEYS.length, 1)
    assert.equal(settings.ACCESS_TOKEN_TTL_SECONDS, 900)
    assert.equal(settings.REFRESH_TOKEN_TTL_SECONDS, 14 * 24 * 3600)
  })

  test('SMTP mail needs SMTP_URL, and the message names it', () => {
    assert.throws(() => loadSettings(settingsSchema, { MAILER: 'smtp' }), /invalid setting SMTP_URL.*MAILER=smtp/)
    const settings = loadSettings(settingsSchema, { MAILER: 'smtp', SMTP_URL: 'smtps://u:p@mail.example.com' })
    assert.equal(settings.SMTP_URL, 'smtps://u:p@mail.example.com')
  })

  test('DATA_KEYS must be id:base64 pairs of 32-byte keys', () => {
    assert.throws(
      () => loadSettings(settingsSchema, { DATA_KEYS: 'k1:dG9vIHNob3J0' }),
      /invalid setting DATA_KEYS.*32 bytes/,
    )
  })

  describe('in production (TIMEDEAL_ENV=production)', () => {
    const own = {
      TIMEDEAL_ENV: 'production',
      INTERNAL_API_SECRET: 'a-production-secret-0123456789',
      MYSQL_PASSWORD: 'a-production-password',
      DATA_KEYS: `prod1:${randomBytes(32).toString('base64')}`,
      MAILER: 'smtp',
      SMTP_URL: 'smtps://u:p@mail.example.com',
    }
    const refusal = (key: string) => (error: Error) => {
      assert.match(error.message, new RegExp(`^invalid setting ${key}\\b.*TIMEDEAL_ENV=production`))
      assert.doesNotMatch(error.message, /\n/)
      return true
    }

    test('starts with values of its own', () => {
      const settings = loadSettings(settingsSchema, own)
      assert.equal(settings.TIMEDEAL_ENV, 'production')
      assert.equal(settings.MAILER, 'smtp')
    })

    for (const key of ['INTERNAL_API_SECRET', 'MYSQL_PASSWORD', 'DATA_KEYS', 'MAILER'] as const) {
      test(`refuses to start without ${key}: its default is for development only`, () => {
        const { [key]: _left, ...rest } = own
        assert.throws(() => loadSettings(settingsSchema, rest), refusal(key))
      })
    }

    test('refuses the development data key and the mail sink even when they are set explicitly', () => {
      const developmentKey = loadSettings(settingsSchema, {}).DATA_KEYS
      assert.throws(
        () => loadSettings(settingsSchema, { ...own, DATA_KEYS: 'dev1:dGltZWRlYWwtZGV2ZWxvcG1lbnQta2V5LTMyYnl0ZXM=' }),
        refusal('DATA_KEYS'),
      )
      assert.equal(developmentKey[0]?.id, 'dev1')
      assert.throws(() => loadSettings(settingsSchema, { ...own, MAILER: 'sink' }), refusal('MAILER'))
    })
  })
})
