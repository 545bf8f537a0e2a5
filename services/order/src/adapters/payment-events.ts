import { isEvent, TOPIC_PAYMENTS } from '@timedeal/contracts'
import {
  type ConsumerSettings,
  consumeEvents,
  type EventBus,
  type EventSubscription,
  type Inbox,
  type Logger,
} from '@timedeal/platform'
import type { Order, OrderCommand } from '../domain/order-state.ts'
import type { Orders } from '../flows/orders.ts'
import type { GoodsClient } from './goods-client.ts'
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

/**
 * Consumes `timedeal.payments` in order-service's own group: a completed payment makes the
 * order PAID (and its reservation the buyer's), a failed one makes it FAILED. Each event is
 * applied through the inbox, in the same transaction as the order change and its events.
 */
export function subscribePaymentEvents(options: PaymentEventsOptions): Promise<EventSubscription> {
  const { orders, store, goods, logger } = options

  return consumeEvents({
    bus: options.bus,
    group: options.group,
    topics: [TOPIC_PAYMENTS],
    settings: options.settings,
    inbox: options.inbox,
    handle: async ({ event, once }) => {
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
      await once(async (transaction) => {
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
