import { type CloudEvent, type EventData, isEvent, TOPIC_ORDERS } from '@timedeal/contracts'
import {
  type ConsumerSettings,
  consumeEvents,
  type EventBus,
  type EventSubscription,
  type FailureKind,
} from '@timedeal/platform'
import type { EndedOrder, Payments } from '../flows/payments.ts'
import { ProviderUnavailableError } from './provider.ts'

export interface OrderEventsOptions {
  readonly bus: EventBus
  readonly group: string
  readonly settings: ConsumerSettings
  readonly payments: Payments
}

/**
 * A provider that is down, or cannot yet say what it did with a charge, is an outage: the event
 * waits for it, however long, and is never dead-lettered. Anything else is the platform's call.
 */
export const classifyProviderFailure = (error: unknown): FailureKind | undefined =>
  error instanceof ProviderUnavailableError ? 'infrastructure' : undefined

/** How an order event ends the order, for the ones that settle its payment. */
function endedOrder(event: CloudEvent): EndedOrder | undefined {
  if (isEvent(event, 'orderCancelled')) return { ...event.data, reason: 'cancelled' }
  if (isEvent(event, 'orderExpired')) return { ...event.data, reason: 'expired' }
  if (isEvent(event, 'orderReturned')) return { ...event.data, reason: 'returned' }
  return undefined
}

/**
 * Consumes `timedeal.orders` in payment-service's own group (goods-service reads the same
 * events in its group), a polled batch of one partition at a time. OrderPlaced charges; a
 * cancelled, expired or returned order is refunded if it was paid. The OrderPlaced events in a
 * row are charged together (see `chargeOrders`); an event that ends an order is handled alone,
 * after everything before it, so one order's charge is always handled before its end.
 */
export function subscribeOrderEvents(options: OrderEventsOptions): Promise<EventSubscription> {
  const { payments } = options
  return consumeEvents({
    bus: options.bus,
    group: options.group,
    topics: [TOPIC_ORDERS],
    settings: options.settings,
    classifyFailure: classifyProviderFailure,
    handleBatch: async (deliveries) => {
      let placed: CloudEvent<EventData<'orderPlaced'>>[] = []
      for (const { event } of deliveries) {
        if (isEvent(event, 'orderPlaced')) {
          placed.push(event)
          continue
        }
        const ended = endedOrder(event)
        if (!ended) continue
        await payments.chargeOrders(placed)
        placed = []
        await payments.settleEndedOrder(event, ended)
      }
      await payments.chargeOrders(placed)
    },
  })
}
