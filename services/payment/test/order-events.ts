/** Order events as order-service publishes them, for payment-service's tests. */
import { type CloudEvent, createEvent } from '@timedeal/contracts'
import { uniqueName } from '@timedeal/platform/testing'

/** An OrderPlaced of a new order of `amount` won, as order-service publishes it. */
export function orderPlaced(amount: number, buyerId = uniqueName('buyer'), placedAt = new Date()) {
  const orderId = uniqueName('order')
  return createEvent('orderPlaced', {
    source: '/test',
    subject: orderId,
    data: {
      orderId,
      buyerId,
      goodsId: 'goods-1',
      reservationId: `rsv-${orderId}`,
      quantity: 1,
      unitPrice: amount,
      totalAmount: amount,
      placedAt: placedAt.toISOString(),
    },
  })
}

export type Ending = 'orderCancelled' | 'orderExpired' | 'orderReturned'

/** The event that ends the order `placed` placed, the way `name` says. */
export function orderEnded(name: Ending, placed: ReturnType<typeof orderPlaced>): CloudEvent {
  const { orderId, buyerId, goodsId, reservationId, quantity } = placed.data
  const line = { orderId, buyerId, goodsId, reservationId, quantity }
  const at = new Date().toISOString()
  const common = { source: '/test', subject: orderId }
  if (name === 'orderCancelled')
    return createEvent(name, { ...common, data: { ...line, wasPaid: true, cancelledAt: at } })
  if (name === 'orderExpired') return createEvent(name, { ...common, data: { ...line, expiredAt: at } })
  return createEvent(name, { ...common, data: { ...line, returnedAt: at } })
}
