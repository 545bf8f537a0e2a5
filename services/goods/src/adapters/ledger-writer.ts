/**
 * The write-behind: reads every shard's ledger stream through a Redis consumer group (one group
 * per stream, all of the same name) and applies the entries to MySQL in batches, one transaction
 * per batch, acknowledging entries only after the commit.
 *
 * A crash at any point is safe. Before the commit nothing happened in MySQL and the entries
 * stay pending; after the commit but before the acknowledgement the entries are delivered again,
 * and the ledger's primary key (shard and stream entry id) turns the replay into a no-op. Entries
 * left pending by a consumer that died are taken over with XAUTOCLAIM once they have been idle
 * long enough.
 *
 * The streams are read in rounds: one non-blocking XREADGROUP per shard, all at once (a blocking
 * read can wait on one stream only on a cluster, since the shards are different slots). A round
 * that found nothing anywhere is followed by a short pause.
 */
import { randomUUID } from 'node:crypto'
import {
  changeRows,
  defineScripts,
  type Logger,
  type LuaScript,
  type Redis,
  runScript,
  sqlRows,
} from '@timedeal/platform'
import {
  compareEntryIds,
  compareLedgerEntries,
  LEDGER_GROUP,
  type LedgerEntry,
  ledgerGroups,
  parseLedgerEntry,
  type SaleTerms,
  type ShardKeys,
  type StockKeys,
  splitEntryId,
} from '@timedeal/stock'
import type { Sequelize } from 'sequelize'
import type { LedgerLag } from '../metrics.ts'

type RawEntry = [id: string, fields: string[] | null]

/** Entries read from one shard's stream. */
interface ShardBatch {
  readonly shard: ShardKeys
  readonly raw: readonly RawEntry[]
}

/**
 * Applies entries to MySQL in one transaction: each entry becomes a ledger row unless its id is
 * there already, and only the rows this call inserted move the goods' on-hand count. `terms`
 * entries bring a goods row up to the sale terms live stock took, unless the row has that version
 * or a newer one already (the usual case: the edit's own transaction wrote them).
 * Returns how many entries were new.
 */
export async function applyLedgerBatch(sequelize: Sequelize, entries: readonly LedgerEntry[]): Promise<number> {
  if (entries.length === 0) return 0
  const batchId = randomUUID()
  const appliedAt = new Date()
  // The VALUES are written in as escaped literals (sqlRows), not as replacements: expanding a few
  // hundred placeholders, each found by scanning the whole statement, cost more than the batch.
  // One order for every writer, so two writers replaying the same entries cannot deadlock.
  const values = sqlRows(
    sequelize,
    [...entries].sort(compareLedgerEntries).map((entry) => {
      const { ms, seq } = splitEntryId(entry.id)
      return [
        entry.shard,
        ms,
        seq,
        entry.goodsId,
        entry.kind,
        entry.delta,
        entry.reservationId,
        entry.userId,
        new Date(entry.at),
        batchId,
        appliedAt,
      ]
    }),
  )
  return sequelize.transaction(async (transaction) => {
    const inserted = await changeRows(
      sequelize,
      `INSERT INTO stock_ledger
         (shard, entry_ms, entry_seq, goods_id, kind, delta, reservation_id, user_id, occurred_at, batch_id, applied_at)
       VALUES ${values}
       ON DUPLICATE KEY UPDATE entry_ms = entry_ms`,
      {},
      transaction,
    )
    if (inserted > 0) {
      await changeRows(
        sequelize,
        `UPDATE goods JOIN (
           SELECT goods_id, SUM(delta) AS delta FROM stock_ledger WHERE batch_id = :batchId GROUP BY goods_id
         ) fresh ON fresh.goods_id = goods.id
         SET goods.stock_on_hand = goods.stock_on_hand + fresh.delta`,
        { batchId },
        transaction,
      )
    }
    for (const { goodsId, terms } of newestTerms(entries)) {
      await changeRows(
        sequelize,
        `UPDATE goods SET initial_stock = :initialStock, sale_starts_at = :startsAt, sale_ends_at = :endsAt,
           purchase_limit = :purchaseLimit, version = :version
         WHERE id = :goodsId AND version < :version`,
        {
          initialStock: terms.initialStock,
          startsAt: new Date(terms.startsAt),
          endsAt: new Date(terms.endsAt),
          purchaseLimit: terms.purchaseLimit,
          version: terms.version,
          goodsId,
        },
        transaction,
      )
    }
    return inserted
  })
}

/** The newest terms of each goods among the entries, in goods order (the order rows are locked in). */
function newestTerms(entries: readonly LedgerEntry[]): { goodsId: string; terms: SaleTerms }[] {
  const newest = new Map<string, SaleTerms>()
  for (const { goodsId, terms } of entries) {
    if (terms && terms.version > (newest.get(goodsId)?.version ?? -1)) newest.set(goodsId, terms)
  }
  return [...newest.entries()]
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([goodsId, terms]) => ({ goodsId, terms }))
}

export interface LedgerWriterOptions {
  /** For acknowledgements, claims and lag; shared with the rest of the process. */
  readonly redis: Redis
  /** A connection of its own: blocking reads would hold up any other command on it. */
  readonly reader: Redis
  readonly sequelize: Sequelize
  readonly keys: StockKeys
  readonly consumer: string
  readonly batchSize: number
  /** How long another consumer's entries must sit unacknowledged before they are taken over. */
  readonly claimIdleMs: number
  readonly logger: Logger
  readonly group?: string
  /** How often applied entries are trimmed from the streams. */
  readonly trimEveryMs?: number
  /** The pause after a round of reads that found no entry in any shard (default 100 ms). */
  readonly idlePollMs?: number
  /**
   * The pause after a round that found fewer entries than a batch (default 0): under a steady
   * stream of reservations, entries gather into fewer, larger batches, each with one commit.
   */
  readonly batchLingerMs?: number
  /** Told how many entries each committed batch applied (new) and acknowledged. */
  readonly onBatch?: (batch: { applied: number; acknowledged: number }) => void
}

export interface LedgerWriter {
  start(): void
  /** Lets the current batch finish, then stops reading. */
  stop(): Promise<void>
  lag(): Promise<LedgerLag>
}

export function createLedgerWriter(options: LedgerWriterOptions): LedgerWriter {
  const { redis, reader, sequelize, keys, consumer, batchSize, logger } = options
  const group = options.group ?? LEDGER_GROUP
  const claimEveryMs = Math.max(200, Math.floor(options.claimIdleMs / 2))
  const idlePollMs = options.idlePollMs ?? 100
  const batchLingerMs = options.batchLingerMs ?? 0
  const trimEveryMs = options.trimEveryMs ?? 5_000
  let stopping = false
  let running: Promise<void> | undefined
  let wake: (() => void) | undefined

  async function ensureGroup(shard: ShardKeys): Promise<void> {
    try {
      // From the first entry, not `$`: entries written before the group existed must be applied too.
      await redis.xgroup('CREATE', shard.ledger, group, '0', 'MKSTREAM')
    } catch (error) {
      if (!(error instanceof Error && error.message.includes('BUSYGROUP'))) throw error
    }
  }

  /** Applies the batches of one or more shards in one transaction, then acknowledges each. */
  async function applyAndAcknowledge(batches: readonly ShardBatch[]): Promise<void> {
    const read = batches.filter(({ raw }) => raw.length > 0)
    if (read.length === 0) return
    const entries: LedgerEntry[] = []
    for (const { shard, raw } of read) {
      for (const [id, fields] of raw) {
        const entry = parseLedgerEntry(id, fields, shard.index)
        if (entry) entries.push(entry)
        // A deleted entry has no fields left to apply; anything else unreadable is a bug worth a loud line.
        else if (fields)
          logger.error({ shard: shard.index, id, fields }, 'skipping a ledger entry this writer cannot read')
      }
    }
    const applied = await applyLedgerBatch(sequelize, entries)
    await Promise.all(read.map(({ shard, raw }) => redis.xack(shard.ledger, group, ...raw.map(([id]) => id))))
    const acknowledged = read.reduce((sum, { raw }) => sum + raw.length, 0)
    options.onBatch?.({ applied, acknowledged })
    logger.debug({ applied, acknowledged }, 'ledger batch applied')
  }

  async function read(shard: ShardKeys, from: '0' | '>'): Promise<RawEntry[]> {
    const reply = (await reader.call(
      'XREADGROUP',
      'GROUP',
      group,
      consumer,
      'COUNT',
      batchSize,
      'STREAMS',
      shard.ledger,
      from,
    )) as [string, RawEntry[]][] | null
    return reply?.[0]?.[1] ?? []
  }

  /**
   * Reads every shard once (`ownPendingFirst`: the shards whose entries this consumer read but
   * never acknowledged come first) and applies what came, gathering shards into transactions of
   * about `batchSize` entries. Returns how many entries it read.
   */
  async function readRound(ownPendingFirst: Set<number>): Promise<number> {
    const batches = await Promise.all(
      keys.shards.map(async (shard) => ({
        shard,
        raw: await read(shard, ownPendingFirst.has(shard.index) ? '0' : '>'),
      })),
    )
    let gathered: ShardBatch[] = []
    let size = 0
    for (const batch of batches) {
      if (batch.raw.length === 0) {
        ownPendingFirst.delete(batch.shard.index)
        continue
      }
      gathered.push(batch)
      size += batch.raw.length
      if (size >= batchSize) {
        await applyAndAcknowledge(gathered)
        gathered = []
        size = 0
      }
    }
    await applyAndAcknowledge(gathered)
    return batches.reduce((sum, { raw }) => sum + raw.length, 0)
  }

  async function claimAbandoned(shard: ShardKeys): Promise<void> {
    let cursor = '0-0'
    do {
      const [next, claimed] = (await redis.xautoclaim(
        shard.ledger,
        group,
        consumer,
        options.claimIdleMs,
        cursor,
        'COUNT',
        batchSize,
      )) as [string, RawEntry[], string[]?]
      if (claimed.length > 0) {
        logger.info(
          { shard: shard.index, entries: claimed.length },
          'took over ledger entries another consumer left unacknowledged',
        )
        await applyAndAcknowledge([{ shard, raw: claimed }])
      }
      cursor = next
    } while (cursor !== '0-0' && !stopping)
  }

  async function trimApplied(stream: string): Promise<void> {
    // Keeps every entry some group has not acknowledged: MINID is the oldest such id.
    let oldest: string | undefined
    for (const info of await ledgerGroups(redis, stream)) {
      let keep = String(info['last-delivered-id'] ?? '0-0')
      if (Number(info.pending) > 0) {
        const [, smallest] = (await redis.xpending(stream, String(info.name))) as [number, string | null]
        if (smallest && compareEntryIds(smallest, keep) < 0) keep = smallest
      }
      if (!oldest || compareEntryIds(keep, oldest) < 0) oldest = keep
    }
    if (oldest && oldest !== '0-0') await redis.xtrim(stream, 'MINID', oldest)
    await forgetGoneConsumers(stream)
  }

  // Every process start is a new consumer name; the names of those long gone, with nothing
  // pending, are dropped (a live one that is dropped is simply recreated by its next read).
  // The listing may be stale by the time a name is dropped: `forgetConsumer` checks again.
  async function forgetGoneConsumers(stream: string): Promise<void> {
    const idleMs = Math.max(60_000, options.claimIdleMs * 10)
    for (const name of await idleConsumers(redis, stream, group, { idleMs, except: consumer })) {
      await forgetConsumer(redis, stream, group, name)
    }
  }

  /** Waits `ms`, or less if the writer is stopped meanwhile. */
  function pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      wake = resolve
      setTimeout(resolve, ms).unref()
    })
  }

  async function loop(): Promise<void> {
    const allShards = () => new Set(keys.shards.map((shard) => shard.index))
    // After a start or a failure, first the entries this consumer read but never acknowledged.
    let ownPendingFirst = allShards()
    let groupsReady = false
    let nextClaimAt = 0
    let nextTrimAt = Date.now() + trimEveryMs
    let backoffMs = 100
    while (!stopping) {
      try {
        if (!groupsReady) {
          await Promise.all(keys.shards.map(ensureGroup))
          groupsReady = true
        }
        if (Date.now() >= nextClaimAt) {
          for (const shard of keys.shards) await claimAbandoned(shard)
          nextClaimAt = Date.now() + claimEveryMs
        }
        const read = await readRound(ownPendingFirst)
        if (Date.now() >= nextTrimAt) {
          for (const stream of keys.ledgers) await trimApplied(stream)
          nextTrimAt = Date.now() + trimEveryMs
        }
        backoffMs = 100
        if (read === 0 && !stopping) await pause(idlePollMs)
        else if (read < batchSize && batchLingerMs > 0 && !stopping) await pause(batchLingerMs)
      } catch (error) {
        if (stopping) break
        logger.error({ err: error }, 'the ledger write-behind failed; retrying')
        ownPendingFirst = allShards()
        groupsReady = false
        await pause(backoffMs)
        backoffMs = Math.min(backoffMs * 2, 5_000)
      }
    }
  }

  return {
    start() {
      if (running) return
      stopping = false
      running = loop()
      logger.info({ consumer, group, shards: keys.shards.length }, 'ledger write-behind started')
    },
    async stop() {
      stopping = true
      wake?.()
      await running
      running = undefined
    },
    lag: () => ledgerLag(redis, keys.ledgers, group),
  }
}

/** Consumers of the group with nothing pending that have not been seen for `idleMs`. */
export async function idleConsumers(
  redis: Redis,
  stream: string,
  group: string,
  options: { readonly idleMs: number; readonly except?: string },
): Promise<string[]> {
  const consumers = (await redis.xinfo('CONSUMERS', stream, group)) as unknown[][]
  const names: string[] = []
  for (const flat of consumers) {
    const fields = new Map<string, unknown>()
    for (let index = 0; index + 1 < flat.length; index += 2) fields.set(String(flat[index]), flat[index + 1])
    const name = String(fields.get('name'))
    if (name !== options.except && Number(fields.get('pending')) === 0 && Number(fields.get('idle')) > options.idleMs) {
      names.push(name)
    }
  }
  return names
}

/**
 * Drops a consumer only if it holds no pending entries, checked and done in one script.
 *
 * Why this never loses an entry: XGROUP DELCONSUMER forgets the consumer's pending entries, and
 * an entry gets into a consumer's pending list only through a read or a claim by that consumer,
 * each one command that cannot run while this script does. So when the script deletes, the list
 * is empty; a read that follows recreates the consumer with a new list. A listing made earlier
 * (as `idleConsumers` does) may be stale by now, which is why the check is repeated here.
 */
const forgetConsumerScript: LuaScript = {
  numberOfKeys: 1,
  lua: `
local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #held > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`,
}

/** Drops the consumer unless it holds pending entries; true when it was dropped. */
export async function forgetConsumer(redis: Redis, stream: string, group: string, name: string): Promise<boolean> {
  if (!('ledgerForgetConsumer' in redis)) defineScripts(redis, { ledgerForgetConsumer: forgetConsumerScript })
  return Number(await runScript(redis, 'ledgerForgetConsumer', [stream], [group, name])) === 1
}

/**
 * Entries of the streams (one, or every shard's) the group has not applied yet, and how old the
 * oldest one is.
 */
export async function ledgerLag(
  redis: Redis,
  streams: string | readonly string[],
  group: string = LEDGER_GROUP,
): Promise<LedgerLag> {
  if (typeof streams !== 'string') {
    const lags = await Promise.all(streams.map((stream) => ledgerLag(redis, stream, group)))
    return {
      entries: lags.reduce((sum, lag) => sum + lag.entries, 0),
      oldestAgeMs: Math.max(0, ...lags.map((lag) => lag.oldestAgeMs)),
    }
  }
  const stream = streams
  const info = (await ledgerGroups(redis, stream)).find((candidate) => candidate.name === group)
  const [seconds, micros] = await redis.time()
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  const ageOf = (id: string | undefined) => (id ? Math.max(0, now - splitEntryId(id).ms) : 0)
  if (!info) {
    const [first] = (await redis.xrange(stream, '-', '+', 'COUNT', 1)) as RawEntry[]
    return { entries: await redis.xlen(stream), oldestAgeMs: ageOf(first?.[0]) }
  }
  const pending = Number(info.pending ?? 0)
  const lastDelivered = String(info['last-delivered-id'] ?? '0-0')
  const undelivered =
    info.lag === null || info.lag === undefined
      ? ((await redis.xrange(stream, `(${lastDelivered}`, '+')) as RawEntry[]).length
      : Number(info.lag)
  let oldest: string | undefined
  if (pending > 0) {
    oldest = ((await redis.xpending(stream, group)) as [number, string | null])[1] ?? undefined
  } else if (undelivered > 0) {
    oldest = ((await redis.xrange(stream, `(${lastDelivered}`, '+', 'COUNT', 1)) as RawEntry[])[0]?.[0]
  }
  return { entries: pending + undelivered, oldestAgeMs: ageOf(oldest) }
}
