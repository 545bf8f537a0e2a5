import {
  type AuthedEnv,
  authenticate,
  forwardedHeaders,
  Problem,
  readJson,
  requireRole,
  type TokenVerifier,
  validate,
} from '@timedeal/platform'
import { type Context, Hono } from 'hono'
import { z } from 'zod'
import type { Order, OrderCommand } from '../domain/order-state.ts'
import { type Orders, orderNotFound } from '../flows/orders.ts'

export interface OrderRoutesDeps {
  readonly orders: Orders
  readonly verifier: TokenVerifier
  readonly returnWindowMs: number
}

const placeBody = z.strictObject({
  goodsId: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a goods id'),
  quantity: z.number().int().min(1).max(1000),
})

const idempotencyKey = z
  .string({ error: 'send an Idempotency-Key header' })
  .regex(/^[\x21-\x7e]{1,128}$/, 'expected 1-128 printable characters without spaces')

const pageQuery = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
})

// A cursor is the last order id a page showed, opaque to clients.
const encodeCursor = (id: string) => Buffer.from(id).toString('base64url')
function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  const id = Buffer.from(cursor, 'base64url').toString()
  if (!/^[0-9a-f-]{36}$/.test(id))
    throw new Problem({ status: 400, code: 'INVALID_CURSOR', detail: 'the cursor is not one this API gave' })
  return id
}

const instant = (value: Date | null) => (value ? value.toISOString() : null)

/** What the API shows of an order. */
export function orderView(order: Order) {
  return {
    id: order.id,
    buyerId: order.buyerId,
    sellerId: order.sellerId,
    goodsId: order.goodsId,
    quantity: order.quantity,
    unitPrice: order.unitPrice,
    totalAmount: order.totalAmount,
    state: order.state,
    version: order.version,
    paymentId: order.paymentId,
    failureReason: order.failureReason,
    placedAt: order.placedAt.toISOString(),
    payBy: order.payBy.toISOString(),
    paidAt: instant(order.paidAt),
    failedAt: instant(order.failedAt),
    cancelledAt: instant(order.cancelledAt),
    shippedAt: instant(order.shippedAt),
    deliveredAt: instant(order.deliveredAt),
    returnedAt: instant(order.returnedAt),
    expiredAt: instant(order.expiredAt),
  }
}

/** Orders are seen by their buyer and by the seller of their goods; to anyone else they do not exist. */
const canSee = (order: Order, caller: AuthedEnv['Variables']['caller']) =>
  caller.role === 'BUYER' ? order.buyerId === caller.id : order.sellerId === caller.id

/** `/api/orders`: placing orders, reading them, and the commands their buyer and seller give. */
export const orderRoutes = ({ orders, verifier, returnWindowMs }: OrderRoutesDeps): Hono<AuthedEnv> => {
  /** A command on one order by a party of it: the buyer, or the seller of its goods. */
  const command = (party: 'BUYER' | 'SELLER', make: (at: Date) => OrderCommand) => async (c: Context<AuthedEnv>) => {
    const caller = c.var.caller
    const id = c.req.param('id') ?? ''
    const order = await orders.apply(id, make(new Date()), {
      traceparent: c.var.traceparent,
      authorize: (current) => {
        const owner = party === 'BUYER' ? current.buyerId : current.sellerId
        if (owner !== caller.id) throw orderNotFound(id)
      },
    })
    return c.json(orderView(order))
  }

  return new Hono<AuthedEnv>()
    .use(authenticate(verifier))
    .post('/', requireRole('BUYER'), async (c) => {
      const key = validate(idempotencyKey, c.req.header('idempotency-key'), 'Idempotency-Key header')
      const body = validate(placeBody, await readJson(c.req.raw), 'order')
      const { order, created } = await orders.place({
        buyerId: c.var.caller.id,
        goodsId: body.goodsId,
        quantity: body.quantity,
        idempotencyKey: key,
        traceparent: c.var.traceparent,
        context: forwardedHeaders(c),
      })
      const headers = { location: `/api/orders/${order.id}`, ...(created ? {} : { 'idempotent-replayed': 'true' }) }
      return c.json(orderView(order), created ? 201 : 200, headers)
    })
    .get('/', async (c) => {
      const query = validate(pageQuery, c.req.query(), 'query')
      const caller = c.var.caller
      const party = caller.role === 'BUYER' ? { buyerId: caller.id } : { sellerId: caller.id }
      const afterId = decodeCursor(query.cursor)
      const page = await orders.list(party, { limit: query.limit, ...(afterId ? { afterId } : {}) })
      return c.json({
        items: page.orders.map(orderView),
        nextCursor: page.lastId ? encodeCursor(page.lastId) : null,
      })
    })
    .get('/:id', async (c) => {
      const id = c.req.param('id')
      const order = await orders.find(id)
      if (!order || !canSee(order, c.var.caller)) throw orderNotFound(id)
      return c.json(orderView(order))
    })
    .post(
      '/:id/cancel',
      requireRole('BUYER'),
      command('BUYER', (at) => ({ type: 'CANCEL', at })),
    )
    .post(
      '/:id/return',
      requireRole('BUYER'),
      command('BUYER', (at) => ({ type: 'RETURN', at, returnWindowMs })),
    )
    .post(
      '/:id/ship',
      requireRole('SELLER'),
      command('SELLER', (at) => ({ type: 'SHIP', at })),
    )
    .post(
      '/:id/deliver',
      requireRole('SELLER'),
      command('SELLER', (at) => ({ type: 'DELIVER', at })),
    )
}
