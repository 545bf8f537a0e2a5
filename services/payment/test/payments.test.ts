import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type CloudEvent, deadLetterTopicOf, TOPIC_ORDERS } from '@timedeal/contracts'
import type { EventPublisher } from '@timedeal/platform'
import { assertEveryRouteDocumented } from '@timedeal/platform'
import { eventually, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { orderEnded, orderPlaced } from './order-events.ts'
import {
  type PaymentHarness,
  startPaymentHarness,
  type TestPaymentService,
  waitForGroupsPast,
  watchDeadLetters,
} from './support.ts'

interface PaymentRow {
  id: string
  status: string
  amount: number
  failure_code: string | null
  refund_reference: string | null
}

describe('payment-service charges and refunds (real MariaDB and Kafka)', () => {
  let harness: PaymentHarness
  let issuer: TestIssuer
  let payments: TestPaymentService
  let publisher: EventPublisher
  let published: CloudEvent[]

  before(async () => {
    harness = await startPaymentHarness({
      PROVIDER_TIMEOUT_MS: '300',
      SANDBOX_OUTAGE_MS: '2000',
      CONSUMER_MAX_ATTEMPTS: '3',
      CONSUMER_RETRY_BACKOFF_MS: '50',
    })
    ;({ issuer, payments, publisher, published } = harness)
  })

  after(() => harness?.stop())

  const send = (...events: CloudEvent[]) => publisher.publish(TOPIC_ORDERS, events)
  const paymentOf = (orderId: string) => payments.paymentOf<PaymentRow>(orderId)
  const settles = (orderId: string, status: string) => payments.settles<PaymentRow>(orderId, status)
  const eventsAbout = (orderId: string) => published.filter((event) => event.subject === orderId)
  const typesAbout = (orderId: string) => eventsAbout(orderId).map((event) => event.type)
  const publishedFor = (orderId: string, count: number) =>
    eventually(
      async () => (eventsAbout(orderId).length >= count ? true : undefined),
      20_000,
      `${count} payment event(s) of ${orderId}`,
    )

  test('an approved charge completes the payment and publishes PaymentCompleted', async () => {
    const placed = orderPlaced(25_000)
    await send(placed)
    const payment = await settles(placed.data.orderId, 'COMPLETED')
    assert.equal(Number(payment.amount), 25_000)
    await publishedFor(placed.data.orderId, 1)
    const [completed] = eventsAbout(placed.data.orderId)
    assert.equal(completed?.type, 'timedeal.payment.completed.v1')
    assert.deepEqual(
      { ...(completed?.data as object) },
      {
        ...(completed?.data as object),
        paymentId: payment.id,
        orderId: placed.data.orderId,
        amount: 25_000,
        provider: 'sandbox',
      },
    )
  })

  test('a declined card (an amount ending in 13) fails the payment with CARD_DECLINED', async () => {
    const placed = orderPlaced(10_013)
    await send(placed)
    const payment = await settles(placed.data.orderId, 'FAILED')
    assert.equal(payment.failure_code, 'CARD_DECLINED')
    await publishedFor(placed.data.orderId, 1)
    assert.deepEqual(typesAbout(placed.data.orderId), ['timedeal.payment.failed.v1'])
    assert.equal((eventsAbout(placed.data.orderId)[0]?.data as { code?: string } | undefined)?.code, 'CARD_DECLINED')
  })

  test('a provider that does not answer in time (an amount ending in 408) fails the payment as PROVIDER_TIMEOUT', async () => {
    const placed = orderPlaced(5_408)
    const started = Date.now()
    await send(placed)
    const payment = await settles(placed.data.orderId, 'FAILED')
    assert.equal(payment.failure_code, 'PROVIDER_TIMEOUT')
    assert.ok(Date.now() - started >= 300)
  })

  test('an order past its payment deadline (a fresh group reading old history) is not charged', async () => {
    const placed = orderPlaced(8_000, uniqueName('buyer'), new Date(Date.now() - 3600_000))
    await send(placed)
    const payment = await settles(placed.data.orderId, 'FAILED')
    assert.equal(payment.failure_code, 'ORDER_TOO_OLD')
  })

  test('an OrderPlaced delivered twice charges once', async () => {
    const placed = orderPlaced(7_000)
    await send(placed)
    const [again] = await send(placed)
    assert.ok(again)
    await waitForGroupsPast([payments.groupId], again)
    await settles(placed.data.orderId, 'COMPLETED')
    const rows = await payments.rows('SELECT id FROM payments WHERE order_id = :id', { id: placed.data.orderId })
    assert.equal(rows.length, 1)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.deepEqual(typesAbout(placed.data.orderId), ['timedeal.payment.completed.v1'])
  })

  test('a paid order that is cancelled is refunded once, even when the cancellation arrives twice and a return follows', async () => {
    const placed = orderPlaced(9_000)
    await send(placed)
    await settles(placed.data.orderId, 'COMPLETED')
    const cancelled = orderEnded('orderCancelled', placed)
    await send(cancelled)
    await send(cancelled)
    const [last] = await send(orderEnded('orderReturned', placed))
    assert.ok(last)
    await waitForGroupsPast([payments.groupId], last)
    const refunded = await settles(placed.data.orderId, 'REFUNDED')
    assert.ok(refunded.refund_reference)
    await publishedFor(placed.data.orderId, 2)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.deepEqual(typesAbout(placed.data.orderId), ['timedeal.payment.completed.v1', 'timedeal.payment.refunded.v1'])
  })

  test('an expired order that was charged anyway is refunded', async () => {
    const placed = orderPlaced(4_000)
    await send(placed, orderEnded('orderExpired', placed))
    await settles(placed.data.orderId, 'REFUNDED')
  })

  test('an order that ended before its charge is never charged, even when its OrderPlaced comes late', async () => {
    const placed = orderPlaced(6_000)
    const cancelled = orderEnded('orderCancelled', placed)
    // A dead-lettered OrderPlaced replayed after the cancellation arrives in this order.
    await send(cancelled)
    const [late] = await send(placed)
    assert.ok(late)
    await waitForGroupsPast([payments.groupId], late)
    const payment = await paymentOf(placed.data.orderId)
    assert.equal(payment?.status, 'VOIDED')
    assert.equal(Number(payment?.amount), 0)
    assert.deepEqual(typesAbout(placed.data.orderId), [])
  })

  test('a provider that is down holds the charge until it is back, then charges once; never FAILED, never dead-lettered', async () => {
    const deadLetters = await watchDeadLetters(deadLetterTopicOf(TOPIC_ORDERS))
    try {
      // An amount ending in 503: the sandbox is down for this charge for SANDBOX_OUTAGE_MS.
      const down = orderPlaced(1_503)
      const healthy = orderPlaced(2_000)
      await send(down)
      await send(healthy)
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.equal(await paymentOf(down.data.orderId), undefined, 'nothing is recorded while the provider is down')
      await settles(healthy.data.orderId, 'COMPLETED')
      const payment = await settles(down.data.orderId, 'COMPLETED')
      assert.equal(Number(payment.amount), 1_503)
      await publishedFor(down.data.orderId, 1)
      assert.deepEqual(typesAbout(down.data.orderId), ['timedeal.payment.completed.v1'])
      assert.equal(deadLetters.byId.has(down.id), false)
    } finally {
      await deadLetters.close()
    }
  })

  test('a buyer reads the payments of their own orders only', async () => {
    const buyerId = uniqueName('buyer')
    const mine = orderPlaced(3_000, buyerId)
    const theirs = orderPlaced(3_500)
    await send(mine, theirs)
    await settles(mine.data.orderId, 'COMPLETED')
    await settles(theirs.data.orderId, 'COMPLETED')
    const token = await issuer.sign({ sub: buyerId, role: 'BUYER' })
    const get = (query: string) =>
      payments.app.request(`/api/payments${query}`, { headers: { authorization: `Bearer ${token}` } })

    const byOrder = await get(`?orderId=${mine.data.orderId}`)
    assert.equal(byOrder.status, 200)
    const body = (await byOrder.json()) as { items: { orderId: string; status: string; amount: number }[] }
    assert.deepEqual(
      body.items.map((item) => [item.orderId, item.status, item.amount]),
      [[mine.data.orderId, 'COMPLETED', 3_000]],
    )
    const other = (await (await get(`?orderId=${theirs.data.orderId}`)).json()) as { items: unknown[] }
    assert.deepEqual(other.items, [])
    const all = (await (await get('')).json()) as { items: { orderId: string }[] }
    assert.deepEqual(
      all.items.map((item) => item.orderId),
      [mine.data.orderId],
    )
    assert.equal((await payments.app.request('/api/payments')).status, 401)
  })

  test('documents every route in /openapi.json, and answers a bad query with problem+json', async () => {
    await assertEveryRouteDocumented(payments.app)
    const token = await issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })
    const answer = await payments.app.request('/api/payments?limit=1000', {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(answer.status, 400)
    assert.equal(answer.headers.get('content-type'), 'application/problem+json')
    const problem = (await answer.json()) as { code: string; errors: { field: string }[] }
    assert.equal(problem.code, 'VALIDATION_FAILED')
    assert.deepEqual(
      problem.errors.map((error) => error.field),
      ['limit'],
    )
  })
})
