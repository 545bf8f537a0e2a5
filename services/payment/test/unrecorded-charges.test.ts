/**
 * Money the provider took that payment-service had not recorded: a charge answered too late,
 * and a charge whose event was dead-lettered and came back after the order ended. The sandbox
 * keeps its books in the test database, so each test can see what the provider really did.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type CloudEvent, TOPIC_ORDERS } from '@timedeal/contracts'
import { eventually, uniqueName } from '@timedeal/platform/testing'
import { SandboxProvider } from '../src/adapters/sandbox-provider.ts'
import type { EndedOrder } from '../src/flows/payments.ts'
import { orderEnded, orderPlaced } from './order-events.ts'
import { type PaymentHarness, startPaymentHarness, waitForGroupsPast } from './support.ts'

interface PaymentRow {
  id: string
  status: string
  amount: number | string
  provider_reference: string | null
  failure_code: string | null
}

const never = () => new AbortController().signal

/** A payment-service, a publisher of order events and a watcher of payment events, for one describe. */
function harness(overrides: Record<string, string>) {
  const state = {} as PaymentHarness

  before(async () => {
    Object.assign(state, await startPaymentHarness(overrides))
  })

  after(() => state.stop?.())

  const paymentOf = (orderId: string) => state.payments.paymentOf<PaymentRow>(orderId)

  return {
    state,
    send: (...events: CloudEvent[]) => state.publisher.publish(TOPIC_ORDERS, events),
    paymentOf,
    /** The payment once it is recorded at all, whatever its status. */
    recorded: (orderId: string) =>
      eventually(async () => paymentOf(orderId), 20_000, `a payment of ${orderId} to be recorded`),
    settles: (orderId: string, status: string) => state.payments.settles<PaymentRow>(orderId, status),
    typesAbout: (orderId: string) =>
      state.published.filter((event) => event.subject === orderId).map((event) => event.type),
    /** What the provider's own books say it did for a charge key. */
    sandboxCharge: async (idempotencyKey: string) =>
      (
        await state.payments.rows<{ outcome: string; reference: string | null }>(
          'SELECT outcome, reference FROM sandbox_charges WHERE idempotency_key = :idempotencyKey',
          { idempotencyKey },
        )
      )[0],
    sandboxRefunds: (chargeReference: string) =>
      state.payments.rows<{ idempotency_key: string; amount: number | string }>(
        'SELECT idempotency_key, amount FROM sandbox_refunds WHERE charge_reference = :chargeReference',
        { chargeReference },
      ),
    outboxTypes: async (orderId: string) =>
      (
        await state.payments.rows<{ event_type: string }>(
          'SELECT event_type FROM outbox WHERE message_key = :orderId ORDER BY id',
          { orderId },
        )
      ).map((row) => row.event_type),
    metrics: async () => (await state.payments.app.request('/metrics')).text(),
    /** Another client of the same sandbox provider: its books are in the test database. */
    sandbox: () =>
      new SandboxProvider({
        sequelize: state.payments.database.sequelize,
        failureRate: 0,
        latencyMs: 0,
        lateCaptureMs: 0,
        outageMs: 0,
      }),
  }
}

describe('charges the provider took but payment-service had not recorded (real MariaDB and Kafka)', () => {
  const t = harness({
    PROVIDER_TIMEOUT_MS: '300',
    // A late capture lands after the charge timed out and after every lookup of that delivery:
    // the provider keeps saying "pending", and the event itself has to be handled again.
    SANDBOX_LATE_CAPTURE_MS: '1500',
    PROVIDER_LOOKUP_RETRIES: '2',
    PROVIDER_LOOKUP_BACKOFF_MS: '100',
    CONSUMER_MAX_ATTEMPTS: '20',
    CONSUMER_RETRY_BACKOFF_MS: '100',
  })

  test('never records FAILED a charge the provider took but answered too late, even while it could not say so yet', async () => {
    // An amount ending in 504: the sandbox takes the money 1.5 s later and never answers.
    const placed = orderPlaced(25_504)
    const key = `charge:${placed.data.orderId}`
    await t.send(placed)
    const payment = await t.recorded(placed.data.orderId)
    const taken = await t.sandboxCharge(key)
    assert.equal(taken?.outcome, 'CAPTURED', 'the provider took the money')
    assert.deepEqual(
      [payment.status, payment.failure_code, payment.provider_reference],
      ['COMPLETED', null, taken.reference],
    )
    assert.match(await t.metrics(), /^payment_provider_lookups_total\{[^}]*answer="pending"[^}]*\} [1-9]/m)

    const [again] = await t.send(placed)
    assert.ok(again)
    await waitForGroupsPast([t.state.payments.groupId], again)
    assert.deepEqual(t.typesAbout(placed.data.orderId), ['timedeal.payment.completed.v1'])
    assert.deepEqual(await t.outboxTypes(placed.data.orderId), ['timedeal.payment.completed.v1'])
  })

  test('records a timed-out charge FAILED only once the provider said it took nothing, and it never takes it later', async () => {
    // An amount ending in 408: the sandbox never answers and takes nothing.
    const placed = orderPlaced(5_408)
    const key = `charge:${placed.data.orderId}`
    await t.send(placed)
    const payment = await t.settles(placed.data.orderId, 'FAILED')
    assert.equal(payment.failure_code, 'PROVIDER_TIMEOUT')
    assert.equal((await t.sandboxCharge(key))?.outcome, 'CLOSED', 'the lookup closed the key')
    // The same request arriving at the provider only now is refused: no money behind a FAILED payment.
    const late = await t.sandbox().charge({ idempotencyKey: key, orderId: placed.data.orderId, amount: 4_000 }, never())
    assert.deepEqual(late, { approved: false, code: 'CHARGE_CLOSED' })
  })

  test('refunds once a charge taken for an order that expired before it was recorded, however often its events come back', async () => {
    const placed = orderPlaced(12_000)
    const key = `charge:${placed.data.orderId}`
    // The first delivery of OrderPlaced got this far, then its write failed and the event was
    // dead-lettered: the provider has the money, payment-service has no payment.
    const charge = await t
      .sandbox()
      .charge({ idempotencyKey: key, orderId: placed.data.orderId, amount: 12_000 }, never())
    assert.ok(charge.approved)
    const expired = orderEnded('orderExpired', placed)
    // The order expires, the dead letter is replayed, the expiry is delivered again, a cancel follows.
    await t.send(expired)
    await t.send(placed)
    await t.send(expired)
    const [last] = await t.send(orderEnded('orderCancelled', placed))
    assert.ok(last)
    await waitForGroupsPast([t.state.payments.groupId], last)

    const payment = await t.paymentOf(placed.data.orderId)
    assert.deepEqual(
      [payment?.status, Number(payment?.amount), payment?.provider_reference],
      ['REFUNDED', 12_000, charge.reference],
    )
    const refunds = await t.sandboxRefunds(charge.reference)
    assert.deepEqual(
      refunds.map((refund) => Number(refund.amount)),
      [12_000],
    )
    await eventually(
      async () => (t.typesAbout(placed.data.orderId).length > 0 ? true : undefined),
      20_000,
      'the refund event',
    )
    assert.deepEqual(await t.outboxTypes(placed.data.orderId), ['timedeal.payment.refunded.v1'])
    assert.deepEqual(t.typesAbout(placed.data.orderId), ['timedeal.payment.refunded.v1'])
  })

  test('refunds once when several ends of an unrecorded charge are handled at the same time', async () => {
    const placed = orderPlaced(13_000)
    const { orderId, buyerId } = placed.data
    const charge = await t.sandbox().charge({ idempotencyKey: `charge:${orderId}`, orderId, amount: 13_000 }, never())
    assert.ok(charge.approved)
    const expired = orderEnded('orderExpired', placed)
    const cancelled = orderEnded('orderCancelled', placed)
    const ends: [CloudEvent, EndedOrder][] = [
      [expired, { orderId, buyerId, reason: 'expired' }],
      [expired, { orderId, buyerId, reason: 'expired' }],
      [cancelled, { orderId, buyerId, reason: 'cancelled' }],
      [cancelled, { orderId, buyerId, reason: 'cancelled' }],
    ]
    const settled = await Promise.allSettled(
      ends.map(([event, ended]) => t.state.payments.service.payments.settleEndedOrder(event, ended)),
    )
    // A delivery that lost a race may fail and be retried; none may refund a second time.
    assert.ok(settled.some((outcome) => outcome.status === 'fulfilled'))
    for (const [event, ended] of ends) await t.state.payments.service.payments.settleEndedOrder(event, ended)

    assert.equal((await t.paymentOf(orderId))?.status, 'REFUNDED')
    assert.equal((await t.sandboxRefunds(charge.reference)).length, 1)
    assert.deepEqual(await t.outboxTypes(orderId), ['timedeal.payment.refunded.v1'])
  })

  test('never records FAILED as too old an order whose charge the provider already took', async () => {
    const placed = orderPlaced(9_000, uniqueName('buyer'), new Date(Date.now() - 3600_000))
    const { orderId } = placed.data
    const charge = await t.sandbox().charge({ idempotencyKey: `charge:${orderId}`, orderId, amount: 9_000 }, never())
    assert.ok(charge.approved)
    await t.send(placed)
    const payment = await t.recorded(orderId)
    assert.deepEqual([payment.status, payment.failure_code], ['COMPLETED', null])
    await t.send(orderEnded('orderExpired', placed))
    await t.settles(orderId, 'REFUNDED')
    assert.equal((await t.sandboxRefunds(charge.reference)).length, 1)
  })
})
