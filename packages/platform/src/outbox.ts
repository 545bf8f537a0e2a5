/**
 * Transactional outbox: events are rows written in the caller's MySQL transaction, and a relay
 * publishes committed rows to Kafka. A rolled-back transaction leaves no row, so it publishes
 * nothing; a crash after commit leaves the row, so the event still goes out (at least once;
 * consumers drop repeats by event id).
 */
import { setTimeout as delay } from 'node:timers/promises'
import type { CloudEvent } from '@timedeal/contracts'
import type { Connection } from 'mysql2'
import { Counter, Gauge, type Registry } from 'prom-client'
import { DataTypes, QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { createInboxTable, DEFAULT_INBOX_RETENTION_MS, hasInbox, pruneInbox } from './inbox.ts'
import type { EventBus, EventPublisher, TopicEvents } from './kafka.ts'
import type { Logger } from './logger.ts'
import { type Migration, sqlTime } from './mysql.ts'
import { sqlRows } from './sql.ts'

export const OUTBOX_TABLE = 'outbox'

/** The migration that creates the outbox table; services list it among their own. */
export const createOutboxTable = (name: string): Migration => ({
  name,
  up: async ({ queryInterface }) => {
    await queryInterface.createTable(OUTBOX_TABLE, {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      event_id: { type: DataTypes.STRING(64), allowNull: false, unique: true },
      topic: { type: DataTypes.STRING(249), allowNull: false },
      message_key: { type: DataTypes.STRING(255), allowNull: false },
      event_type: { type: DataTypes.STRING(128), allowNull: false },
      event: { type: DataTypes.JSON, allowNull: false },
      created_at: { type: DataTypes.DATE(3), allowNull: false },
      published_at: { type: DataTypes.DATE(3), allowNull: true },
    })
    await queryInterface.addIndex(OUTBOX_TABLE, ['published_at', 'id'], { name: 'outbox_unpublished' })
  },
  down: async ({ queryInterface }) => {
    await queryInterface.dropTable(OUTBOX_TABLE)
  },
})

/**
 * The outbox and inbox migrations of a service that both publishes and consumes events, one
 * after the other, under the names its migration history already gives them.
 */
export const createEventTables = (names: { readonly outbox: string; readonly inbox: string }): Migration[] => [
  createOutboxTable(names.outbox),
  createInboxTable(names.inbox),
]

/**
 * Adds events to the outbox inside `transaction`. When the transaction commits, `afterCommit`
 * (usually the relay's `wake`) runs, so events leave within milliseconds instead of a poll.
 */
export async function appendToOutbox(
  sequelize: Sequelize,
  transaction: Transaction,
  topic: string,
  events: readonly CloudEvent[],
  afterCommit?: () => void,
): Promise<void> {
  if (events.length === 0) return
  const now = sqlTime(new Date())
  const rows = events.map((event) => [event.id, topic, event.subject, event.type, JSON.stringify(event), now])
  // Values written in, not replaced: a batch's events would be as many placeholders to scan for.
  await sequelize.query(
    `INSERT INTO ${OUTBOX_TABLE} (event_id, topic, message_key, event_type, event, created_at) VALUES ${sqlRows(sequelize, rows)}`,
    { transaction },
  )
  if (afterCommit) transaction.afterCommit(() => afterCommit())
}

export interface OutboxRelayOptions {
  readonly sequelize: Sequelize
  readonly publisher: EventPublisher
  readonly logger: Logger
  readonly metrics?: Registry
  /** The safety net: how often to look for rows when nobody woke the relay (default 1 s). */
  readonly pollIntervalMs?: number
  readonly batchSize?: number
  /**
   * How long a woken relay waits before it reads the outbox, so the commits of a burst leave in
   * one batch (default 0: at once).
   */
  readonly lingerMs?: number
  /** Published rows older than this are deleted (default one day). */
  readonly retainPublishedMs?: number
  /**
   * How long the database's inbox (if it has one) remembers handled event ids (default
   * {@link DEFAULT_INBOX_RETENTION_MS}); the leading relay forgets older ones.
   */
  readonly inboxRetentionMs?: number
  /** How often the leading relay deletes published rows and old inbox ids (default 60 s). */
  readonly maintenanceIntervalMs?: number
}

/** Inbox ids forgotten per maintenance round at most, so a backlog never holds up publishing. */
const PRUNE_BATCH = 1_000
const PRUNE_BATCHES_PER_ROUND = 10

/** The relay's named lock is gone: its connection died, so another relay may be publishing. */
export class OutboxLockLostError extends Error {
  override name = 'OutboxLockLostError'
}

interface OutboxRow {
  id: string | number
  topic: string
  event: string | CloudEvent
  /** Whether the relay's connection still holds the lock (only when read on that connection). */
  still_leading?: number | null
}

/** Where the relay's statements run: its own pinned connection while it leads, else the pool. */
interface Statements {
  select<T extends object>(sql: string, values: readonly unknown[]): Promise<T[]>
  run(sql: string, values: readonly unknown[]): Promise<void>
}

function throughPool(sequelize: Sequelize): Statements {
  return {
    select: <T extends object>(sql: string, values: readonly unknown[]) =>
      sequelize.query<T>(sql, { replacements: [...values], type: QueryTypes.SELECT }),
    run: async (sql, values) => {
      await sequelize.query(sql, { replacements: [...values] })
    },
  }
}

/** Raw statements on one mysql2 connection; each commits on its own (autocommit). */
function onConnection(connection: Connection): Statements {
  const query = <T>(sql: string, values: readonly unknown[]) =>
    new Promise<T>((resolve, reject) =>
      connection.query(sql, [...values], (error, result) => (error ? reject(error) : resolve(result as T))),
    )
  return {
    select: <T extends object>(sql: string, values: readonly unknown[]) => query<T[]>(sql, values),
    run: async (sql, values) => {
      await query(sql, values)
    },
  }
}

/**
 * A batch's rows grouped by topic, each group in id order, which keeps each aggregate's order
 * within its topic (Kafka keeps no order across topics, nor do their consumers).
 */
function byTopic(rows: readonly OutboxRow[]): TopicEvents[] {
  const groups = new Map<string, CloudEvent[]>()
  for (const row of rows) {
    const event = typeof row.event === 'string' ? (JSON.parse(row.event) as CloudEvent) : row.event
    const events = groups.get(row.topic)
    if (events) events.push(event)
    else groups.set(row.topic, [event])
  }
  return [...groups].map(([topic, events]) => ({ topic, events }))
}

/**
 * Publishes committed outbox rows in id order, which keeps each aggregate's events in order.
 * Several relays may run (one per service replica): a MySQL named lock lets one publish while
 * the others wait as standbys, so rows are never published out of order by two relays at once.
 * The lock lives on one connection; if that connection dies (a KILL, a network cut, a failover)
 * the server releases the lock and a standby takes it, so the leader checks on that very
 * connection that it still holds the lock before every publish, and stands down otherwise.
 * Rows are marked published only after Kafka acknowledged them (acks=all).
 *
 * The leader keeps that connection out of the pool and runs its own statements on it, so under
 * load it never queues for a connection behind request transactions, and the lock check rides
 * on the batch's SELECT. One cycle is one SELECT, one Kafka request for every topic in the
 * batch, and one UPDATE. Wakes that arrive during a cycle make one more cycle, not one each.
 *
 * The leader also keeps the tables small: published rows go after a day, and inbox ids (when
 * the database has an inbox) after their retention.
 */
export class OutboxRelay {
  readonly #options: OutboxRelayOptions
  readonly #lockName: string
  readonly #published: Counter | undefined
  readonly #publishedByTopic = new Map<string, { inc(value: number): void }>()
  #running = false
  #wakeUp: (() => void) | undefined
  #woken = false
  #failures = 0
  #loop: Promise<void> | undefined
  #lastMaintenance = 0
  #maintenance: Promise<void> | undefined
  #hasInbox = false

  constructor(options: OutboxRelayOptions) {
    this.#options = options
    this.#lockName = `timedeal.outbox.${options.sequelize.getDatabaseName()}`
    if (options.metrics) {
      this.#published = new Counter({
        name: 'outbox_events_published_total',
        help: 'Outbox events published to Kafka.',
        labelNames: ['topic'],
        registers: [options.metrics],
      })
      const sequelize = options.sequelize
      new Gauge({
        name: 'outbox_lag_seconds',
        help: 'Age of the oldest outbox row not yet published (0 when none).',
        registers: [options.metrics],
        async collect() {
          const [row] = await sequelize.query<{ oldest: Date | null }>(
            `SELECT MIN(created_at) AS oldest FROM ${OUTBOX_TABLE} WHERE published_at IS NULL`,
            { type: QueryTypes.SELECT },
          )
          this.set(row?.oldest ? Math.max(0, (Date.now() - new Date(row.oldest).getTime()) / 1000) : 0)
        },
      })
    }
  }

  /** Starts the relay loop; it runs until {@link stop}. */
  start(): void {
    if (this.#running) return
    this.#running = true
    this.#loop = this.#run()
  }

  /** Asks the relay to look for rows now (called after a commit). */
  wake = (): void => {
    this.#woken = true
    this.#wakeUp?.()
  }

  async stop(): Promise<void> {
    this.#running = false
    this.#wakeUp?.()
    await this.#loop
  }

  /** Publishes what is pending right now; returns how many rows went out. For tests and tools. */
  async drain(): Promise<number> {
    const pool = throughPool(this.#options.sequelize)
    let total = 0
    for (;;) {
      const sent = await this.#publishBatch(pool, false)
      total += sent
      if (sent === 0) return total
    }
  }

  async #run(): Promise<void> {
    const { logger } = this.#options
    const interval = this.#options.pollIntervalMs ?? 1_000
    while (this.#running) {
      try {
        await this.#leadWhileLocked()
      } catch (error) {
        this.#failures++
        if (error instanceof OutboxLockLostError) logger.warn({ err: error }, 'outbox relay lost its lock; standing by')
        else logger.warn({ err: error, failures: this.#failures }, 'outbox relay failed; retrying')
      }
      if (this.#running) await this.#sleep(Math.min(interval * 2 ** Math.min(this.#failures, 5), 30_000))
    }
  }

  /** Takes one pooled connection for the lock and, if the lock is free, publishes until stopped. */
  async #leadWhileLocked(): Promise<void> {
    const { connectionManager } = this.#options.sequelize
    const connection = (await connectionManager.getConnection({ type: 'write' })) as Connection
    const leader = onConnection(connection)
    let mayHoldLock = false
    try {
      const [row] = await leader.select<{ acquired: number | null }>('SELECT GET_LOCK(?, 1) AS acquired', [
        this.#lockName,
      ])
      if (row?.acquired !== 1) return
      mayHoldLock = true
      try {
        await this.#publishWhileLeading(leader)
      } finally {
        await this.#maintenance
      }
      await leader.run('SELECT RELEASE_LOCK(?)', [this.#lockName])
      mayHoldLock = false
    } finally {
      // A connection that may still hold the lock never goes back to the pool; after a lost
      // connection the server has released the lock already.
      if (mayHoldLock) await connectionManager.destroyConnection(connection).catch(() => undefined)
      else connectionManager.releaseConnection(connection)
    }
  }

  async #publishWhileLeading(leader: Statements): Promise<void> {
    const interval = this.#options.pollIntervalMs ?? 1_000
    const batchSize = this.#options.batchSize ?? 500
    const lingerMs = this.#options.lingerMs ?? 0
    while (this.#running) {
      this.#woken = false
      const sent = await this.#publishBatch(leader, true)
      this.#failures = 0
      // A full batch: more rows are likely waiting.
      if (sent >= batchSize) continue
      if (sent === 0) await this.#confirmLock(leader)
      this.#startMaintenance()
      const woken = this.#woken || (await this.#sleep(interval))
      if (woken && lingerMs > 0 && this.#running) await delay(lingerMs)
    }
  }

  /** Throws {@link OutboxLockLostError} unless the lock's own connection is alive and holds it. */
  async #confirmLock(leader: Statements): Promise<void> {
    let held: number | null | undefined
    try {
      const [row] = await leader.select<{ held: number | null }>('SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS held', [
        this.#lockName,
      ])
      held = row?.held
    } catch (error) {
      throw new OutboxLockLostError(`the connection holding ${this.#lockName} is gone`, { cause: error })
    }
    if (Number(held) !== 1) throw new OutboxLockLostError(`${this.#lockName} is no longer held by this relay`)
  }

  /**
   * Publishes one batch and returns its size. On the leader's connection the SELECT also reads
   * whether that connection still holds the lock (a failed statement there means it is gone).
   */
  async #publishBatch(statements: Statements, onLockConnection: boolean): Promise<number> {
    const { publisher } = this.#options
    const batchSize = this.#options.batchSize ?? 500
    let rows: OutboxRow[]
    try {
      rows = onLockConnection
        ? await statements.select<OutboxRow>(
            `SELECT id, topic, event, IS_USED_LOCK(?) = CONNECTION_ID() AS still_leading FROM ${OUTBOX_TABLE} WHERE published_at IS NULL ORDER BY id LIMIT ?`,
            [this.#lockName, batchSize],
          )
        : await statements.select<OutboxRow>(
            `SELECT id, topic, event FROM ${OUTBOX_TABLE} WHERE published_at IS NULL ORDER BY id LIMIT ?`,
            [batchSize],
          )
    } catch (error) {
      if (!onLockConnection) throw error
      // Whatever failed, this relay can no longer vouch for its lock: it stands down and retakes it.
      throw new OutboxLockLostError(`reading the outbox on the connection holding ${this.#lockName} failed`, {
        cause: error,
      })
    }
    if (rows.length === 0) return 0
    if (onLockConnection && Number(rows[0]?.still_leading) !== 1) {
      throw new OutboxLockLostError(`${this.#lockName} is no longer held by this relay`)
    }
    const batches = byTopic(rows)
    if (publisher.publishAll) await publisher.publishAll(batches)
    else for (const { topic, events } of batches) await publisher.publish(topic, events)
    await statements.run(`UPDATE ${OUTBOX_TABLE} SET published_at = ? WHERE id IN (?)`, [
      sqlTime(new Date()),
      rows.map((row) => row.id),
    ])
    for (const { topic, events } of batches) this.#countPublished(topic, events.length)
    return rows.length
  }

  #countPublished(topic: string, count: number): void {
    if (!this.#published) return
    let child = this.#publishedByTopic.get(topic)
    if (!child) {
      child = this.#published.labels(topic)
      this.#publishedByTopic.set(topic, child)
    }
    child.inc(count)
  }

  /**
   * Runs maintenance beside publishing when it is due: it takes pooled connections, and a pool
   * exhausted by requests must not hold up the events.
   */
  #startMaintenance(): void {
    if (this.#maintenance) return
    if (Date.now() - this.#lastMaintenance < (this.#options.maintenanceIntervalMs ?? 60_000)) return
    this.#lastMaintenance = Date.now()
    this.#maintenance = this.#maintain()
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'outbox maintenance failed; retrying later'))
      .finally(() => {
        this.#maintenance = undefined
      })
  }

  async #maintain(): Promise<void> {
    const { sequelize, logger } = this.#options
    const before = new Date(Date.now() - (this.#options.retainPublishedMs ?? 24 * 3600_000))
    await sequelize.query(
      `DELETE FROM ${OUTBOX_TABLE} WHERE published_at IS NOT NULL AND published_at < ? LIMIT 10000`,
      { replacements: [sqlTime(before)] },
    )
    this.#hasInbox ||= await hasInbox(sequelize)
    if (!this.#hasInbox) return
    const pruned = await pruneInbox(sequelize, {
      olderThan: new Date(Date.now() - (this.#options.inboxRetentionMs ?? DEFAULT_INBOX_RETENTION_MS)),
      batchSize: PRUNE_BATCH,
      maxBatches: PRUNE_BATCHES_PER_ROUND,
    })
    if (pruned > 0) logger.debug({ pruned }, 'forgot inbox ids past their retention')
    // More are left: go on at the next idle moment instead of a full interval later.
    if (pruned >= PRUNE_BATCH * PRUNE_BATCHES_PER_ROUND) this.#lastMaintenance = 0
  }

  /** Waits `ms` or until woken; resolves whether it was woken. */
  #sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), ms)
      const finish = (woken: boolean) => {
        clearTimeout(timer)
        if (this.#wakeUp === wake) this.#wakeUp = undefined
        resolve(woken)
      }
      const wake = () => finish(true)
      this.#wakeUp = wake
    })
  }
}

/** What `relaySettings()` parses to. */
export interface RelaySettings {
  readonly OUTBOX_POLL_INTERVAL_MS: number
  readonly OUTBOX_BATCH_SIZE: number
  readonly OUTBOX_LINGER_MS: number
  readonly INBOX_RETENTION_MS: number
}

export interface StartRelayOptions {
  readonly sequelize: Sequelize
  readonly bus: EventBus
  readonly logger: Logger
  readonly metrics?: Registry
  /** The service's relay settings; the options below, where given, take precedence. */
  readonly settings?: RelaySettings
  readonly pollIntervalMs?: number
  readonly batchSize?: number
  readonly lingerMs?: number
  readonly inboxRetentionMs?: number
  readonly maintenanceIntervalMs?: number
  /** Decorates the Kafka publisher; crash tests use it to stop a relay at a chosen moment. */
  readonly wrapPublisher?: (publisher: EventPublisher) => EventPublisher
}

export interface RunningRelay {
  readonly relay: OutboxRelay
  /** Finishes the batch in flight, then closes the producer. */
  stop(): Promise<void>
}

/** Starts publishing a service database's outbox to Kafka with a producer of its own. */
export async function startOutboxRelay(options: StartRelayOptions): Promise<RunningRelay> {
  const producer = await options.bus.publisher()
  const pollIntervalMs = options.pollIntervalMs ?? options.settings?.OUTBOX_POLL_INTERVAL_MS
  const batchSize = options.batchSize ?? options.settings?.OUTBOX_BATCH_SIZE
  const lingerMs = options.lingerMs ?? options.settings?.OUTBOX_LINGER_MS
  const inboxRetentionMs = options.inboxRetentionMs ?? options.settings?.INBOX_RETENTION_MS
  const relay = new OutboxRelay({
    sequelize: options.sequelize,
    publisher: options.wrapPublisher ? options.wrapPublisher(producer) : producer,
    logger: options.logger.child({ component: 'outbox-relay' }),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(pollIntervalMs ? { pollIntervalMs } : {}),
    ...(batchSize ? { batchSize } : {}),
    ...(lingerMs ? { lingerMs } : {}),
    ...(inboxRetentionMs ? { inboxRetentionMs } : {}),
    ...(options.maintenanceIntervalMs ? { maintenanceIntervalMs: options.maintenanceIntervalMs } : {}),
  })
  relay.start()
  return {
    relay,
    async stop() {
      await relay.stop()
      await producer.close()
    },
  }
}
