import { isEvent, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { type EventBus, type EventSubscription, handleOnce, type Logger } from '@timedeal/platform'
import type { Sequelize } from 'sequelize'
import type { Order, OrderCommand } from '../domain/order-state.ts'
import type { Orders } from '../flows/orders.ts'
import type { GoodsClient } from './goods-client.ts'
import type { OrderStore } from './order-store.ts'

/** Every partition of the catalog's topics at once (they have six). */
const CONCURRENT_PARTITIONS = 6

export interface PaymentEventsOptions {
  readonly bus: EventBus
  readonly groupId: string
  readonly sequelize: Sequelize
  readonly orders: Orders
  readonly store: OrderStore
  readonly goods: GoodsClient
  readonly logger: Logger
  readonly fromBeginning: boolean
  readonly maxAttempts: number
  readonly retryBackoffMs: number
  readonly maxRetryBackoffMs: number
}

/**
 * Consumes `timedeal.payments` in order-service's own group: a completed payment makes the
 * order PAID (and its reservation the buyer's), a failed one makes it FAILED. Each event is
 * applied through the inbox, in the same transaction as the order change and its events.
 */
export function subscribePaymentEvents(options: PaymentEventsOptions): Promise<EventSubscription> {
  const { sequelize, orders, store, goods, logger } = options
  // The inbox is keyed by consumer: the group name keeps two deployments' records apart.
  const consumer = options.groupId

  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [TOPIC_PAYMENTS],
    // Each order's events share a partition; different orders are handled side by side.
    partitionsConcurrently: CONCURRENT_PARTITIONS,
    fromBeginning: options.fromBeginning,
    maxAttempts: options.maxAttempts,
    retryBackoffMs: options.retryBackoffMs,
    maxRetryBackoffMs: options.maxRetryBackoffMs,
    handle: async ({ event }) => {
      const at = new Date()
      const paid = isEvent(event, 'paymentCompleted') ? event : undefined
      const failed = isEvent(event, 'paymentFailed') ? event : undefined
      const orderId = (paid ?? failed)?.data.orderId
      if (!orderId) return
      const order = await store.find(orderId)
      // Payments only follow an order's commit, so an order missing now never comes: it belongs to
      // another deployment sharing the topic (or was deleted), and nothing is recorded for it.
      if (!order) {
        logger.debug({ orderId, eventId: event.id }, 'payment event for an unknown order')
        return
      }
      const command: OrderCommand = paid
        ? await paidOrExpired(order, paid.data.paymentId, at)
        : { type: 'FAIL', at, reason: `payment failed: ${failed?.data.code}` }
      await handleOnce(sequelize, consumer, event, async (transaction) => {
        await orders.applyFromEvent(transaction, orderId, command, event.traceparent)
      })
    },
  })

  /**
   * Confirms the reservation before the order is marked paid: an order is PAID only while its
   * units are held for it. When the units already went back (the hold ran out first) the order
   * expires instead, and payment-service refunds on that event. When goods-service cannot
   * answer, its 503 (or 429) goes up to the consumer, which counts it as an outage and delivers
   * the event again until goods-service answers; meanwhile the order stays unpaid, and if its
   * deadline passes first the schedule expires it.
   */
  async function paidOrExpired(order: Order, paymentId: string, at: Date): Promise<OrderCommand> {
    if (order.state !== 'PENDING_PAYMENT') return { type: 'PAY', at, paymentId }
    const outcome = await goods.confirm(order.reservationId)
    if (outcome !== 'CONFIRMED') {
      logger.warn(
        { orderId: order.id, reservationId: order.reservationId, outcome },
        'paid after the reservation ended',
      )
      return { type: 'EXPIRE', at }
    }
    return { type: 'PAY', at, paymentId }
  }
}
