import assert from 'node:assert/strict'
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
})
