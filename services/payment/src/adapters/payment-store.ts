import { withSqlTimes } from '@timedeal/platform'
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
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
    const [, affected] = await this.#db.query(
      `INSERT IGNORE INTO payments (id, order_id, buyer_id, amount, status, provider, provider_reference, failure_code,
         created_at, completed_at, failed_at, refunded_at, refund_reference)
       VALUES (:id, :orderId, :buyerId, :amount, :status, :provider, :providerReference, :failureCode,
         :createdAt, :completedAt, :failedAt, :refundedAt, :refundReference)`,
      // Typed as an INSERT so the answer is [insertId, affectedRows] (an INSERT IGNORE is not
      // recognised as one otherwise).
      { replacements: withSqlTimes({ ...payment }), transaction, type: QueryTypes.INSERT },
    )
    return Number(affected) === 1
  }

  /** The order's payment, under its row lock when `transaction` is given. */
  async findByOrder(orderId: string, transaction?: Transaction): Promise<Payment | undefined> {
    const rows = await this.#db.query<PaymentRow>(
      `SELECT * FROM payments WHERE order_id = :orderId${transaction ? ' FOR UPDATE' : ''}`,
      { replacements: { orderId }, type: QueryTypes.SELECT, transaction: transaction ?? null },
    )
    return rows[0] ? toPayment(rows[0]) : undefined
  }

  async markRefunded(payment: Payment, transaction: Transaction): Promise<void> {
    await this.#db.query(
      `UPDATE payments SET status = :status, refunded_at = :refundedAt, refund_reference = :refundReference
       WHERE id = :id`,
      { replacements: withSqlTimes({ ...payment }), transaction },
    )
  }

  /** A buyer's payments, newest first; voids are bookkeeping, not payments, and are left out. */
  async listForBuyer(buyerId: string, filter: { orderId?: string | undefined; limit: number }): Promise<Payment[]> {
    const rows = await this.#db.query<PaymentRow>(
      `SELECT * FROM payments WHERE buyer_id = :buyerId AND status <> 'VOIDED'
       ${filter.orderId ? 'AND order_id = :orderId' : ''} ORDER BY created_at DESC, id LIMIT :limit`,
      { replacements: { buyerId, orderId: filter.orderId ?? null, limit: filter.limit }, type: QueryTypes.SELECT },
    )
    return rows.map(toPayment)
  }
}

function toPayment(row: PaymentRow): Payment {
  const instant = (value: Date | null) => (value ? new Date(value) : null)
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
    completedAt: instant(row.completed_at),
    failedAt: instant(row.failed_at),
    refundedAt: instant(row.refunded_at),
    refundReference: row.refund_reference,
  }
}
