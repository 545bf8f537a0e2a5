/**
 * OrderPlaced in a burst: payment-service charges a polled batch's orders together and records
 * them in one transaction, each order once.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type CloudEvent, TOPIC_ORDERS } from '@timedeal/contracts'
import type { EventPublisher } from '@timedeal/platform'
import { eventually } from '@timedeal/platform/testing'
import { orderPlaced } from './order-events.ts'
import { type PaymentHarness, startPaymentHarness, type TestPaymentService, waitForGroupsPast } from './support.ts'

describe('payment-service charges a batch of orders at once (real MariaDB and Kafka)', () => {
  let harness: PaymentHarness
  let payments: TestPaymentService
  let publisher: EventPublisher
  let published: CloudEvent[]

  before(async () => {
    harness = await startPaymentHarness({
      // Long enough that the rest of the burst is charged well before the provider is back.
      SANDBOX_OUTAGE_MS: '8000',
      SANDBOX_LATENCY_MS: '20',
      CONSUMER_RETRY_BACKOFF_MS: '50',
    })
    ;({ payments, publisher, published } = harness)
  })

  after(() => harness?.stop())

  const statusesOf = async (orderIds: readonly string[]) =>
    payments.rows<{ order_id: string; status: string }>(
      'SELECT order_id, status FROM payments WHERE order_id IN (:orderIds)',
      { orderIds },
    )

  test('a charge the provider cannot make yet holds back only its own order: the rest of its batch is charged and recorded once each', async () => {
    // An amount ending in 503: the sandbox is down for this charge for SANDBOX_OUTAGE_MS. It goes
    // first, so whatever shares its partition comes after it.
    const down = orderPlaced(1_503)
    const others = Array.from({ length: 40 }, (_, index) => orderPlaced(1_000 + index * 10))
    const otherIds = others.map((event) => event.data.orderId)
    await publisher.publish(TOPIC_ORDERS, [down, ...others])

    await eventually(
      async () => ((await statusesOf(otherIds)).length === others.length ? true : undefined),
      20_000,
      'the rest of the burst charged',
    )
    assert.equal(await payments.paymentOf(down.data.orderId), undefined, 'the charge that must wait is not recorded')

    await payments.settles(down.data.orderId, 'COMPLETED')
    // The whole burst again, as a relay that published twice would send it: nothing changes.
    const receipts = await publisher.publish(TOPIC_ORDERS, [down, ...others])
    const lastPerPartition = new Map(receipts.map((receipt) => [receipt.partition, receipt]))
    for (const receipt of lastPerPartition.values()) await waitForGroupsPast([payments.groupId], receipt)

    const rows = await statusesOf([down.data.orderId, ...otherIds])
    assert.equal(rows.length, others.length + 1)
    assert.ok(
      rows.every((row) => row.status === 'COMPLETED'),
      JSON.stringify(rows.filter((row) => row.status !== 'COMPLETED')),
    )
    const ids = new Set([down.data.orderId, ...otherIds])
    await eventually(
      async () => (published.filter((event) => ids.has(event.subject ?? '')).length >= ids.size ? true : undefined),
      20_000,
      'one PaymentCompleted per order',
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    const events = published.filter((event) => ids.has(event.subject ?? ''))
    assert.equal(events.length, ids.size, 'one payment event per order, none twice')
    assert.ok(events.every((event) => event.type === 'timedeal.payment.completed.v1'))
  })
})
