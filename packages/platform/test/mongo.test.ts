import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Connection, Schema } from 'mongoose'
import { createMongo, pingMongo } from '../src/mongo.ts'
import { testLogger, testSettings, uniqueName } from './support.ts'

interface Note {
  roomId: string
  body: string
  sentAt: Date
}

describe('MongoDB wire protocol through mongoose (real FerretDB)', () => {
  let connection: Connection
  const collection = uniqueName('notes')

  before(async () => {
    connection = await createMongo({
      url: testSettings.MONGO_URL,
      database: testSettings.MONGO_DATABASE,
      logger: testLogger,
    })
  })

  after(async () => {
    await connection.dropCollection(collection).catch(() => undefined)
    await connection.close()
  })

  test('answers a ping', async () => {
    await pingMongo(connection)
  })

  test('stores a document with a real Date and queries it by date range', async () => {
    const Notes = connection.model<Note>(
      collection,
      new Schema<Note>({
        roomId: { type: String, required: true },
        body: String,
        sentAt: { type: Date, required: true },
      }),
      collection,
    )
    const base = new Date('2026-11-26T09:00:00.000Z')
    await Notes.create([
      { roomId: 'room-1', body: 'first', sentAt: base },
      { roomId: 'room-1', body: 'second', sentAt: new Date(base.getTime() + 60_000) },
      { roomId: 'room-2', body: 'elsewhere', sentAt: new Date(base.getTime() + 120_000) },
    ])

    const later = await Notes.find({ roomId: 'room-1', sentAt: { $gt: base } }).lean()
    assert.equal(later.length, 1)
    assert.equal(later[0]?.body, 'second')
    assert.ok(later[0]?.sentAt instanceof Date)
    assert.equal(later[0]?.sentAt.toISOString(), '2026-11-26T09:01:00.000Z')

    // Stored as a BSON date, not a string: $type matches it on the server side.
    const raw = connection.db?.collection(collection)
    assert.ok(raw)
    assert.equal(await raw.countDocuments({ sentAt: { $type: 'date' } }), 3)
    assert.equal(await raw.countDocuments({ sentAt: { $type: 'string' } }), 0)
  })
})
