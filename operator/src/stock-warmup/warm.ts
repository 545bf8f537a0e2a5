/**
 * One warm-up: wait until MySQL holds every stock change still in the ledger stream, read the
 * selected goods in one consistent snapshot and write them to Redis page by page.
 */
import type { Redis } from '@timedeal/platform'
import { type StockSource, stockKeys, waitUntilLedgerApplied } from '@timedeal/stock'
import type { WarmupFailure, WarmupResult } from './decide.ts'
import { type MysqlSource, readStockSnapshot, SourceError } from './source.ts'
import type { WarmupPlan } from './spec.ts'
import { createStockWriter, TargetError, warmupChecksum } from './writer.ts'

/** Rows per read from MySQL; the writer splits them into the plan's chunks. */
const READ_PAGE = 5_000

export interface WarmOptions {
  /** How long to wait for the ledger write-behind before reading MySQL. */
  readonly ledgerTimeoutMs: number
  readonly retryBaseMs?: number
  readonly onProgress?: (progress: { readonly read: number; readonly loaded: number; readonly skipped: number }) => void
}

export interface WarmRun extends WarmupResult {
  /** Requests the warm-up sent to Redis (pipelined chunks, script loads, ledger checks). */
  readonly roundTrips: number
}

/** A warm-up that could not finish; `failure` says which side failed, for the status. */
export class WarmupError extends Error {
  override readonly name = 'WarmupError'
  readonly failure: WarmupFailure
  constructor(failure: WarmupFailure) {
    super(failure.message)
    this.failure = failure
  }
}

export async function warm(
  plan: WarmupPlan,
  clients: { readonly redis: Redis; readonly mysql: MysqlSource },
  options: WarmOptions,
): Promise<WarmRun> {
  const keys = stockKeys(plan.keyPrefix, plan.shards)
  const ledgerChecks = await ledgerApplied(clients.redis, keys.ledgers, options.ledgerTimeoutMs)
  const writer = createStockWriter(clients.redis, {
    prefix: plan.keyPrefix,
    shards: plan.shards,
    mode: plan.mode,
    chunkSize: plan.chunkSize,
    maxAttempts: plan.maxAttempts,
    ...(options.retryBaseMs === undefined ? {} : { retryBaseMs: options.retryBaseMs }),
  })
  const loaded: StockSource[] = []
  let skipped = 0
  let refused = 0
  let read = 0
  try {
    const summary = await readStockSnapshot(
      clients.mysql,
      plan.goods,
      plan.goods.kind === 'ids' ? Math.min(READ_PAGE, plan.chunkSize * 5) : READ_PAGE,
      async (rows) => {
        const outcome = await writer.write(rows)
        read += rows.length
        loaded.push(...outcome.loaded)
        skipped += outcome.skipped
        refused += outcome.refused
        options.onProgress?.({ read, loaded: loaded.length, skipped })
      },
    )
    return {
      total: summary.total,
      loaded: loaded.length,
      skipped,
      refused,
      missing: summary.missing,
      checksum: warmupChecksum(loaded),
      ...(summary.earliestOpening === undefined ? {} : { earliestOpening: summary.earliestOpening }),
      roundTrips: ledgerChecks + writer.roundTrips,
    }
  } catch (error) {
    const progress = loaded.length > 0 ? ` after ${loaded.length} goods were loaded` : ''
    if (error instanceof SourceError) throw new WarmupError({ kind: 'source', message: `${error.message}${progress}` })
    if (error instanceof TargetError) throw new WarmupError({ kind: 'redis', message: `${error.message}${progress}` })
    throw error
  }
}

/**
 * MySQL's stock_on_hand counts only ledger entries the write-behind has applied; reading it while
 * entries are still in the stream would load a count that later changes twice. Returns the
 * number of Redis requests it took (an approximation: the wait polls).
 */
async function ledgerApplied(redis: Redis, ledgers: readonly string[], timeoutMs: number): Promise<number> {
  try {
    await waitUntilLedgerApplied(redis, ledgers, { timeoutMs })
    return 1
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    if (/has not applied/.test(message)) {
      throw new WarmupError({ kind: 'source', message: `MySQL is behind the stock ledger: ${message}` })
    }
    throw new WarmupError({ kind: 'redis', message: `Redis: ${message}` })
  }
}
