/**
 * The write step of placing orders, by group commit: placements that reach it within a short
 * linger share one transaction (one insert of their orders, one statement settling their claims,
 * one outbox insert, one commit), so a burst of buyers costs MySQL a few commits instead of one
 * each. When a batch fails for a reason that may be one order's (a duplicate key, a lost claim,
 * a deadlock), its orders are written again one by one, each with its own outcome.
 */
import { allFulfilled, createBatcher, type Logger } from '@timedeal/platform'
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

  /** Each placement's outcome; a failure that is not one placement's (an outage) fails them all. */
  async function writeAll(writes: readonly PlacementWrite[]): Promise<PromiseSettledResult<void>[]> {
    if (writes.length > 1) {
      try {
        await writeBatch(writes)
        return allFulfilled(writes.map(() => undefined))
      } catch (error) {
        if (!couldBeOnePlacementsFault(error)) throw error
        options.logger.info(
          { size: writes.length, err: error },
          'a batch of placements failed; writing them one by one',
        )
      }
    }
    return Promise.allSettled(writes.map(writeOne))
  }

  if (lingerMs === 0) return writeOne
  return createBatcher({ run: writeAll, maxBatch, lingerMs, maxInFlight })
}
