/**
 * Idempotent consumers: the id of each handled event is recorded in the same MySQL transaction
 * as its effect, so an event delivered again (a rebalance, a replay, a relay that published
 * twice) finds its id and changes nothing.
 */
import type { CloudEvent } from '@timedeal/contracts'
import { DataTypes, QueryTypes, type Sequelize, type Transaction, UniqueConstraintError } from 'sequelize'
import { type Migration, sqlTime } from './mysql.ts'

export const INBOX_TABLE = 'inbox'

const DAY_MS = 24 * 3600_000

/**
 * How long a handled id is remembered by default: 15 days. An id may be forgotten once no copy
 * of its event can be delivered again. The catalog's topics keep records 7 days (`retention.ms`
 * in packages/contracts), but Kafka deletes whole segments, and a segment rolls at the latest
 * after `segment.ms` (7 days by default), so a record can be read for up to 14 days after it
 * was written; a day on top covers the broker's retention check interval and clock skew.
 * (A dead letter replayed by hand is published anew and starts that count again: replay dead
 * letters while they are younger than this retention minus 14 days, or accept that consumers
 * whose inbox forgot the id apply them again.)
 */
export const DEFAULT_INBOX_RETENTION_MS = 15 * DAY_MS

export const createInboxTable = (name: string): Migration => ({
  name,
  up: async ({ queryInterface }) => {
    await queryInterface.createTable(INBOX_TABLE, {
      consumer: { type: DataTypes.STRING(64), primaryKey: true },
      event_id: { type: DataTypes.STRING(64), primaryKey: true },
      event_type: { type: DataTypes.STRING(128), allowNull: false },
      handled_at: { type: DataTypes.DATE(3), allowNull: false },
    })
  },
  down: async ({ queryInterface }) => {
    await queryInterface.dropTable(INBOX_TABLE)
  },
})

const HANDLED_AT_INDEX = 'inbox_by_handled_at'

/** The migration that lets {@link pruneInbox} find old ids without scanning the table; listed after {@link createInboxTable}. */
export const indexInboxByHandledAt = (name: string): Migration => ({
  name,
  up: async ({ queryInterface }) => {
    await queryInterface.addIndex(INBOX_TABLE, ['handled_at'], { name: HANDLED_AT_INDEX })
  },
  down: async ({ queryInterface }) => {
    await queryInterface.removeIndex(INBOX_TABLE, HANDLED_AT_INDEX)
  },
})

/**
 * Runs `effect` and records `event` as handled by `consumer`, atomically. Returns false (and
 * runs nothing) when this consumer already handled the event.
 */
export async function handleOnce(
  sequelize: Sequelize,
  consumer: string,
  event: CloudEvent,
  effect: (transaction: Transaction) => Promise<void>,
): Promise<boolean> {
  return sequelize.transaction(async (transaction) => {
    // INSERT IGNORE both claims the id and, through the primary key's lock, makes a concurrent
    // delivery of the same event wait for this one's outcome.
    const [, affected] = await sequelize.query(
      `INSERT IGNORE INTO ${INBOX_TABLE} (consumer, event_id, event_type, handled_at) VALUES (?, ?, ?, ?)`,
      { replacements: [consumer, event.id, event.type, sqlTime(new Date())], transaction, type: QueryTypes.INSERT },
    )
    if (Number(affected) === 0) return false
    await effect(transaction)
    return true
  })
}

/** How often a batch is tried again when another delivery recorded one of its ids meanwhile. */
const BATCH_CLAIM_ATTEMPTS = 3

/**
 * Records `events` as handled by `consumer` and runs `effect` with the ones it had not handled
 * before, all in one transaction: one read finds the ids handled already, one multi-row insert
 * claims the others, and the effect writes for all of them. Returns the events the effect ran
 * for (in the order given; empty, with nothing run, when every one was handled before). A
 * failure anywhere rolls the whole batch back: no id is recorded without its effect.
 */
export async function handleEachOnce<E extends CloudEvent>(
  sequelize: Sequelize,
  consumer: string,
  events: readonly E[],
  effect: (fresh: readonly E[], transaction: Transaction) => Promise<void>,
): Promise<E[]> {
  if (events.length === 0) return []
  for (let attempt = 1; ; attempt++) {
    try {
      return await sequelize.transaction((transaction) => claimAndRun(sequelize, consumer, events, effect, transaction))
    } catch (error) {
      // A concurrent delivery (a rebalance) committed one of these ids after our read: read again.
      if (!(error instanceof UniqueConstraintError) || attempt >= BATCH_CLAIM_ATTEMPTS) throw error
    }
  }
}

async function claimAndRun<E extends CloudEvent>(
  sequelize: Sequelize,
  consumer: string,
  events: readonly E[],
  effect: (fresh: readonly E[], transaction: Transaction) => Promise<void>,
  transaction: Transaction,
): Promise<E[]> {
  if (events.length === 0) return []
  const ids = [...new Set(events.map((event) => event.id))]
  const handled = await sequelize.query<{ event_id: string }>(
    `SELECT event_id FROM ${INBOX_TABLE} WHERE consumer = ? AND event_id IN (${ids.map(() => '?').join(', ')})`,
    { replacements: [consumer, ...ids], transaction, type: QueryTypes.SELECT },
  )
  const seen = new Set(handled.map((row) => row.event_id))
  // The same event twice in one batch (a relay that published twice) is handled at its first copy.
  const fresh = events.filter((event) => {
    if (seen.has(event.id)) return false
    seen.add(event.id)
    return true
  })
  if (fresh.length === 0) return []
  const at = sqlTime(new Date())
  // A plain INSERT: its key locks make a concurrent delivery of the same ids wait for this outcome,
  // and one that committed them first fails this batch with a duplicate key, to be read again.
  await sequelize.query(
    `INSERT INTO ${INBOX_TABLE} (consumer, event_id, event_type, handled_at) VALUES ${fresh.map(() => '(?, ?, ?, ?)').join(', ')}`,
    {
      replacements: fresh.flatMap((event) => [consumer, event.id, event.type, at]),
      transaction,
      type: QueryTypes.INSERT,
    },
  )
  await effect(fresh, transaction)
  return fresh
}

/**
 * A service's inbox for one consumer name: {@link handleOnce} with the database, the name and
 * the outbox relay's wake bound once, in the composition root.
 */
export interface Inbox {
  /** The name handled ids are recorded under (usually the consumer group). */
  readonly consumer: string
  /**
   * Runs `effect` and records `event` as handled, in one transaction; false (and nothing run)
   * when it was handled already. After a commit that ran the effect, `afterCommit` runs.
   */
  once(event: CloudEvent, effect: (transaction: Transaction) => Promise<void>): Promise<boolean>
  /**
   * Runs `effect` with the events not handled before and records all of them as handled, in one
   * transaction (see {@link handleEachOnce}); answers the events the effect ran for. After a
   * commit that ran the effect, `afterCommit` runs.
   */
  onceEach<E extends CloudEvent>(
    events: readonly E[],
    effect: (fresh: readonly E[], transaction: Transaction) => Promise<void>,
  ): Promise<E[]>
}

export interface InboxOptions {
  readonly sequelize: Sequelize
  readonly consumer: string
  /** Usually the outbox relay's `wake`, so events the effect wrote leave at once. */
  readonly afterCommit?: () => void
}

export function eventInbox(options: InboxOptions): Inbox {
  const { sequelize, consumer, afterCommit } = options
  return {
    consumer,
    once: (event, effect) =>
      handleOnce(sequelize, consumer, event, async (transaction) => {
        if (afterCommit) transaction.afterCommit(() => afterCommit())
        await effect(transaction)
      }),
    onceEach: (events, effect) =>
      handleEachOnce(sequelize, consumer, events, async (fresh, transaction) => {
        if (afterCommit) transaction.afterCommit(() => afterCommit())
        await effect(fresh, transaction)
      }),
  }
}

export interface PruneOptions {
  /** Ids handled before this instant are forgotten. */
  readonly olderThan: Date
  /** Rows per statement (default 1000), so no statement holds locks for long. */
  readonly batchSize?: number
  /** Stop after this many batches (default: until none is left); the next run goes on. */
  readonly maxBatches?: number
}

/**
 * Forgets ids handled before `olderThan`, one small batch at a time; returns how many went.
 * Each batch reads the ids without locking (by `handled_at`, indexed by
 * {@link indexInboxByHandledAt}) and deletes them by primary key, so only those rows are ever
 * locked, even where the index is missing and the read scans the table.
 */
export async function pruneInbox(sequelize: Sequelize, options: PruneOptions): Promise<number> {
  const batchSize = options.batchSize ?? 1_000
  const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY
  const before = sqlTime(options.olderThan)
  let pruned = 0
  for (let batch = 0; batch < maxBatches; batch++) {
    const ids = await sequelize.query<{ consumer: string; event_id: string }>(
      `SELECT consumer, event_id FROM ${INBOX_TABLE} WHERE handled_at < ? ORDER BY handled_at LIMIT ?`,
      { replacements: [before, batchSize], type: QueryTypes.SELECT },
    )
    if (ids.length === 0) break
    // BULKDELETE makes Sequelize answer with the number of rows deleted.
    const deleted: unknown = await sequelize.query(
      `DELETE FROM ${INBOX_TABLE} WHERE handled_at < ? AND (consumer, event_id) IN (${ids.map(() => '(?, ?)').join(', ')})`,
      { replacements: [before, ...ids.flatMap((id) => [id.consumer, id.event_id])], type: QueryTypes.BULKDELETE },
    )
    pruned += Number(deleted)
    if (ids.length < batchSize) break
  }
  return pruned
}

/** True when the service's database has an inbox (not every database with an outbox does). */
export async function hasInbox(sequelize: Sequelize): Promise<boolean> {
  const [row] = await sequelize.query<{ n: number }>(
    'SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?',
    { replacements: [INBOX_TABLE], type: QueryTypes.SELECT },
  )
  return Number(row?.n) > 0
}
