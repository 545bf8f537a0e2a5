import { changeRows, dateOrNull, selectRow, selectRows, sqlRows } from '@timedeal/platform'
import type { Sequelize, Transaction } from 'sequelize'
import type { Payment, PaymentStatus } from '../domain/payment.ts'

interface PaymentRow {
  id: string
  order_id: string
  buyer_id: string
  amount: number | string
  status: PaymentStatus
  provider: string
  provider_reference: string | null
  failure_code: string | null
  created_at: Date
  completed_at: Date | null
  failed_at: Date | null
  refunded_at: Date | null
  refund_reference: string | null
}

/** The `payments` table: one row per order. */
export class PaymentStore {
  readonly #db: Sequelize

  constructor(db: Sequelize) {
    this.#db = db
  }

  /** Inserts the payment unless its order has one already; true when this call inserted it. */
  async insertIfAbsent(payment: Payment, transaction: Transaction): Promise<boolean> {
    const inserted = await changeRows(
      this.#db,
      `INSERT IGNORE INTO payments (id, order_id, buyer_id, amount, status, provider, provider_reference, failure_code,
         created_at, completed_at, failed_at, refunded_at, refund_reference)
       VALUES (:id, :orderId, :buyerId, :amount, :status, :provider, :providerReference, :failureCode,
         :createdAt, :completedAt, :failedAt, :refundedAt, :refundReference)`,
      { ...payment },
      transaction,
    )
    return inserted === 1
  }

  /**
   * Inserts each payment unless its order has one already, in one statement; answers the ids of
   * the payments this call inserted (the first writer of an order's payment stands).
   */
  async insertManyIfAbsent(payments: readonly Payment[], transaction: Transaction): Promise<Set<string>> {
    if (payments.length === 0) return new Set()
    const columns = [
      'id',
      'orderId',
      'buyerId',
      'amount',
      'status',
      'provider',
      'providerReference',
      'failureCode',
      'createdAt',
      'completedAt',
      'failedAt',
      'refundedAt',
      'refundReference',
    ] as const
    const values = sqlRows(
      this.#db,
      payments.map((payment) => columns.map((column) => payment[column])),
    )
    const written = await changeRows(
      this.#db,
      `INSERT IGNORE INTO payments (id, order_id, buyer_id, amount, status, provider, provider_reference, failure_code,
         created_at, completed_at, failed_at, refunded_at, refund_reference)
       VALUES ${values}`,
      {},
      transaction,
    )
    if (written === payments.length) return new Set(payments.map((payment) => payment.id))
    // Some order had a payment already. Ids are fresh UUIDs: one that is there now was written by this statement.
    const inserted = await selectRows<{ id: string }>(
      this.#db,
      'SELECT id FROM payments WHERE id IN (:ids)',
      { ids: payments.map((payment) => payment.id) },
      transaction,
    )
    return new Set(inserted.map((row) => row.id))
  }

  /** The orders of `orderIds` that have a payment, in one read. */
  async orderIdsWithPayment(orderIds: readonly string[]): Promise<Set<string>> {
    if (orderIds.length === 0) return new Set()
    const rows = await selectRows<{ order_id: string }>(
      this.#db,
      'SELECT order_id FROM payments WHERE order_id IN (:orderIds)',
      { orderIds: [...orderIds] },
    )
    return new Set(rows.map((row) => row.order_id))
  }

  /** The order's payment, under its row lock when `transaction` is given. */
  async findByOrder(orderId: string, transaction?: Transaction): Promise<Payment | undefined> {
    const row = await selectRow<PaymentRow>(
      this.#db,
      `SELECT * FROM payments WHERE order_id = :orderId${transaction ? ' FOR UPDATE' : ''}`,
      { orderId },
      transaction,
    )
    return row ? toPayment(row) : undefined
  }

  async markRefunded(payment: Payment, transaction: Transaction): Promise<void> {
    await changeRows(
      this.#db,
      `UPDATE payments SET status = :status, refunded_at = :refundedAt, refund_reference = :refundReference
       WHERE id = :id`,
      { ...payment },
      transaction,
    )
  }

  /** A buyer's payments, newest first; voids are bookkeeping, not payments, and are left out. */
  async listForBuyer(buyerId: string, filter: { orderId?: string | undefined; limit: number }): Promise<Payment[]> {
    const rows = await selectRows<PaymentRow>(
      this.#db,
      `SELECT * FROM payments WHERE buyer_id = :buyerId AND status <> 'VOIDED'
       ${filter.orderId ? 'AND order_id = :orderId' : ''} ORDER BY created_at DESC, id LIMIT :limit`,
      { buyerId, orderId: filter.orderId ?? null, limit: filter.limit },
    )
    return rows.map(toPayment)
  }
}

function toPayment(row: PaymentRow): Payment {
  return {
    id: row.id,
    orderId: row.order_id,
    buyerId: row.buyer_id,
    amount: Number(row.amount),
    status: row.status,
    provider: row.provider,
    providerReference: row.provider_reference,
    failureCode: row.failure_code,
    createdAt: new Date(row.created_at),
    completedAt: dateOrNull(row.completed_at),
    failedAt: dateOrNull(row.failed_at),
    refundedAt: dateOrNull(row.refunded_at),
    refundReference: row.refund_reference,
  }
}
