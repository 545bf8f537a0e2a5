import { changeRows, dateOrNull, selectRow, selectRows, sqlRows } from '@timedeal/platform'
import { type Sequelize, type Transaction, UniqueConstraintError } from 'sequelize'
import type { Order, OrderState } from '../domain/order-state.ts'

interface OrderRow {
  id: string
  buyer_id: string
  seller_id: string
  goods_id: string
  reservation_id: string
  idempotency_key: string
  quantity: number
  unit_price: number | string
  total_amount: number | string
  state: OrderState
  version: number
  payment_id: string | null
  failure_reason: string | null
  placed_at: Date
  pay_by: Date
  paid_at: Date | null
  failed_at: Date | null
  cancelled_at: Date | null
  shipped_at: Date | null
  delivered_at: Date | null
  returned_at: Date | null
  expired_at: Date | null
  state_since: Date
}

export interface OrderPage {
  readonly orders: Order[]
  /** The id to continue after, or null on the last page. */
  readonly lastId: string | null
}

/** The fields of a new order, in the order of {@link ORDER_INSERT_COLUMNS}. */
const ORDER_INSERT_FIELDS = [
  'id',
  'buyerId',
  'sellerId',
  'goodsId',
  'reservationId',
  'idempotencyKey',
  'quantity',
  'unitPrice',
  'totalAmount',
  'state',
  'version',
  'placedAt',
  'payBy',
  'stateSince',
] as const

const ORDER_INSERT_COLUMNS =
  'id, buyer_id, seller_id, goods_id, reservation_id, idempotency_key, quantity, unit_price, total_amount, state, version, placed_at, pay_by, state_since'

/** Thrown by {@link OrderStore.insert} when the buyer already placed an order under that key. */
export class DuplicateOrderError extends Error {
  override name = 'DuplicateOrderError'
}

/** Thrown when an order changed since it was read under lock, which the lock should make impossible. */
export class StaleOrderError extends Error {
  override name = 'StaleOrderError'
}

/** The `orders` table. Changes take the row lock (`SELECT … FOR UPDATE`) and check the version. */
export class OrderStore {
  readonly #db: Sequelize

  constructor(db: Sequelize) {
    this.#db = db
  }

  async insert(order: Order, idempotencyKey: string, transaction: Transaction): Promise<void> {
    try {
      await changeRows(
        this.#db,
        `INSERT INTO orders (id, buyer_id, seller_id, goods_id, reservation_id, idempotency_key, quantity, unit_price,
           total_amount, state, version, placed_at, pay_by, state_since)
         VALUES (:id, :buyerId, :sellerId, :goodsId, :reservationId, :idempotencyKey, :quantity, :unitPrice,
           :totalAmount, :state, :version, :placedAt, :payBy, :stateSince)`,
        { ...order, idempotencyKey },
        transaction,
      )
    } catch (error) {
      if (error instanceof UniqueConstraintError) throw new DuplicateOrderError('an order with this key exists')
      throw error
    }
  }

  /**
   * Inserts several new orders in one statement; DuplicateOrderError when any buyer already
   * placed an order under its key (then none is inserted).
   */
  async insertMany(entries: readonly { order: Order; idempotencyKey: string }[], transaction: Transaction) {
    if (entries.length === 0) return
    const rows = entries.map(({ order, idempotencyKey }) => {
      const columns = { ...order, idempotencyKey }
      return ORDER_INSERT_FIELDS.map((name) => columns[name])
    })
    try {
      await changeRows(
        this.#db,
        `INSERT INTO orders (${ORDER_INSERT_COLUMNS}) VALUES ${sqlRows(this.#db, rows)}`,
        undefined,
        transaction,
      )
    } catch (error) {
      if (error instanceof UniqueConstraintError)
        throw new DuplicateOrderError('an order with one of these keys exists')
      throw error
    }
  }

  /** The order, read under its row lock when `transaction` is given: the caller may then change it. */
  async find(id: string, transaction?: Transaction): Promise<Order | undefined> {
    const row = await selectRow<OrderRow>(
      this.#db,
      `SELECT * FROM orders WHERE id = :id${transaction ? ' FOR UPDATE' : ''}`,
      { id },
      transaction,
    )
    return row ? toOrder(row) : undefined
  }

  /**
   * The orders of `ids` that exist, in one read; under their row locks when `transaction` is
   * given (taken in primary key order, as any other multi-row lock here, so two callers never
   * wait on each other in a circle).
   */
  async findMany(ids: readonly string[], transaction?: Transaction): Promise<Order[]> {
    if (ids.length === 0) return []
    const rows = await selectRows<OrderRow>(
      this.#db,
      `SELECT * FROM orders WHERE id IN (:ids) ORDER BY id${transaction ? ' FOR UPDATE' : ''}`,
      { ids: [...ids] },
      transaction,
    )
    return rows.map(toOrder)
  }

  async findByIdempotencyKey(buyerId: string, idempotencyKey: string): Promise<Order | undefined> {
    const row = await selectRow<OrderRow>(
      this.#db,
      'SELECT * FROM orders WHERE buyer_id = :buyerId AND idempotency_key = :idempotencyKey',
      { buyerId, idempotencyKey },
    )
    return row ? toOrder(row) : undefined
  }

  /** Writes `next` over `previous`; the version check catches a writer that skipped the lock. */
  async update(previous: Order, next: Order, transaction: Transaction): Promise<void> {
    const changed = await changeRows(
      this.#db,
      `UPDATE orders SET state = :state, version = :version, payment_id = :paymentId, failure_reason = :failureReason,
         paid_at = :paidAt, failed_at = :failedAt, cancelled_at = :cancelledAt, shipped_at = :shippedAt,
         delivered_at = :deliveredAt, returned_at = :returnedAt, expired_at = :expiredAt, state_since = :stateSince
       WHERE id = :id AND version = :previousVersion`,
      { ...next, previousVersion: previous.version },
      transaction,
    )
    if (changed !== 1) {
      throw new StaleOrderError(`order ${previous.id} changed since version ${previous.version}`)
    }
  }

  /** Newest first, after the order `afterId` when given (ids are time-ordered). */
  async list(
    party: { buyerId: string } | { sellerId: string },
    page: { limit: number; afterId?: string | undefined },
  ): Promise<OrderPage> {
    const [column, value] = 'buyerId' in party ? ['buyer_id', party.buyerId] : ['seller_id', party.sellerId]
    const rows = await selectRows<OrderRow>(
      this.#db,
      `SELECT * FROM orders WHERE ${column} = :value${page.afterId ? ' AND id < :afterId' : ''}
       ORDER BY id DESC LIMIT :limit`,
      { value, afterId: page.afterId ?? null, limit: page.limit + 1 },
    )
    const orders = rows.slice(0, page.limit).map(toOrder)
    return { orders, lastId: rows.length > page.limit ? (orders.at(-1)?.id ?? null) : null }
  }

  /** Ids of unpaid orders whose payment deadline has passed at `now`, the earliest deadline first. */
  async idsPastPaymentDeadline(now: Date, limit: number): Promise<string[]> {
    const rows = await selectRows<{ id: string }>(
      this.#db,
      "SELECT id FROM orders WHERE state = 'PENDING_PAYMENT' AND pay_by <= :now ORDER BY pay_by LIMIT :limit",
      { now, limit },
    )
    return rows.map((row) => row.id)
  }

  /** Ids of orders that have been in `state` since before `before`, oldest first. */
  async idsInStateSince(state: OrderState, before: Date, limit: number): Promise<string[]> {
    const rows = await selectRows<{ id: string }>(
      this.#db,
      'SELECT id FROM orders WHERE state = :state AND state_since < :before ORDER BY state_since LIMIT :limit',
      { state, before, limit },
    )
    return rows.map((row) => row.id)
  }
}

function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    buyerId: row.buyer_id,
    sellerId: row.seller_id,
    goodsId: row.goods_id,
    reservationId: row.reservation_id,
    quantity: Number(row.quantity),
    unitPrice: Number(row.unit_price),
    totalAmount: Number(row.total_amount),
    state: row.state,
    version: Number(row.version),
    paymentId: row.payment_id,
    failureReason: row.failure_reason,
    placedAt: new Date(row.placed_at),
    payBy: new Date(row.pay_by),
    paidAt: dateOrNull(row.paid_at),
    failedAt: dateOrNull(row.failed_at),
    cancelledAt: dateOrNull(row.cancelled_at),
    shippedAt: dateOrNull(row.shipped_at),
    deliveredAt: dateOrNull(row.delivered_at),
    returnedAt: dateOrNull(row.returned_at),
    expiredAt: dateOrNull(row.expired_at),
    stateSince: new Date(row.state_since),
  }
}
