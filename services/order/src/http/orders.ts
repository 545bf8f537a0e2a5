import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  forwardedHeaders,
  isoOrNull,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  PARAMETER_PROBLEMS,
  Problem,
  problemResponses,
  ROLE_PROBLEMS,
  type Routes,
  requireRole,
  type TokenVerifier,
} from '@timedeal/platform'
import { z } from 'zod'
import { ORDER_STATES, type Order, type OrderCommand } from '../domain/order-state.ts'
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

const placeHeaders = z.object({
  'idempotency-key': z
    .string({ error: 'send an Idempotency-Key header' })
    .regex(/^[\x21-\x7e]{1,128}$/, 'expected 1-128 printable characters without spaces')
    .meta({ description: 'One outcome per key: a retry with the same key answers the same order or refusal.' }),
})

const pageQuery = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
})

const orderParams = z.object({ id: z.string().meta({ description: 'The order id' }) })

const instantView = z.iso.datetime().nullable()

const orderSchema = z.object({
  id: z.string(),
  buyerId: z.string(),
  sellerId: z.string(),
  goodsId: z.string(),
  quantity: z.number().int(),
  unitPrice: z.number().int().meta({ description: 'Whole won (KRW).' }),
  totalAmount: z.number().int().meta({ description: 'Whole won (KRW).' }),
  state: z.enum(ORDER_STATES),
  version: z.number().int(),
  paymentId: z.string().nullable(),
  failureReason: z.string().nullable(),
  placedAt: z.iso.datetime(),
  payBy: z.iso.datetime(),
  paidAt: instantView,
  failedAt: instantView,
  cancelledAt: instantView,
  shippedAt: instantView,
  deliveredAt: instantView,
  returnedAt: instantView,
  expiredAt: instantView,
})

const orderPage = z.object({
  items: z.array(orderSchema),
  nextCursor: z.string().nullable().meta({ description: 'Send as `cursor` for the next page; null on the last.' }),
})

// A cursor is the last order id a page showed, opaque to clients.
const encodeCursor = (id: string) => Buffer.from(id).toString('base64url')
function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  const id = Buffer.from(cursor, 'base64url').toString()
  if (!/^[0-9a-f-]{36}$/.test(id)) {
    throw new Problem({ status: 400, code: 'INVALID_CURSOR', detail: 'the cursor is not one this API gave' })
  }
  return id
}

/** What the API shows of an order. */
export function orderView(order: Order): z.infer<typeof orderSchema> {
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
    paidAt: isoOrNull(order.paidAt),
    failedAt: isoOrNull(order.failedAt),
    cancelledAt: isoOrNull(order.cancelledAt),
    shippedAt: isoOrNull(order.shippedAt),
    deliveredAt: isoOrNull(order.deliveredAt),
    returnedAt: isoOrNull(order.returnedAt),
    expiredAt: isoOrNull(order.expiredAt),
  }
}

/** Orders are seen by their buyer and by the seller of their goods; to anyone else they do not exist. */
const canSee = (order: Order, caller: AuthedEnv['Variables']['caller']) =>
  caller.role === 'BUYER' ? order.buyerId === caller.id : order.sellerId === caller.id

const placeOrder = createRoute({
  method: 'post',
  path: '/',
  summary: 'Place an order: hold the units at goods-service and wait for payment',
  middleware: [requireRole('BUYER')] as const,
  request: { headers: placeHeaders, body: jsonBody(placeBody) },
  responses: {
    201: jsonResponse(orderSchema, 'the order, placed; `location` names it'),
    200: jsonResponse(orderSchema, 'the order this Idempotency-Key placed before (`idempotent-replayed: true`)'),
    ...problemResponses(JSON_BODY_PROBLEMS, PARAMETER_PROBLEMS, AUTH_PROBLEMS, ROLE_PROBLEMS, {
      404: ['GOODS_NOT_FOUND'],
      409: ['SOLD_OUT', 'INSUFFICIENT_STOCK'],
      422: ['IDEMPOTENCY_KEY_REUSED', 'SALE_NOT_OPEN', 'SALE_CLOSED', 'PURCHASE_LIMIT_EXCEEDED'],
      429: ['TOO_MANY_PENDING_ORDERS'],
      503: ['GOODS_UNAVAILABLE', 'PLACEMENT_IN_PROGRESS'],
    }),
  },
})

const listOrders = createRoute({
  method: 'get',
  path: '/',
  summary: "The caller's orders, newest first: a buyer's own, or those of a seller's goods",
  request: { query: pageQuery },
  responses: {
    200: jsonResponse(orderPage, 'one page of orders'),
    ...problemResponses(PARAMETER_PROBLEMS, AUTH_PROBLEMS, { 400: ['INVALID_CURSOR'] }),
  },
})

const showOrder = createRoute({
  method: 'get',
  path: '/{id}',
  summary: 'One order, to its buyer or the seller of its goods',
  request: { params: orderParams },
  responses: {
    200: jsonResponse(orderSchema, 'the order'),
    ...problemResponses(PARAMETER_PROBLEMS, AUTH_PROBLEMS, { 404: ['ORDER_NOT_FOUND'] }),
  },
})

/** A state change asked for by a party of the order; `refusals` are what the state machine may answer besides 409. */
const commandRoute = (action: string, party: 'BUYER' | 'SELLER', summary: string, refusals = {}) =>
  createRoute({
    method: 'post',
    path: `/{id}/${action}`,
    summary,
    middleware: [requireRole(party)] as const,
    request: { params: orderParams },
    responses: {
      200: jsonResponse(orderSchema, 'the order after the change'),
      ...problemResponses(PARAMETER_PROBLEMS, AUTH_PROBLEMS, ROLE_PROBLEMS, refusals, {
        404: ['ORDER_NOT_FOUND'],
        409: ['INVALID_ORDER_STATE'],
      }),
    },
  })

const cancelOrder = commandRoute('cancel', 'BUYER', 'Cancel an order before it ships (a paid one is refunded)')
const returnOrder = commandRoute('return', 'BUYER', 'Return a delivered order within the return window', {
  422: ['RETURN_WINDOW_CLOSED'],
} as const)
const shipOrder = commandRoute('ship', 'SELLER', 'Mark a paid order shipped')
const deliverOrder = commandRoute('deliver', 'SELLER', 'Mark a shipped order delivered')

/** `/api/orders`: placing orders, reading them, and the commands their buyer and seller give. */
export const orderRoutes = ({ orders, verifier, returnWindowMs }: OrderRoutesDeps): Routes<AuthedEnv> => {
  /** Applies `command` to the order `id` if the caller is its `party`; to anyone else it does not exist. */
  const command = async (
    c: { var: AuthedEnv['Variables'] },
    id: string,
    party: 'BUYER' | 'SELLER',
    make: (at: Date) => OrderCommand,
  ) => {
    const caller = c.var.caller
    const order = await orders.apply(id, make(new Date()), {
      traceparent: c.var.traceparent,
      authorize: (current) => {
        const owner = party === 'BUYER' ? current.buyerId : current.sellerId
        if (owner !== caller.id) throw orderNotFound(id)
      },
    })
    return orderView(order)
  }

  const routes = createRoutes<AuthedEnv>()
  routes.use(authenticate(verifier))
  return routes
    .openapi(placeOrder, async (c) => {
      const body = c.req.valid('json')
      const { order, created } = await orders.place({
        buyerId: c.var.caller.id,
        goodsId: body.goodsId,
        quantity: body.quantity,
        idempotencyKey: c.req.valid('header')['idempotency-key'],
        traceparent: c.var.traceparent,
        context: forwardedHeaders(c),
      })
      const location = `/api/orders/${order.id}`
      if (created) return c.json(orderView(order), 201, { location })
      return c.json(orderView(order), 200, { location, 'idempotent-replayed': 'true' })
    })
    .openapi(listOrders, async (c) => {
      const query = c.req.valid('query')
      const caller = c.var.caller
      const party = caller.role === 'BUYER' ? { buyerId: caller.id } : { sellerId: caller.id }
      const afterId = decodeCursor(query.cursor)
      const page = await orders.list(party, { limit: query.limit, ...(afterId ? { afterId } : {}) })
      return c.json(
        { items: page.orders.map(orderView), nextCursor: page.lastId ? encodeCursor(page.lastId) : null },
        200,
      )
    })
    .openapi(showOrder, async (c) => {
      const { id } = c.req.valid('param')
      const order = await orders.find(id)
      if (!order || !canSee(order, c.var.caller)) throw orderNotFound(id)
      return c.json(orderView(order), 200)
    })
    .openapi(cancelOrder, async (c) =>
      c.json(await command(c, c.req.valid('param').id, 'BUYER', (at) => ({ type: 'CANCEL', at })), 200),
    )
    .openapi(returnOrder, async (c) =>
      c.json(await command(c, c.req.valid('param').id, 'BUYER', (at) => ({ type: 'RETURN', at, returnWindowMs })), 200),
    )
    .openapi(shipOrder, async (c) =>
      c.json(await command(c, c.req.valid('param').id, 'SELLER', (at) => ({ type: 'SHIP', at })), 200),
    )
    .openapi(deliverOrder, async (c) =>
      c.json(await command(c, c.req.valid('param').id, 'SELLER', (at) => ({ type: 'DELIVER', at })), 200),
    )
}
