import { type CloudEvent, type EventName, isEvent, TOPIC_ORDERS } from '@timedeal/contracts'
import {
  type ConsumerSettings,
  consumeEvents,
  type EventBus,
  type EventSubscription,
  type Logger,
} from '@timedeal/platform'
import type { LiveStock } from '../flows/live-stock.ts'
import type { GoodsMetrics } from '../metrics.ts'

/** Order events that end an order without a sale: each gives its reservation's units back. */
const releasingEvents = {
  orderCancelled: 'order-cancelled',
  orderFailed: 'order-failed',
  orderExpired: 'order-expired',
  orderReturned: 'order-returned',
} as const satisfies Partial<Record<EventName, string>>

type ReleasingEvent = keyof typeof releasingEvents

function releaseReason(event: CloudEvent): string | undefined {
  for (const name of Object.keys(releasingEvents) as ReleasingEvent[]) {
    if (isEvent(event, name)) return releasingEvents[name]
  }
  return undefined
}

export interface OrderEventsOptions {
  readonly bus: EventBus
  readonly group: string
  readonly settings: ConsumerSettings
  readonly live: LiveStock
  readonly metrics: GoodsMetrics
  readonly logger: Logger
}

/** What an order event asks of the stock: give its reservation's units back, for this reason. */
interface Release {
  readonly orderId: string
  readonly reservationId: string
  readonly goodsId: string
  readonly reason: string
}

function releaseOf(event: CloudEvent): Release | undefined {
  const reason = releaseReason(event)
  if (!reason) return undefined
  const data = event.data as { orderId: string; reservationId: string; goodsId: string }
  return { orderId: data.orderId, reservationId: data.reservationId, goodsId: data.goodsId, reason }
}

/**
 * Consumes `timedeal.orders` in a consumer group of its own, a polled batch at a time.
 * Cancelled, failed, expired and returned orders release their reservation, idempotent by the
 * script's own states, so a redelivered event changes nothing and no inbox is needed. A paid order
 * needs nothing: order-service writes PAID only after this service answered CONFIRMED for its
 * reservation. A new group reads the topic from the start (`CONSUMER_FROM_BEGINNING`): replaying
 * old events is harmless.
 */
export function subscribeOrderEvents(options: OrderEventsOptions): Promise<EventSubscription> {
  const { live, metrics, logger } = options

  async function release({ orderId, reservationId, goodsId, reason }: Release): Promise<void> {
    const outcome = await live.release(reservationId, { goodsId, reason })
    if (outcome.status === 'RELEASED' && outcome.changed) {
      metrics.releases.inc({ reason })
      logger.info({ orderId, reservationId, reason }, 'stock released')
    } else if (outcome.status === 'MARKED') {
      // Its reserve call never arrived (or has not yet): if it does, it is refused.
      logger.info({ orderId, reservationId, reason }, 'marked an unknown reservation released')
    } else if (outcome.status === 'RESERVATION_CONFLICT') {
      logger.error(
        { orderId, reservationId, goodsId, reason },
        'an order names other goods than its reservation was made for; nothing released',
      )
    }
  }

  return consumeEvents({
    bus: options.bus,
    group: options.group,
    topics: [TOPIC_ORDERS],
    settings: options.settings,
    handleBatch: async (deliveries) => {
      // A reservation is released once, by its first releasing event; the rest of a batch's
      // releases are of other orders and go to Redis all at once.
      const releases = new Map<string, Release>()
      for (const { event } of deliveries) {
        const wanted = releaseOf(event)
        if (wanted && !releases.has(wanted.reservationId)) releases.set(wanted.reservationId, wanted)
      }
      const settled = await Promise.allSettled([...releases.values()].map(release))
      // Any failure hands the batch again; the releases that went through change nothing then.
      const failed = settled.find((result) => result.status === 'rejected')
      if (failed) throw failed.reason
    },
  })
}
