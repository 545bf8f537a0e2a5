import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type CloudEvent, createEvent, topics } from '@timedeal/contracts'
import { QueryTypes, type Sequelize } from 'sequelize'
import {
  createInboxTable,
  DEFAULT_INBOX_RETENTION_MS,
  handleEachOnce,
  handleOnce,
  INBOX_TABLE,
  indexInboxByHandledAt,
  pruneInbox,
} from '../src/inbox.ts'
import type { EventPublisher } from '../src/kafka.ts'
import { sqlTime } from '../src/mysql.ts'
import { createOutboxTable, OutboxRelay } from '../src/outbox.ts'
import { createTestDatabase, eventually, type TestDatabase, testLogger, uniqueName } from './support.ts'

const DAY = 24 * 3600_000

const refund = (orderId: string): CloudEvent =>
  createEvent('paymentRefunded', {
    source: '/test',
    subject: orderId,
    data: { paymentId: `p-${orderId}`, orderId, amount: 500, refundedAt: new Date().toISOString() },
  })

// Nothing is published in these tests; the relay only keeps the tables.
const idlePublisher: EventPublisher = { publish: async () => [], close: async () => undefined }

describe('inbox retention (real MariaDB)', () => {
  let database: TestDatabase
  let sequelize: Sequelize

  before(async () => {
    database = await createTestDatabase('inbox', [
      createOutboxTable('0001-outbox'),
      createInboxTable('0002-inbox'),
      indexInboxByHandledAt('0003-inbox-by-handled-at'),
    ])
    sequelize = database.sequelize
  })

  after(async () => {
    await database.drop()
  })

  /** Records `count` handled ids of `consumer` as handled `ageMs` ago. */
  async function handledLongAgo(consumer: string, count: number, ageMs: number): Promise<void> {
    const at = sqlTime(new Date(Date.now() - ageMs))
    for (let start = 0; start < count; start += 500) {
      const rows = Array.from({ length: Math.min(500, count - start) }, (_, index) => [
        consumer,
        `${consumer}-${start + index}`,
        'timedeal.payment.refunded.v1',
        at,
      ])
      await sequelize.query(
        `INSERT INTO ${INBOX_TABLE} (consumer, event_id, event_type, handled_at) VALUES ${rows.map(() => '(?, ?, ?, ?)').join(', ')}`,
        { replacements: rows.flat() },
      )
    }
  }

  const countOf = async (consumer: string) =>
    Number(
      (
        await sequelize.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${INBOX_TABLE} WHERE consumer = ?`, {
          replacements: [consumer],
          type: QueryTypes.SELECT,
        })
      )[0]?.n,
    )

  test('forgets handled ids past the retention, in batches, and keeps the newer ones so their redeliveries still change nothing', async () => {
    const consumer = uniqueName('payments')
    await handledLongAgo(consumer, 2_345, 20 * DAY)
    const recent = [1, 2, 3].map(() => refund(uniqueName('order')))
    for (const event of recent) assert.equal(await handleOnce(sequelize, consumer, event, async () => undefined), true)

    const pruned = await pruneInbox(sequelize, { olderThan: new Date(Date.now() - 14 * DAY), batchSize: 1_000 })
    assert.ok(pruned >= 2_345, `pruned ${pruned}`)
    assert.equal(await countOf(consumer), recent.length)
    for (const event of recent) assert.equal(await handleOnce(sequelize, consumer, event, async () => undefined), false)
    assert.equal(await pruneInbox(sequelize, { olderThan: new Date(Date.now() - 14 * DAY) }), 0)
  })

  test('the outbox relay prunes the inbox of its database on its own, while it leads', async () => {
    const consumer = uniqueName('orders')
    await handledLongAgo(consumer, 1_200, 3 * DAY)
    const kept = refund(uniqueName('order'))
    await handleOnce(sequelize, consumer, kept, async () => undefined)
    const relay = new OutboxRelay({
      sequelize,
      publisher: idlePublisher,
      logger: testLogger,
      pollIntervalMs: 100,
      maintenanceIntervalMs: 100,
      inboxRetentionMs: 2 * DAY,
    })
    relay.start()
    try {
      await eventually(async () => ((await countOf(consumer)) === 1 ? true : undefined), 15_000, 'the old ids pruned')
    } finally {
      await relay.stop()
    }
    assert.equal(await handleOnce(sequelize, consumer, kept, async () => undefined), false)
  })

  test('two deliveries of overlapping batches at once (a rebalance) apply each event once, and a batch with a known id runs only the others', async () => {
    const consumer = uniqueName('overlap')
    const table = uniqueName('effects')
    await sequelize.query(`CREATE TABLE ${table} (event_id VARCHAR(64) NOT NULL)`)
    const [a, b, c, d] = [1, 2, 3, 4].map(() => refund(uniqueName('order'))) as [
      CloudEvent,
      CloudEvent,
      CloudEvent,
      CloudEvent,
    ]
    const apply = (events: readonly CloudEvent[]) =>
      handleEachOnce(sequelize, consumer, events, async (fresh, transaction) => {
        await sequelize.query(`INSERT INTO ${table} (event_id) VALUES ${fresh.map(() => '(?)').join(', ')}`, {
          replacements: fresh.map((event) => event.id),
          transaction,
        })
        // Holds the claimed ids a while, so the other batch meets them uncommitted.
        await new Promise((resolve) => setTimeout(resolve, 200))
      })
    const [first, second] = await Promise.all([apply([a, b, c]), apply([b, c, d])])
    const ran = [...first, ...second].map((event) => event.id).sort()
    assert.deepEqual(ran, [a, b, c, d].map((event) => event.id).sort())
    assert.deepEqual(await apply([a, d]), [])
    const applied = await sequelize.query<{ event_id: string; n: number }>(
      `SELECT event_id, COUNT(*) AS n FROM ${table} GROUP BY event_id`,
      { type: QueryTypes.SELECT },
    )
    assert.equal(applied.length, 4)
    assert.ok(
      applied.every((row) => Number(row.n) === 1),
      JSON.stringify(applied),
    )
    assert.equal(await countOf(consumer), 4)
  })

  test('by default an id is kept longer than any record of a topic can still be read (retention plus a segment)', () => {
    // Kafka deletes whole segments: a record can be read until the newest record of its segment
    // is older than retention.ms, and a segment rolls at the latest after segment.ms (7 days).
    const segmentMs = 7 * DAY
    for (const topic of topics) {
      const retention = Number(topic.config['retention.ms'] ?? 7 * DAY)
      const segment = Number(topic.config['segment.ms'] ?? segmentMs)
      assert.ok(DEFAULT_INBOX_RETENTION_MS > retention + segment, `${topic.name} outlives the inbox`)
    }
  })
})
