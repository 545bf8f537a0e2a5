/**
 * The order state machine. Every change of an order's state goes through {@link transition}: the
 * one place that knows which command is legal in which state and which events it emits. It is a
 * pure function (time and ids come in with the command), so it is tested without any server.
 */
import type { EventData } from '@timedeal/contracts'

export const ORDER_STATES = [
  'PENDING_PAYMENT',
  'PAID',
  'FAILED',
  'CANCELLED',
  'SHIPPED',
  'DELIVERED',
  'RETURNED',
  'EXPIRED',
] as const
export type OrderState = (typeof ORDER_STATES)[number]

export interface Order {
  readonly id: string
  readonly buyerId: string
  readonly sellerId: string
  readonly goodsId: string
  readonly reservationId: string
  readonly quantity: number
  /** Whole won (KRW), taken from the catalog when the order was placed. */
  readonly unitPrice: number
  readonly totalAmount: number
  readonly state: OrderState
  /** Goes up with every change; the API shows it so clients can tell two snapshots apart. */
  readonly version: number
  readonly paymentId: string | null
  readonly failureReason: string | null
  readonly placedAt: Date
  /**
   * The payment deadline: an order still unpaid then expires. It comes from the reservation's
   * own hold, ending shortly before it, so the order never outlives its units.
   */
  readonly payBy: Date
  readonly paidAt: Date | null
  readonly failedAt: Date | null
  readonly cancelledAt: Date | null
  readonly shippedAt: Date | null
  readonly deliveredAt: Date | null
  readonly returnedAt: Date | null
  readonly expiredAt: Date | null
  /** When the order entered its current state; the schedulers select on it. */
  readonly stateSince: Date
}

export type OrderCommand =
  | { readonly type: 'PAY'; readonly at: Date; readonly paymentId: string }
  | { readonly type: 'FAIL'; readonly at: Date; readonly reason: string }
  | { readonly type: 'CANCEL'; readonly at: Date }
  | { readonly type: 'SHIP'; readonly at: Date }
  | { readonly type: 'DELIVER'; readonly at: Date }
  | { readonly type: 'RETURN'; readonly at: Date; readonly returnWindowMs: number }
  | { readonly type: 'EXPIRE'; readonly at: Date }
export type OrderCommandType = OrderCommand['type']

/** The events an order emits, by their catalog name, with data the catalog's schema accepts. */
export type OrderEventName =
  | 'orderPlaced'
  | 'orderPaid'
  | 'orderFailed'
  | 'orderCancelled'
  | 'orderExpired'
  | 'orderReturned'
export type OrderEvent = { [N in OrderEventName]: { readonly name: N; readonly data: EventData<N> } }[OrderEventName]

export type OrderStateErrorCode = 'INVALID_ORDER_STATE' | 'RETURN_WINDOW_CLOSED'

export interface OrderStateError {
  readonly code: OrderStateErrorCode
  readonly detail: string
  readonly state: OrderState
  readonly command: OrderCommandType
}

export type Transition =
  | { readonly ok: true; readonly order: Order; readonly events: readonly OrderEvent[] }
  | { readonly ok: false; readonly error: OrderStateError }

/**
 * Which command moves an order from which state to which. A pair missing here is illegal;
 * FAILED, CANCELLED, RETURNED and EXPIRED are final.
 */
const LEGAL: Readonly<Record<OrderState, Partial<Record<OrderCommandType, OrderState>>>> = {
  PENDING_PAYMENT: { PAY: 'PAID', FAIL: 'FAILED', CANCEL: 'CANCELLED', EXPIRE: 'EXPIRED' },
  PAID: { CANCEL: 'CANCELLED', SHIP: 'SHIPPED' },
  SHIPPED: { DELIVER: 'DELIVERED' },
  DELIVERED: { RETURN: 'RETURNED' },
  FAILED: {},
  CANCELLED: {},
  RETURNED: {},
  EXPIRED: {},
}

/** The commands an order in `state` accepts. */
export function commandsAllowedIn(state: OrderState): OrderCommandType[] {
  return Object.keys(LEGAL[state]) as OrderCommandType[]
}

export function isFinal(state: OrderState): boolean {
  return commandsAllowedIn(state).length === 0
}

export interface NewOrder
  extends Pick<
    Order,
    'id' | 'buyerId' | 'sellerId' | 'goodsId' | 'reservationId' | 'quantity' | 'unitPrice' | 'payBy'
  > {
  readonly at: Date
}

/** A new order waiting for its payment, and the OrderPlaced event that asks for the charge. */
export function placeOrder(input: NewOrder): { order: Order; events: readonly OrderEvent[] } {
  const order: Order = {
    id: input.id,
    buyerId: input.buyerId,
    sellerId: input.sellerId,
    goodsId: input.goodsId,
    reservationId: input.reservationId,
    quantity: input.quantity,
    unitPrice: input.unitPrice,
    totalAmount: input.unitPrice * input.quantity,
    state: 'PENDING_PAYMENT',
    version: 1,
    paymentId: null,
    failureReason: null,
    placedAt: input.at,
    payBy: input.payBy,
    paidAt: null,
    failedAt: null,
    cancelledAt: null,
    shippedAt: null,
    deliveredAt: null,
    returnedAt: null,
    expiredAt: null,
    stateSince: input.at,
  }
  const placed: OrderEvent = {
    name: 'orderPlaced',
    data: {
      ...orderLine(order),
      unitPrice: order.unitPrice,
      totalAmount: order.totalAmount,
      placedAt: input.at.toISOString(),
    },
  }
  return { order, events: [placed] }
}

/**
 * Applies `command` to `order`: the order after it and the events to publish with it, or an
 * error when the command is not legal in the order's state (then nothing changes).
 */
export function transition(order: Order, command: OrderCommand): Transition {
  const next = LEGAL[order.state][command.type]
  if (!next) {
    return refuse(order, command, 'INVALID_ORDER_STATE', invalidDetail(order.state, command.type))
  }
  if (command.type === 'RETURN') {
    const deliveredAt = order.deliveredAt?.getTime() ?? command.at.getTime()
    if (command.at.getTime() - deliveredAt > command.returnWindowMs) {
      return refuse(order, command, 'RETURN_WINDOW_CLOSED', 'the period for returning this order has ended')
    }
  }
  const moved = { ...order, state: next, version: order.version + 1, stateSince: command.at }
  const line = orderLine(order)
  const at = command.at.toISOString()
  switch (command.type) {
    case 'PAY':
      return accept({ ...moved, paymentId: command.paymentId, paidAt: command.at }, [
        { name: 'orderPaid', data: { ...line, paymentId: command.paymentId, paidAt: at } },
      ])
    case 'FAIL':
      return accept({ ...moved, failureReason: command.reason, failedAt: command.at }, [
        { name: 'orderFailed', data: { ...line, reason: command.reason, failedAt: at } },
      ])
    case 'CANCEL':
      return accept({ ...moved, cancelledAt: command.at }, [
        { name: 'orderCancelled', data: { ...line, wasPaid: order.state === 'PAID', cancelledAt: at } },
      ])
    case 'EXPIRE':
      return accept({ ...moved, expiredAt: command.at }, [{ name: 'orderExpired', data: { ...line, expiredAt: at } }])
    case 'RETURN':
      return accept({ ...moved, returnedAt: command.at }, [
        { name: 'orderReturned', data: { ...line, returnedAt: at } },
      ])
    // Shipping and delivery concern the buyer and seller only: no other service reacts to them.
    case 'SHIP':
      return accept({ ...moved, shippedAt: command.at }, [])
    case 'DELIVER':
      return accept({ ...moved, deliveredAt: command.at }, [])
  }
}

function orderLine(order: Order) {
  return {
    orderId: order.id,
    buyerId: order.buyerId,
    goodsId: order.goodsId,
    reservationId: order.reservationId,
    quantity: order.quantity,
  }
}

const accept = (order: Order, events: readonly OrderEvent[]): Transition => ({ ok: true, order, events })

function refuse(order: Order, command: OrderCommand, code: OrderStateErrorCode, detail: string): Transition {
  return { ok: false, error: { code, detail, state: order.state, command: command.type } }
}

const verbs: Record<OrderCommandType, string> = {
  PAY: 'be paid',
  FAIL: 'fail',
  CANCEL: 'be cancelled',
  SHIP: 'be shipped',
  DELIVER: 'be delivered',
  RETURN: 'be returned',
  EXPIRE: 'expire',
}

function invalidDetail(state: OrderState, command: OrderCommandType): string {
  const allowed = commandsAllowedIn(state)
  const hint = allowed.length === 0 ? 'it is final' : `it can only ${allowed.map((type) => verbs[type]).join(' or ')}`
  return `an order in state ${state} cannot ${verbs[command]}; ${hint}`
}
