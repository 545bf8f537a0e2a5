/**
 * What payment-service does: charge an order when it is placed, refund it once when it ends
 * after being paid. The provider is called outside any transaction (with an idempotency key,
 * so a retry never charges twice); its outcome, the handled event and the outgoing event are
 * then written in one transaction.
 */
import { randomUUID } from 'node:crypto'
import { type CloudEvent, createEvent, type EventData, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { appendToOutbox, handleOnce, type Logger } from '@timedeal/platform'
import { Counter, type Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import type { PaymentStore } from './adapters/payment-store.ts'
import type { PaymentProvider } from './adapters/provider.ts'
import { type Payment, paymentOfCharge, refunded, settlementFor, voidedPayment } from './domain/payment.ts'

export const PAYMENT_EVENT_SOURCE = '/payment-service'

/** The provider did not answer in time; the charge counts as failed. */
export const PROVIDER_TIMEOUT = 'PROVIDER_TIMEOUT'
/** The order is past its payment deadline; the provider is not asked. */
export const ORDER_TOO_OLD = 'ORDER_TOO_OLD'

export interface PaymentsDeps {
  readonly sequelize: Sequelize
  readonly store: PaymentStore
  readonly provider: PaymentProvider
  readonly providerTimeoutMs: number
  /** Orders placed longer ago are not charged. */
  readonly chargeDeadlineMs: number
  /** The inbox's consumer name: the consumer group. */
  readonly consumer: string
  readonly logger: Logger
  readonly metrics: Registry
  readonly afterCommit?: () => void
  readonly clock?: () => Date
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
  /** Refunds a completed payment once; voids an order never charged. */
  settleEndedOrder(event: CloudEvent, order: EndedOrder): Promise<void>
  listForBuyer(buyerId: string, filter: { orderId?: string | undefined; limit: number }): Promise<Payment[]>
}

export function createPayments(deps: PaymentsDeps): Payments {
  const { sequelize, store, provider, logger, consumer } = deps
  const clock = deps.clock ?? (() => new Date())
  const outcomes = new Counter({
    name: 'payments_total',
    help: 'Payment operations, by kind (charge, refund, void) and outcome.',
    labelNames: ['kind', 'outcome'],
    registers: [deps.metrics],
  })

  const publish = (transaction: Parameters<typeof appendToOutbox>[1], events: CloudEvent[]) =>
    appendToOutbox(sequelize, transaction, TOPIC_PAYMENTS, events, deps.afterCommit)

  /** Calls the provider with a deadline; the signal tells it to give up. */
  async function withDeadline<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T | typeof PROVIDER_TIMEOUT> {
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<typeof PROVIDER_TIMEOUT>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error('the provider did not answer in time'))
        resolve(PROVIDER_TIMEOUT)
      }, deps.providerTimeoutMs)
    })
    try {
      return await Promise.race([call(controller.signal), deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  return {
    async chargeOrder(event) {
      const order = event.data
      const known = await store.findByOrder(order.orderId)
      if (known) {
        // Charged (or voided) already: only the inbox learns about this delivery.
        await handleOnce(sequelize, consumer, event, async () => {})
        return
      }
      const tooOld = clock().getTime() - Date.parse(order.placedAt) > deps.chargeDeadlineMs
      const answer = tooOld
        ? ({ approved: false, code: ORDER_TOO_OLD } as const)
        : await withDeadline((signal) =>
            provider.charge(
              { idempotencyKey: `charge:${order.orderId}`, orderId: order.orderId, amount: order.totalAmount },
              signal,
            ),
          )
      const at = clock()
      const payment = paymentOfCharge(
        {
          id: randomUUID(),
          orderId: order.orderId,
          buyerId: order.buyerId,
          amount: order.totalAmount,
          provider: provider.name,
          at,
        },
        answer === PROVIDER_TIMEOUT
          ? { approved: false, code: PROVIDER_TIMEOUT }
          : answer.approved
            ? { approved: true, reference: answer.reference }
            : { approved: false, code: answer.code },
      )
      let recorded = false
      await handleOnce(sequelize, consumer, event, async (transaction) => {
        recorded = await store.insertIfAbsent(payment, transaction)
        if (recorded) await publish(transaction, [paymentEvent(payment, event.traceparent)])
      })
      if (!recorded) return
      outcomes.inc({ kind: 'charge', outcome: payment.status })
      logger.info({ orderId: order.orderId, status: payment.status, code: payment.failureCode }, 'order charged')
    },

    async settleEndedOrder(event, order) {
      const current = await store.findByOrder(order.orderId)
      const action = settlementFor(current)
      let refundReference: string | undefined
      if (current && action === 'refund') {
        const answer = await withDeadline((signal) =>
          provider.refund(
            {
              idempotencyKey: `refund:${current.id}`,
              chargeReference: current.providerReference ?? '',
              amount: current.amount,
            },
            signal,
          ),
        )
        // A refund that timed out is retried (the key makes it safe) rather than given up.
        if (answer === PROVIDER_TIMEOUT) throw new Error(`the provider did not answer the refund of ${current.id}`)
        refundReference = answer.reference
      }
      await handleOnce(sequelize, consumer, event, async (transaction) => {
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
