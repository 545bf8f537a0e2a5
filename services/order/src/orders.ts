/**
 * What order-service does with orders: placement (reserve, then write the order and its event
 * in one transaction), reads, and every state change, each applied through the state machine
 * under the order's row lock with its events written to the outbox in the same transaction.
 */
import { type CloudEvent, createEvent, TOPIC_ORDERS } from '@timedeal/contracts'
import { appendToOutbox, type Logger, notFound, Problem, unprocessable } from '@timedeal/platform'
import { Counter, type Registry } from 'prom-client'
import type { Sequelize, Transaction } from 'sequelize'
import type { CallContext, GoodsClient } from './adapters/goods-client.ts'
import { DuplicateOrderError, type OrderPage, type OrderStore } from './adapters/order-store.ts'
import { newOrderId, newReservationId } from './domain/ids.ts'
import {
  type Order,
  type OrderCommand,
  type OrderEvent,
  type OrderStateError,
  placeOrder,
  transition,
} from './domain/order-state.ts'

export const ORDER_EVENT_SOURCE = '/order-service'

export interface PlaceOrderRequest {
  readonly buyerId: string
  readonly goodsId: string
  readonly quantity: number
  readonly idempotencyKey: string
  readonly traceparent?: string | undefined
  /** Headers for the calls to goods-service made on the buyer's behalf. */
  readonly context?: CallContext
}

export interface Placement {
  readonly order: Order
  /** False when the Idempotency-Key had already placed this order: nothing new happened. */
  readonly created: boolean
}

export interface ApplyOptions {
  readonly traceparent?: string | undefined
  /** Checked on the locked order before anything changes: throws to refuse (e.g. not the owner). */
  readonly authorize?: (order: Order) => void
}

/** What a command driven by an event came to. */
export type EventOutcome = 'applied' | 'refused' | 'unknown-order'

export interface Orders {
  place(request: PlaceOrderRequest): Promise<Placement>
  find(id: string): Promise<Order | undefined>
  list(party: { buyerId: string } | { sellerId: string }, page: { limit: number; afterId?: string }): Promise<OrderPage>
  /** Applies a command asked for over HTTP; an illegal one is a 409 (or 422) problem. */
  apply(orderId: string, command: OrderCommand, options?: ApplyOptions): Promise<Order>
  /**
   * Applies a command caused by an event, inside the caller's transaction (the inbox's). An
   * illegal one is not an error: the event came too late for this order, and is recorded as such.
   */
  applyFromEvent(
    transaction: Transaction,
    orderId: string,
    command: OrderCommand,
    traceparent?: string,
  ): Promise<EventOutcome>
  /** Applies `command` to the orders the scheduler picked; ones that moved on meanwhile are skipped. */
  applyToEach(orderIds: readonly string[], command: () => OrderCommand): Promise<number>
}

export interface OrdersDeps {
  readonly sequelize: Sequelize
  readonly store: OrderStore
  readonly goods: GoodsClient
  readonly logger: Logger
  readonly metrics: Registry
  /** Runs after each commit that wrote events: wakes the outbox relay. */
  readonly afterCommit?: () => void
  readonly clock?: () => Date
}

export function createOrders(deps: OrdersDeps): Orders {
  const { sequelize, store, goods, logger } = deps
  const clock = deps.clock ?? (() => new Date())
  const placed = new Counter({
    name: 'orders_placed_total',
    help: 'Order placements, by outcome (created, replayed, refused, failed).',
    labelNames: ['outcome'],
    registers: [deps.metrics],
  })
  const transitions = new Counter({
    name: 'order_transitions_total',
    help: 'State machine commands applied to orders, by command and outcome.',
    labelNames: ['command', 'outcome'],
    registers: [deps.metrics],
  })

  const writeEvents = (transaction: Transaction, events: readonly OrderEvent[], traceparent?: string) =>
    appendToOutbox(sequelize, transaction, TOPIC_ORDERS, toCloudEvents(events, traceparent), deps.afterCommit)

  async function change(
    transaction: Transaction,
    order: Order,
    command: OrderCommand,
    traceparent?: string,
  ): Promise<Order | OrderStateError> {
    const result = transition(order, command)
    if (!result.ok) {
      transitions.inc({ command: command.type, outcome: 'refused' })
      return result.error
    }
    await store.update(order, result.order, transaction)
    await writeEvents(transaction, result.events, traceparent)
    transitions.inc({ command: command.type, outcome: 'applied' })
    return result.order
  }

  /** The earlier placement under the same key, if it asked for the same thing. */
  async function replayOf(request: PlaceOrderRequest): Promise<Order | undefined> {
    const existing = await store.findByIdempotencyKey(request.buyerId, request.idempotencyKey)
    if (!existing) return undefined
    if (existing.goodsId !== request.goodsId || existing.quantity !== request.quantity) {
      throw unprocessable(
        'IDEMPOTENCY_KEY_REUSED',
        'this Idempotency-Key already placed an order for other goods or another quantity',
      )
    }
    return existing
  }

  async function releaseQuietly(reservationId: string, reason: string, context?: CallContext) {
    try {
      await goods.release(reservationId, reason, context)
    } catch (error) {
      // goods-service releases unconfirmed reservations itself when their hold runs out.
      logger.warn({ err: error, reservationId }, 'could not release a reservation; its hold will expire')
    }
  }

  return {
    async place(request) {
      const earlier = await replayOf(request)
      if (earlier) {
        placed.inc({ outcome: 'replayed' })
        return { order: earlier, created: false }
      }
      const item = await goods.goods(request.goodsId, request.context)
      if (!item) throw notFound('GOODS_NOT_FOUND', `no goods with id ${request.goodsId}`)

      const reservationId = newReservationId()
      const reservation = {
        reservationId,
        goodsId: request.goodsId,
        userId: request.buyerId,
        quantity: request.quantity,
      }
      try {
        await goods.reserve(reservation, request.context)
      } catch (error) {
        if (error instanceof Problem && error.status === 503) {
          // It may have been taken before the answer was lost.
          await releaseQuietly(reservationId, 'order-not-placed', request.context)
        } else {
          // A twin request with the same key may hold the units this one was refused.
          const twin = await replayOf(request)
          if (twin) return { order: twin, created: false }
        }
        placed.inc({ outcome: 'refused' })
        throw error
      }

      const now = clock()
      const { order, events } = placeOrder({
        id: newOrderId(now.getTime()),
        buyerId: request.buyerId,
        sellerId: item.sellerId,
        goodsId: request.goodsId,
        reservationId,
        quantity: request.quantity,
        unitPrice: item.price,
        at: now,
      })
      try {
        await sequelize.transaction(async (transaction) => {
          await store.insert(order, request.idempotencyKey, transaction)
          await writeEvents(transaction, events, request.traceparent)
        })
      } catch (error) {
        await releaseQuietly(reservationId, 'order-not-placed', request.context)
        if (error instanceof DuplicateOrderError) {
          const twin = await replayOf(request)
          if (twin) {
            placed.inc({ outcome: 'replayed' })
            return { order: twin, created: false }
          }
        }
        placed.inc({ outcome: 'failed' })
        throw error
      }
      placed.inc({ outcome: 'created' })
      return { order, created: true }
    },

    find: (id) => store.find(id),

    list: (party, page) => store.list(party, page),

    async apply(orderId, command, options = {}) {
      const outcome = await sequelize.transaction(async (transaction) => {
        const order = await store.find(orderId, transaction)
        if (!order) throw orderNotFound(orderId)
        options.authorize?.(order)
        return change(transaction, order, command, options.traceparent)
      })
      if ('code' in outcome) throw problemOf(outcome)
      return outcome
    },

    async applyFromEvent(transaction, orderId, command, traceparent) {
      const order = await store.find(orderId, transaction)
      if (!order) return 'unknown-order'
      const outcome = await change(transaction, order, command, traceparent)
      if ('code' in outcome) {
        logger.info({ orderId, state: order.state, command: command.type }, 'event came too late for the order')
        return 'refused'
      }
      return 'applied'
    },

    async applyToEach(orderIds, command) {
      let applied = 0
      for (const orderId of orderIds) {
        const outcome = await sequelize.transaction(async (transaction) => {
          const order = await store.find(orderId, transaction)
          return order ? change(transaction, order, command()) : undefined
        })
        if (outcome && !('code' in outcome)) applied += 1
      }
      return applied
    },
  }
}

export function toCloudEvents(events: readonly OrderEvent[], traceparent?: string): CloudEvent[] {
  return events.map((event) =>
    createEvent(event.name, { source: ORDER_EVENT_SOURCE, subject: event.data.orderId, data: event.data, traceparent }),
  )
}

export const orderNotFound = (id: string) => notFound('ORDER_NOT_FOUND', `no order with id ${id}`)

function problemOf(error: OrderStateError): Problem {
  if (error.code === 'RETURN_WINDOW_CLOSED') return unprocessable(error.code, error.detail)
  return new Problem(409, error.code, error.detail, { state: error.state, command: error.command })
}
