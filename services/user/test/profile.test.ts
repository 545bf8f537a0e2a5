import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { QueryTypes } from 'sequelize'
import {
  createTestDatabase,
  newDataKey,
  signIn,
  startUserService,
  type TestDatabase,
  type TestUserService,
  verifiedAccount,
} from './support.ts'

interface Profile {
  id: string
  email: string
  name: string
  role: string
  phone: string | null
  address: string | null
  createdAt: string
}

const rawPersonalData = async (database: TestDatabase, id: string) => {
  const [row] = await database.sequelize.query<{ phone_encrypted: string | null; address_encrypted: string | null }>(
    'SELECT phone_encrypted, address_encrypted FROM users WHERE id = ?',
    { replacements: [id], type: QueryTypes.SELECT },
  )
  assert.ok(row)
  return row
}

describe('the caller’s own profile (real MariaDB)', () => {
  const oldKey = newDataKey('old')
  const newKey = newDataKey('new')
  let database: TestDatabase
  let base: TestUserService

  before(async () => {
    database = await createTestDatabase()
    base = await startUserService(database, { DATA_KEYS: oldKey })
  })

  after(async () => {
    await base.close()
    await database.drop()
  })

  async function signedInUser(user: TestUserService) {
    const { email, password } = await verifiedAccount(user)
    return signIn(user, email, password)
  }

  test('shows the account, and edits name, phone and address', async () => {
    const user = base.newClient()
    const session = await signedInUser(user)
    const initial = (await (await user.call('GET', '/api/users/me', { token: session.accessToken })).json()) as Profile
    assert.equal(initial.id, session.user.id)
    assert.equal(initial.phone, null)
    const edited = await user.call('PATCH', '/api/users/me', {
      token: session.accessToken,
      body: { name: 'Ada Lovelace', phone: '+82 10-1234-5678', address: '12 Analytical Road, Seoul' },
    })
    assert.equal(edited.status, 200)
    const profile = (await edited.json()) as Profile
    assert.deepEqual(
      { name: profile.name, phone: profile.phone, address: profile.address },
      { name: 'Ada Lovelace', phone: '+82 10-1234-5678', address: '12 Analytical Road, Seoul' },
    )
    const cleared = await user.call('PATCH', '/api/users/me', { token: session.accessToken, body: { phone: null } })
    assert.equal(((await cleared.json()) as Profile).phone, null)
    assert.equal(
      ((await (await user.call('GET', '/api/users/me', { token: session.accessToken })).json()) as Profile).address,
      '12 Analytical Road, Seoul',
    )
  })

  test('the encrypted columns hold no plaintext', async () => {
    const user = base.newClient()
    const session = await signedInUser(user)
    await user.call('PATCH', '/api/users/me', {
      token: session.accessToken,
      body: { phone: '+82 10-9876-5432', address: '99 Secret Street, Incheon' },
    })
    const raw = await rawPersonalData(database, session.user.id)
    for (const value of [raw.phone_encrypted, raw.address_encrypted]) {
      assert.ok(value)
      assert.doesNotMatch(value, /9876|5432|Secret|Incheon/)
      assert.match(value, /^old:/, 'the key id is stored beside the value')
    }
    const [dump] = await database.sequelize.query<{ dump: string }>(
      "SELECT CONCAT_WS('|', phone_encrypted, address_encrypted) AS dump FROM users WHERE id = ?",
      { replacements: [session.user.id], type: QueryTypes.SELECT },
    )
    assert.doesNotMatch(dump?.dump ?? '', /Secret Street/)
  })

  test('after the data key is rotated, old rows stay readable and new writes use the new key', async () => {
    const user = base.newClient()
    const session = await signedInUser(user)
    await user.call('PATCH', '/api/users/me', {
      token: session.accessToken,
      body: { phone: '+82 10-1111-2222', address: '1 Old Key Avenue' },
    })
    const rotated = await startUserService(database, { DATA_KEYS: `${newKey},${oldKey}` })
    try {
      const client = rotated.newClient()
      const read = (await (await client.call('GET', '/api/users/me', { token: session.accessToken })).json()) as Profile
      assert.equal(read.phone, '+82 10-1111-2222')
      assert.equal(read.address, '1 Old Key Avenue')
      await client.call('PATCH', '/api/users/me', { token: session.accessToken, body: { phone: '+82 10-3333-4444' } })
      const raw = await rawPersonalData(database, session.user.id)
      assert.match(raw.phone_encrypted ?? '', /^new:/)
      assert.match(raw.address_encrypted ?? '', /^old:/, 'untouched values keep their key until rewritten')
      const again = (await (
        await client.call('GET', '/api/users/me', { token: session.accessToken })
      ).json()) as Profile
      assert.deepEqual([again.phone, again.address], ['+82 10-3333-4444', '1 Old Key Avenue'])
    } finally {
      await rotated.close()
    }
  })

  test('malformed edits are a 400', async () => {
    const user = base.newClient()
    const session = await signedInUser(user)
    const empty = await user.call('PATCH', '/api/users/me', { token: session.accessToken, body: {} })
    assert.equal(empty.status, 400)
    const bad = await user.call('PATCH', '/api/users/me', {
      token: session.accessToken,
      body: { phone: 'call me maybe', name: '' },
    })
    assert.equal(bad.status, 400)
    const problem = (await bad.json()) as { errors: { field: string }[] }
    assert.deepEqual(problem.errors.map((error) => error.field).sort(), ['name', 'phone'])
  })
})
