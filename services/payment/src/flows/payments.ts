/**
 * What payment-service does: charge an order when it is placed, refund it once when it ends
 * after being paid. The provider is called outside any transaction (with an idempotency key,
 * so a retry never charges twice); its outcome, the handled event and the outgoing event are
 * then written in one transaction. When the provider gives no answer, it is asked what it did
 * rather than assumed to have done nothing.
 */
import { randomUUID } from 'node:crypto'
import { type CloudEvent, createEvent, type EventData, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { appendToOutbox, type Inbox, type Logger } from '@timedeal/platform'
import { bulkhead } from 'cockatiel'
import type { Sequelize } from 'sequelize'
import type { PaymentStore } from '../adapters/payment-store.ts'
import { NO_ANSWER, type ProviderCalls, type SettledCharge } from '../adapters/provider-calls.ts'
import {
  type ChargeOutcome,
  type Payment,
  paymentOfCharge,
  refunded,
  settlementFor,
  voidedPayment,
} from '../domain/payment.ts'
import type { PaymentMetrics } from '../metrics.ts'

export const PAYMENT_EVENT_SOURCE = '/payment-service'

/** The provider did not answer in time, and then said it took nothing. */
export const PROVIDER_TIMEOUT = 'PROVIDER_TIMEOUT'
/** The order is past its payment deadline and the provider took nothing for it. */
export const ORDER_TOO_OLD = 'ORDER_TOO_OLD'

export interface PaymentsDeps {
  readonly sequelize: Sequelize
  readonly store: PaymentStore
  readonly provider: ProviderCalls
  /** Orders placed longer ago are not charged. */
  readonly chargeDeadlineMs: number
  /** Where handled order events are recorded, in the transaction of their effect. */
  readonly inbox: Inbox
  readonly logger: Logger
  readonly metrics: PaymentMetrics
  readonly afterCommit?: () => void
  readonly clock?: () => Date
  /** Provider charges in flight at once, over every batch (default 32). */
  readonly chargeConcurrency?: number
}

/** The order an event ended, and how. */
export interface EndedOrder {
  readonly orderId: string
  readonly buyerId: string
  readonly reason: 'cancelled' | 'expired' | 'returned'
}

export interface Payments {
  /** Charges a placed order once, however often its OrderPlaced is delivered. */
  chargeOrder(event: CloudEvent<EventData<'orderPlaced'>>): Promise<void>
  /**
   * Charges the orders of a batch of OrderPlaced events (of different orders) at once, each
   * once however often it is delivered, then records the charges, their events and the handled
   * ids in one transaction. When some charges cannot be made now (the provider is down), the
   * others are recorded and the first failure is thrown, so the batch is handed again.
   */
  chargeOrders(events: readonly CloudEvent<EventData<'orderPlaced'>>[]): Promise<void>
  /** Refunds a charge of the order once, recorded or not; voids an order never charged. */
  settleEndedOrder(event: CloudEvent, order: EndedOrder): Promise<void>
  listForBuyer(buyerId: string, filter: { orderId?: string | undefined; limit: number }): Promise<Payment[]>
}

/** Provider charges in flight at once when the deps do not say. */
export const DEFAULT_CHARGE_CONCURRENCY = 32

/** One charge per order: every delivery, and every lookup, uses the same key. */
const chargeKey = (orderId: string) => `charge:${orderId}`

/** What a lookup says became of a charge; `ifAbsent` is why nothing was taken. */
function outcomeOfLookup(found: SettledCharge, ifAbsent: string): ChargeOutcome {
  if (found.state === 'captured') return { approved: true, reference: found.reference }
  if (found.state === 'declined') return { approved: false, code: found.code }
  return { approved: false, code: ifAbsent }
}

export function createPayments(deps: PaymentsDeps): Payments {
  const { sequelize, store, provider, logger, inbox } = deps
  const clock = deps.clock ?? (() => new Date())
  const outcomes = deps.metrics.payments

  // Bounds the provider calls of every batch together, however many partitions are handled at once.
  const limiter = bulkhead(deps.chargeConcurrency ?? DEFAULT_CHARGE_CONCURRENCY, Number.MAX_SAFE_INTEGER)

  const publish = (transaction: Parameters<typeof appendToOutbox>[1], events: CloudEvent[]) =>
    appendToOutbox(sequelize, transaction, TOPIC_PAYMENTS, events, deps.afterCommit)

  /** What became of the order's charge: the provider's answer or, when none came, what it says it did. */
  async function chargeOutcome(order: EventData<'orderPlaced'>): Promise<ChargeOutcome> {
    const idempotencyKey = chargeKey(order.orderId)
    // Too late to charge now, but an earlier delivery may have charged: ask instead of assuming.
    if (clock().getTime() - Date.parse(order.placedAt) > deps.chargeDeadlineMs) {
      return outcomeOfLookup(await provider.settledCharge(idempotencyKey), ORDER_TOO_OLD)
    }
    const answer = await provider.charge({ idempotencyKey, orderId: order.orderId, amount: order.totalAmount })
    if (answer !== NO_ANSWER) return answer
    logger.warn({ orderId: order.orderId }, 'the provider did not answer a charge in time; asking what it did')
    return outcomeOfLookup(await provider.settledCharge(idempotencyKey), PROVIDER_TIMEOUT)
  }

  /**
   * An order that ended with no payment recorded may still have been charged: a delivery of its
   * OrderPlaced took the money, then failed to record it and was dead-lettered. The provider is
   * asked; money it took is recorded as a completed payment (the first writer's id stands), so it
   * is refunded like any other, under a refund key that does not change however often this runs.
   */
  async function recordChargeFoundAtProvider(order: EndedOrder): Promise<Payment | undefined> {
    const found = await provider.settledCharge(chargeKey(order.orderId))
    if (found.state !== 'captured') return undefined
    logger.warn(
      { orderId: order.orderId, reason: order.reason, amount: found.amount },
      'the provider holds a charge of an ended order that was never recorded; refunding it',
    )
    const payment = paymentOfCharge(
      {
        id: randomUUID(),
        orderId: order.orderId,
        buyerId: order.buyerId,
        amount: found.amount,
        provider: provider.name,
        at: clock(),
      },
      { approved: true, reference: found.reference },
    )
    const inserted = await sequelize.transaction((transaction) => store.insertIfAbsent(payment, transaction))
    if (inserted) outcomes.inc({ kind: 'charge', outcome: 'FOUND_AFTER_END' })
    return store.findByOrder(order.orderId)
  }

  /** The payment a charge came to (not yet recorded). */
  async function chargedPayment(order: EventData<'orderPlaced'>): Promise<Payment> {
    const outcome = await chargeOutcome(order)
    return paymentOfCharge(
      {
        id: randomUUID(),
        orderId: order.orderId,
        buyerId: order.buyerId,
        amount: order.totalAmount,
        provider: provider.name,
        at: clock(),
      },
      outcome,
    )
  }

  async function chargeOrders(events: readonly CloudEvent<EventData<'orderPlaced'>>[]): Promise<void> {
    if (events.length === 0) return
    // Charged (or voided) already: only the inbox learns about those deliveries.
    const known = await store.orderIdsWithPayment(events.map((event) => event.data.orderId))
    const charges = new Map<string, Promise<Payment>>()
    for (const { data } of events) {
      if (known.has(data.orderId) || charges.has(data.orderId)) continue
      charges.set(
        data.orderId,
        limiter.execute(() => chargedPayment(data)),
      )
    }
    const settled = await Promise.allSettled(charges.values())
    const payments = new Map<string, Payment>()
    for (const result of settled) if (result.status === 'fulfilled') payments.set(result.value.orderId, result.value)
    const failure = settled.find((result) => result.status === 'rejected')
    // What was charged is recorded now; an event whose charge must wait is not, and comes again.
    const done = events.filter(({ data }) => known.has(data.orderId) || payments.has(data.orderId))
    let recorded: Payment[] = []
    await inbox.onceEach(done, async (fresh, transaction) => {
      const due = fresh.flatMap((event) => payments.get(event.data.orderId) ?? [])
      const byPayment = new Map(fresh.map((event) => [event.data.orderId, event]))
      const inserted = await store.insertManyIfAbsent(due, transaction)
      recorded = due.filter((payment) => inserted.has(payment.id))
      await publish(
        transaction,
        recorded.map((payment) => paymentEvent(payment, byPayment.get(payment.orderId)?.traceparent)),
      )
    })
    for (const payment of recorded) {
      outcomes.inc({ kind: 'charge', outcome: payment.status })
      logger.info({ orderId: payment.orderId, status: payment.status, code: payment.failureCode }, 'order charged')
    }
    if (failure) throw failure.reason
  }

  return {
    chargeOrder: (event) => chargeOrders([event]),

    chargeOrders,

    async settleEndedOrder(event, order) {
      const current = (await store.findByOrder(order.orderId)) ?? (await recordChargeFoundAtProvider(order))
      const action = settlementFor(current)
      let refundReference: string | undefined
      if (current && action === 'refund') {
        // A refund with no answer in time rejects and the event is retried: the key makes that safe.
        const answer = await provider.refund({
          idempotencyKey: `refund:${current.id}`,
          chargeReference: current.providerReference ?? '',
          amount: current.amount,
        })
        refundReference = answer.reference
      }
      await inbox.once(event, async (transaction) => {
        const locked = await store.findByOrder(order.orderId, transaction)
        const at = clock()
        if (!locked) {
          await store.insertIfAbsent(
            voidedPayment({
              id: randomUUID(),
              orderId: order.orderId,
              buyerId: order.buyerId,
              provider: provider.name,
              at,
            }),
            transaction,
          )
          outcomes.inc({ kind: 'void', outcome: 'VOIDED' })
          return
        }
        // Refunded by an earlier event of the same order (a cancel, then a return): once is enough.
        if (locked.status !== 'COMPLETED' || refundReference === undefined) return
        const after = refunded(locked, refundReference, at)
        await store.markRefunded(after, transaction)
        await publish(transaction, [refundEvent(after, event.traceparent)])
        outcomes.inc({ kind: 'refund', outcome: 'REFUNDED' })
        logger.info({ orderId: order.orderId, reason: order.reason, amount: after.amount }, 'payment refunded')
      })
    },

    listForBuyer: (buyerId, filter) => store.listForBuyer(buyerId, filter),
  }
}

function paymentEvent(payment: Payment, traceparent?: string): CloudEvent {
  const common = { source: PAYMENT_EVENT_SOURCE, subject: payment.orderId, traceparent }
  if (payment.status === 'COMPLETED') {
    return createEvent('paymentCompleted', {
      ...common,
      data: {
        paymentId: payment.id,
        orderId: payment.orderId,
        amount: payment.amount,
        provider: payment.provider,
        completedAt: (payment.completedAt ?? payment.createdAt).toISOString(),
      },
    })
  }
  return createEvent('paymentFailed', {
    ...common,
    data: {
      paymentId: payment.id,
      orderId: payment.orderId,
      amount: payment.amount,
      code: payment.failureCode ?? 'DECLINED',
      failedAt: (payment.failedAt ?? payment.createdAt).toISOString(),
    },
  })
}

function refundEvent(payment: Payment, traceparent?: string): CloudEvent {
  return createEvent('paymentRefunded', {
    source: PAYMENT_EVENT_SOURCE,
    subject: payment.orderId,
    traceparent,
    data: {
      paymentId: payment.id,
      orderId: payment.orderId,
      amount: payment.amount,
      refundedAt: (payment.refundedAt ?? new Date()).toISOString(),
    },
  })
}
