/**
 * The write step of placing orders, by group commit: placements that reach it within a short
 * linger share one transaction (one insert of their orders, one statement settling their claims,
 * one outbox insert, one commit), so a burst of buyers costs MySQL a few commits instead of one
 * each. When a batch fails for a reason that may be one order's (a duplicate key, a lost claim,
 * a deadlock), its orders are written again one by one, each with its own outcome.
 */
import type { Logger } from '@timedeal/platform'
import type { Counter } from 'prom-client'
import { DatabaseError, type Sequelize, type Transaction } from 'sequelize'
import type { Order, OrderEvent } from '../domain/order-state.ts'
import type { PlacementClaim } from '../domain/placement.ts'
import { DuplicateOrderError, type OrderStore } from './order-store.ts'
import type { PlacementStore } from './placement-store.ts'

/** One placement ready to be written: its order, the claim it settles, the events it raises. */
export interface PlacementWrite {
  readonly order: Order
  readonly idempotencyKey: string
  readonly claim: PlacementClaim
  readonly events: readonly OrderEvent[]
  readonly traceparent?: string | undefined
}

/** Thrown for a placement whose holder lost its key before the order was written. */
export class LostClaimError extends Error {
  override name = 'LostClaimError'
}

export interface PlacementWriterOptions {
  readonly sequelize: Sequelize
  readonly store: OrderStore
  readonly placements: PlacementStore
  /** Adds the events of several placements to the outbox in one insert of the transaction. */
  readonly writeEvents: (transaction: Transaction, writes: readonly PlacementWrite[]) => Promise<void>
  /** How long the first placement of a batch waits for others; 0 writes each on its own. */
  readonly lingerMs: number
  /** Placements written in one transaction at most. */
  readonly maxBatch: number
  /** Batch transactions open at once at most; placements arriving meanwhile form the next batch. */
  readonly maxInFlight: number
  /** Counts write transactions by kind (batch, single). */
  readonly transactions?: Counter<'kind'>
  readonly logger: Logger
}

/** Writes one placement; rejects with LostClaimError or DuplicateOrderError when it is not its key's order. */
export type WritePlacement = (write: PlacementWrite) => Promise<void>

interface Waiting {
  readonly write: PlacementWrite
  resolve(): void
  reject(error: unknown): void
}

/** A batch failed in a way one of its placements may have caused; each is tried on its own. */
class BatchConflictError extends Error {
  override name = 'BatchConflictError'
}

const isDeadlock = (error: unknown) =>
  error instanceof DatabaseError && (error.parent as { code?: string }).code === 'ER_LOCK_DEADLOCK'

const couldBeOnePlacementsFault = (error: unknown) =>
  error instanceof BatchConflictError || error instanceof DuplicateOrderError || isDeadlock(error)

export function createPlacementWriter(options: PlacementWriterOptions): WritePlacement {
  const { sequelize, store, placements, writeEvents, lingerMs, maxBatch, maxInFlight, transactions } = options
  const queue: Waiting[] = []
  let inFlight = 0
  let timer: NodeJS.Timeout | undefined

  /** One placement in its own transaction, as without batches. */
  async function writeOne(write: PlacementWrite): Promise<void> {
    await sequelize.transaction(async (transaction) => {
      await store.insert(write.order, write.idempotencyKey, transaction)
      if (!(await placements.settle(write.claim, transaction))) throw new LostClaimError('the key was taken over')
      await writeEvents(transaction, [write])
    })
    transactions?.inc({ kind: 'single' })
  }

  async function writeBatch(writes: readonly PlacementWrite[]): Promise<void> {
    await sequelize.transaction(async (transaction) => {
      await store.insertMany(writes, transaction)
      const settled = await placements.settleMany(
        writes.map(({ claim }) => claim),
        transaction,
      )
      if (settled !== writes.length) throw new BatchConflictError('a placement of the batch lost its key')
      await writeEvents(transaction, writes)
    })
    transactions?.inc({ kind: 'batch' })
  }

  async function settleEach(batch: readonly Waiting[]) {
    await Promise.all(
      batch.map(async (waiting) => {
        try {
          await writeOne(waiting.write)
          waiting.resolve()
        } catch (error) {
          waiting.reject(error)
        }
      }),
    )
  }

  async function run(batch: Waiting[]) {
    try {
      if (batch.length === 1) {
        await settleEach(batch)
        return
      }
      try {
        await writeBatch(batch.map(({ write }) => write))
      } catch (error) {
        if (!couldBeOnePlacementsFault(error)) throw error
        options.logger.info({ size: batch.length, err: error }, 'a batch of placements failed; writing them one by one')
        await settleEach(batch)
        return
      }
      for (const waiting of batch) waiting.resolve()
    } catch (error) {
      // An outage or the like: every placement of the batch fails as it would on its own.
      for (const waiting of batch) waiting.reject(error)
    }
  }

  function flush() {
    if (timer) {
      clearTimeout(timer)
      timer = undefined
    }
    while (queue.length > 0 && inFlight < maxInFlight) {
      const batch = queue.splice(0, maxBatch)
      inFlight++
      void run(batch).finally(() => {
        inFlight--
        // Placements that arrived while every slot was busy go at once: they have waited already.
        if (queue.length > 0) flush()
      })
    }
  }

  return function writePlacement(write) {
    if (lingerMs === 0) return writeOne(write)
    return new Promise<void>((resolve, reject) => {
      queue.push({ write, resolve, reject })
      if (queue.length >= maxBatch) flush()
      else if (!timer && inFlight < maxInFlight) timer = setTimeout(flush, lingerMs)
    })
  }
}
