import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { validateEvent } from '@timedeal/contracts'
import {
  commandsAllowedIn,
  isFinal,
  ORDER_STATES,
  type Order,
  type OrderCommand,
  type OrderCommandType,
  type OrderState,
  placeOrder,
  transition,
} from '../src/domain/order-state.ts'
import { toCloudEvents } from '../src/flows/orders.ts'

const placedAt = new Date('2030-01-01T10:00:00.000Z')
const later = (ms: number) => new Date(placedAt.getTime() + ms)
const DAY = 24 * 3600_000

const fresh = () =>
  placeOrder({
    id: '018f0000-0000-7000-8000-000000000001',
    buyerId: 'buyer-1',
    sellerId: 'seller-1',
    goodsId: 'goods-1',
    reservationId: 'rsv-1',
    quantity: 2,
    unitPrice: 15_000,
    at: placedAt,
    payBy: later(570_000),
  })

const commandOf = (type: OrderCommandType, at = later(1_000)): OrderCommand => {
  switch (type) {
    case 'PAY':
      return { type, at, paymentId: 'pay-1' }
    case 'FAIL':
      return { type, at, reason: 'payment failed: CARD_DECLINED' }
    case 'RETURN':
      return { type, at, returnWindowMs: 7 * DAY }
    default:
      return { type, at }
  }
}

/** Drives a fresh order through `path`, asserting each step is legal. */
function orderAfter(...path: OrderCommandType[]): Order {
  let order = fresh().order
  for (const [index, type] of path.entries()) {
    const result = transition(order, commandOf(type, later((index + 1) * 1_000)))
    assert.ok(result.ok, `${type} from ${order.state}`)
    order = result.order
  }
  return order
}

const reach: Record<OrderState, OrderCommandType[]> = {
  PENDING_PAYMENT: [],
  PAID: ['PAY'],
  FAILED: ['FAIL'],
  CANCELLED: ['CANCEL'],
  EXPIRED: ['EXPIRE'],
  SHIPPED: ['PAY', 'SHIP'],
  DELIVERED: ['PAY', 'SHIP', 'DELIVER'],
  RETURNED: ['PAY', 'SHIP', 'DELIVER', 'RETURN'],
}

describe('the order state machine', () => {
  test('a placed order waits for payment and asks for it with a valid OrderPlaced', () => {
    const { order, events } = fresh()
    assert.equal(order.state, 'PENDING_PAYMENT')
    assert.equal(order.totalAmount, 30_000)
    assert.equal(order.version, 1)
    assert.deepEqual(
      events.map((event) => event.name),
      ['orderPlaced'],
    )
    const [cloudEvent] = toCloudEvents(events, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
    assert.ok(cloudEvent)
    validateEvent(cloudEvent)
    assert.equal(cloudEvent.subject, order.id)
    assert.equal(cloudEvent.type, 'timedeal.order.placed.v1')
  })

  test('the whole legal table: exactly these commands are accepted in each state', () => {
    const legal: Record<OrderState, OrderCommandType[]> = {
      PENDING_PAYMENT: ['PAY', 'FAIL', 'CANCEL', 'EXPIRE'],
      PAID: ['CANCEL', 'SHIP'],
      SHIPPED: ['DELIVER'],
      DELIVERED: ['RETURN'],
      FAILED: [],
      CANCELLED: [],
      RETURNED: [],
      EXPIRED: [],
    }
    const all: OrderCommandType[] = ['PAY', 'FAIL', 'CANCEL', 'SHIP', 'DELIVER', 'RETURN', 'EXPIRE']
    for (const state of ORDER_STATES) {
      assert.deepEqual(commandsAllowedIn(state).sort(), [...legal[state]].sort(), state)
      const order = orderAfter(...reach[state])
      assert.equal(order.state, state)
      for (const type of all) {
        const result = transition(order, commandOf(type, later(10_000)))
        assert.equal(result.ok, legal[state].includes(type), `${type} in ${state}`)
      }
    }
  })

  test('an illegal command is INVALID_ORDER_STATE and leaves the order as it was', () => {
    const shipped = orderAfter('PAY', 'SHIP')
    const snapshot = structuredClone(shipped)
    const result = transition(shipped, commandOf('CANCEL'))
    assert.equal(result.ok, false)
    assert.ok(!result.ok)
    assert.equal(result.error.code, 'INVALID_ORDER_STATE')
    assert.equal(result.error.state, 'SHIPPED')
    assert.equal(result.error.command, 'CANCEL')
    assert.match(result.error.detail, /SHIPPED cannot be cancelled; it can only be delivered/)
    assert.deepEqual(shipped, snapshot)
  })

  test('final states accept nothing', () => {
    for (const state of ['FAILED', 'CANCELLED', 'RETURNED', 'EXPIRED'] as const) {
      assert.ok(isFinal(state))
      const result = transition(orderAfter(...reach[state]), commandOf('CANCEL'))
      assert.ok(!result.ok)
      assert.match(result.error.detail, /it is final/)
    }
  })

  test('each transition emits the event other services react to, with the order line', () => {
    const expectations: [OrderCommandType[], string | undefined][] = [
      [['PAY'], 'orderPaid'],
      [['FAIL'], 'orderFailed'],
      [['CANCEL'], 'orderCancelled'],
      [['EXPIRE'], 'orderExpired'],
      [['PAY', 'SHIP'], undefined],
      [['PAY', 'SHIP', 'DELIVER'], undefined],
      [['PAY', 'SHIP', 'DELIVER', 'RETURN'], 'orderReturned'],
    ]
    for (const [path, expected] of expectations) {
      const before = orderAfter(...path.slice(0, -1))
      const last = path.at(-1) as OrderCommandType
      const result = transition(before, commandOf(last, later(50_000)))
      assert.ok(result.ok)
      assert.deepEqual(
        result.events.map((event) => event.name),
        expected ? [expected] : [],
      )
      assert.equal(result.order.version, before.version + 1)
      assert.deepEqual(result.order.stateSince, later(50_000))
      for (const event of toCloudEvents(result.events)) {
        const valid = validateEvent(event)
        assert.deepEqual(
          { ...(valid.data as object) },
          {
            ...(valid.data as object),
            orderId: before.id,
            buyerId: 'buyer-1',
            goodsId: 'goods-1',
            reservationId: 'rsv-1',
            quantity: 2,
          },
        )
      }
    }
  })

  test('a cancellation says whether the order had been paid, so the refund is not guessed', () => {
    const unpaid = transition(orderAfter(), commandOf('CANCEL'))
    const paid = transition(orderAfter('PAY'), commandOf('CANCEL'))
    assert.ok(unpaid.ok && paid.ok)
    assert.deepEqual(
      unpaid.events.map((event) => event.name === 'orderCancelled' && event.data.wasPaid),
      [false],
    )
    assert.deepEqual(
      paid.events.map((event) => event.name === 'orderCancelled' && event.data.wasPaid),
      [true],
    )
  })

  test('paying records the payment and the time', () => {
    const result = transition(orderAfter(), { type: 'PAY', at: later(5_000), paymentId: 'pay-77' })
    assert.ok(result.ok)
    assert.equal(result.order.paymentId, 'pay-77')
    assert.deepEqual(result.order.paidAt, later(5_000))
  })

  test('a return is accepted within the return window after delivery and refused after it', () => {
    const delivered = orderAfter('PAY', 'SHIP', 'DELIVER')
    const deliveredAt = delivered.deliveredAt?.getTime() ?? 0
    const within = transition(delivered, {
      type: 'RETURN',
      at: new Date(deliveredAt + 7 * DAY),
      returnWindowMs: 7 * DAY,
    })
    assert.ok(within.ok)
    assert.equal(within.order.state, 'RETURNED')
    const late = transition(delivered, {
      type: 'RETURN',
      at: new Date(deliveredAt + 7 * DAY + 1),
      returnWindowMs: 7 * DAY,
    })
    assert.ok(!late.ok)
    assert.equal(late.error.code, 'RETURN_WINDOW_CLOSED')
  })
})
