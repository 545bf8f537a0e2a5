import { allFulfilled, changeRows, createBatcher, selectRow, selectRows, sqlRows } from '@timedeal/platform'
import type { Sequelize } from 'sequelize'
import { ProviderUnavailableError } from './provider.ts'

/**
 * One idempotency key at the sandbox: what it did with the money, and from when it says so.
 * `CLOSED` is a key looked up before any charge came: nothing was taken and nothing will be.
 * `DOWN` is a key whose first request met an outage: nothing is taken, and every call about it
 * fails until `settlesAt`; then it is decided like any other.
 */
export interface SandboxCharge {
  readonly idempotencyKey: string
  readonly orderId: string | null
  readonly amount: number
  readonly outcome: 'CAPTURED' | 'DECLINED' | 'CLOSED' | 'DOWN'
  readonly reference: string | null
  readonly declineCode: string | null
  readonly requestedAt: Date
  /** Before this instant the charge is still being decided (a lookup answers `pending`). */
  readonly settlesAt: Date
}

export interface SandboxRefund {
  readonly idempotencyKey: string
  readonly chargeReference: string
  readonly amount: number
  readonly reference: string
  readonly refundedAt: Date
}

interface ChargeRow {
  idempotency_key: string
  order_id: string | null
  amount: number | string
  outcome: SandboxCharge['outcome']
  reference: string | null
  decline_code: string | null
  requested_at: Date
  settles_at: Date
}

/** The fields of a charge in the order of the columns they are written to. */
const CHARGE_FIELDS = [
  'idempotencyKey',
  'orderId',
  'amount',
  'outcome',
  'reference',
  'declineCode',
  'requestedAt',
  'settlesAt',
] as const satisfies readonly (keyof SandboxCharge)[]

/** Keys read, or charges written, in one statement at most; larger bursts take several. */
const MAX_ROWS_PER_STATEMENT = 500

/**
 * The sandbox provider's books in MySQL (`sandbox_charges`, `sandbox_refunds`). Every write
 * commits on its own, as a real provider's would, whatever payment-service's transactions do.
 * The first write of a key wins; everyone after reads it back. Charge reads and writes made at
 * once share statements: one read of all their keys, one multi-row write.
 */
export class SandboxLedger {
  readonly #db: Sequelize
  // The calls of one turn of the event loop (the charges of a polled batch) share statements.
  readonly #finds = createBatcher({
    run: async (keys: readonly string[]) => allFulfilled(await this.#query(() => this.#selectCharges(keys))),
    maxBatch: MAX_ROWS_PER_STATEMENT,
    maxInFlight: Number.POSITIVE_INFINITY,
  })
  readonly #records = createBatcher({
    run: async (charges: readonly SandboxCharge[]) =>
      allFulfilled(await this.#query(() => this.#insertCharges(charges))),
    maxBatch: MAX_ROWS_PER_STATEMENT,
    maxInFlight: Number.POSITIVE_INFINITY,
  })

  constructor(db: Sequelize) {
    this.#db = db
  }

  findCharge(idempotencyKey: string): Promise<SandboxCharge | undefined> {
    return this.#finds(idempotencyKey)
  }

  /** Records `charge` unless its key has an entry already; answers the entry that stands. */
  recordCharge(charge: SandboxCharge): Promise<SandboxCharge> {
    return this.#records(charge)
  }

  async #selectCharges(keys: readonly string[]): Promise<(SandboxCharge | undefined)[]> {
    const rows = await selectRows<ChargeRow>(
      this.#db,
      'SELECT * FROM sandbox_charges WHERE idempotency_key IN (:keys)',
      {
        keys: [...new Set(keys)],
      },
    )
    const found = new Map(rows.map((row) => [row.idempotency_key, toCharge(row)]))
    return keys.map((key) => found.get(key))
  }

  /**
   * One INSERT IGNORE for every charge; when it wrote them all, each stands as given (the
   * primary key says nobody was first). Otherwise some key had an entry: the keys are read back.
   */
  async #insertCharges(charges: readonly SandboxCharge[]): Promise<SandboxCharge[]> {
    const values = sqlRows(
      this.#db,
      charges.map((charge) => CHARGE_FIELDS.map((field) => charge[field])),
    )
    const written = await changeRows(
      this.#db,
      `INSERT IGNORE INTO sandbox_charges
         (idempotency_key, order_id, amount, outcome, reference, decline_code, requested_at, settles_at)
       VALUES ${values}`,
      {},
    )
    if (written === charges.length) return [...charges]
    const standing = await this.#selectCharges(charges.map((charge) => charge.idempotencyKey))
    return standing.map((entry, index) => {
      if (!entry) throw new ProviderUnavailableError(`the sandbox lost charge ${charges[index]?.idempotencyKey}`)
      return entry
    })
  }

  /** Puts `charge` in place of the key's ended outage, unless it was decided already; answers the entry that stands. */
  async replaceOutage(charge: SandboxCharge): Promise<SandboxCharge> {
    await this.#query(() =>
      changeRows(
        this.#db,
        `UPDATE sandbox_charges
         SET order_id = :orderId, amount = :amount, outcome = :outcome, reference = :reference,
             decline_code = :declineCode, requested_at = :requestedAt, settles_at = :settlesAt
         WHERE idempotency_key = :idempotencyKey AND outcome = 'DOWN'`,
        { ...charge },
      ),
    )
    const standing = await this.findCharge(charge.idempotencyKey)
    if (!standing) throw new ProviderUnavailableError(`the sandbox lost charge ${charge.idempotencyKey}`)
    return standing
  }

  /** Records `refund` unless its key has one already; answers the refund that stands. */
  async recordRefund(refund: SandboxRefund): Promise<SandboxRefund> {
    await this.#query(() =>
      changeRows(
        this.#db,
        `INSERT IGNORE INTO sandbox_refunds (idempotency_key, charge_reference, amount, reference, refunded_at)
         VALUES (:idempotencyKey, :chargeReference, :amount, :reference, :refundedAt)`,
        { ...refund },
      ),
    )
    const row = await this.#query(() =>
      selectRow<{ charge_reference: string; amount: number | string; reference: string; refunded_at: Date }>(
        this.#db,
        'SELECT * FROM sandbox_refunds WHERE idempotency_key = :idempotencyKey',
        { idempotencyKey: refund.idempotencyKey },
      ),
    )
    if (!row) throw new ProviderUnavailableError(`the sandbox lost refund ${refund.idempotencyKey}`)
    return {
      idempotencyKey: refund.idempotencyKey,
      chargeReference: row.charge_reference,
      amount: Number(row.amount),
      reference: row.reference,
      refundedAt: new Date(row.refunded_at),
    }
  }

  /** The sandbox's books unreachable is the sandbox being down, as a provider's outage looks to its callers. */
  async #query<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      throw new ProviderUnavailableError('the sandbox provider cannot reach its ledger', { cause: error })
    }
  }
}

function toCharge(row: ChargeRow): SandboxCharge {
  return {
    idempotencyKey: row.idempotency_key,
    orderId: row.order_id,
    amount: Number(row.amount),
    outcome: row.outcome,
    reference: row.reference,
    declineCode: row.decline_code,
    requestedAt: new Date(row.requested_at),
    settlesAt: new Date(row.settles_at),
  }
}
