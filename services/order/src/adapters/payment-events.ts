import { isEvent, TOPIC_PAYMENTS } from '@timedeal/contracts'
import {
  type ConsumerSettings,
  consumeEvents,
  type DeliveredEvent,
  type EventBus,
  type EventSubscription,
  type Inbox,
  type Logger,
  PermanentEventError,
} from '@timedeal/platform'
import type { Order, OrderCommand } from '../domain/order-state.ts'
import type { EventCommand, Orders } from '../flows/orders.ts'
import type { BatchConfirmOutcome, GoodsClient } from './goods-client.ts'
import type { OrderStore } from './order-store.ts'

export interface PaymentEventsOptions {
  readonly bus: EventBus
  readonly group: string
  readonly settings: ConsumerSettings
  readonly inbox: Inbox
  readonly orders: Orders
  readonly store: OrderStore
  readonly goods: GoodsClient
  readonly logger: Logger
}

/** A payment's outcome for its order, as the batch sees it. */
interface PaymentOutcome {
  readonly delivery: DeliveredEvent
  readonly orderId: string
  /** Set for a completed payment. */
  readonly paymentId?: string
  /** Set for a failed payment. */
  readonly failureCode?: string
}

function paymentOutcomeOf(delivery: DeliveredEvent): PaymentOutcome | undefined {
  const { event } = delivery
  if (isEvent(event, 'paymentCompleted')) {
    return { delivery, orderId: event.data.orderId, paymentId: event.data.paymentId }
  }
  if (isEvent(event, 'paymentFailed')) return { delivery, orderId: event.data.orderId, failureCode: event.data.code }
  return undefined
}

/**
 * Consumes `timedeal.payments` in order-service's own group, a polled batch at a time: a
 * completed payment makes the order PAID (and its reservation the buyer's), a failed one makes
 * it FAILED. Per batch: one read of its orders, one call to goods-service confirming the
 * reservations of those still waiting for payment, then one inbox transaction with every order
 * change and its events.
 */
export function subscribePaymentEvents(options: PaymentEventsOptions): Promise<EventSubscription> {
  const { orders, store, goods, logger } = options

  return consumeEvents({
    bus: options.bus,
    group: options.group,
    topics: [TOPIC_PAYMENTS],
    settings: options.settings,
    inbox: options.inbox,
    handleBatch: async ({ deliveries, onceEach }) => {
      const payments = deliveries.flatMap((delivery) => paymentOutcomeOf(delivery) ?? [])
      if (payments.length === 0) return
      const at = new Date()
      const known = new Map(
        (await store.findMany([...new Set(payments.map(({ orderId }) => orderId))])).map((order) => [order.id, order]),
      )
      const confirmed = await confirmReservations(payments, known)
      const commands = new Map<string, EventCommand>()
      for (const payment of payments) {
        const order = known.get(payment.orderId)
        // Payments only follow an order's commit, so an order missing now never comes: it belongs to
        // another deployment sharing the topic (or was deleted), and nothing is changed for it.
        if (!order) {
          logger.debug(
            { orderId: payment.orderId, eventId: payment.delivery.event.id },
            'payment event for an unknown order',
          )
          continue
        }
        commands.set(payment.delivery.event.id, {
          orderId: order.id,
          command: commandFor(payment, order, confirmed, at),
          traceparent: payment.delivery.event.traceparent,
        })
      }
      await onceEach(async (fresh, transaction) => {
        const due = fresh.flatMap(({ event }) => commands.get(event.id) ?? [])
        if (due.length > 0) await orders.applyManyFromEvents(transaction, due)
      })
    },
  })

  /**
   * Confirms, in one call, the reservations of the batch's completed payments whose orders are
   * still waiting for payment: an order is PAID only while its units are held for it. When
   * goods-service cannot answer, its 503 (or 429) goes up to the consumer, which counts it as an
   * outage and hands the batch again until goods-service answers; meanwhile the orders stay
   * unpaid, and an order whose deadline passes first is expired by the schedule.
   */
  async function confirmReservations(
    payments: readonly PaymentOutcome[],
    known: ReadonlyMap<string, Order>,
  ): Promise<ReadonlyMap<string, BatchConfirmOutcome>> {
    const waiting = new Map<string, { reservationId: string; goodsId: string }>()
    for (const payment of payments) {
      const order = known.get(payment.orderId)
      if (payment.paymentId === undefined || order?.state !== 'PENDING_PAYMENT') continue
      waiting.set(order.reservationId, { reservationId: order.reservationId, goodsId: order.goodsId })
    }
    if (waiting.size === 0) return new Map()
    return goods.confirmMany([...waiting.values()])
  }

  /**
   * PAY once the reservation is confirmed; when its units already went back (the hold ran out
   * first) the order expires instead, and payment-service refunds on that event.
   */
  function commandFor(
    payment: PaymentOutcome,
    order: Order,
    confirmed: ReadonlyMap<string, BatchConfirmOutcome>,
    at: Date,
  ): OrderCommand {
    if (payment.paymentId === undefined) {
      return { type: 'FAIL', at, reason: `payment failed: ${payment.failureCode}` }
    }
    const pay: OrderCommand = { type: 'PAY', at, paymentId: payment.paymentId }
    // Past waiting already: the state machine judges the command in the transaction.
    if (order.state !== 'PENDING_PAYMENT') return pay
    const outcome = confirmed.get(order.reservationId)
    if (outcome === 'CONFIRMED') return pay
    if (outcome === undefined) {
      throw new Error(`goods-service did not answer for reservation ${order.reservationId}; asking again`)
    }
    if (outcome === 'CONFLICT') {
      // Only this event fails: the batch is narrowed down to it, and it is dead-lettered alone.
      throw new PermanentEventError(
        `goods-service holds reservation ${order.reservationId} of order ${order.id} for other goods`,
      )
    }
    logger.warn({ orderId: order.id, reservationId: order.reservationId, outcome }, 'paid after the reservation ended')
    return { type: 'EXPIRE', at }
  }
}
