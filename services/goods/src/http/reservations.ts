import { createRoute } from '@hono/zod-openapi'
import {
  createRoutes,
  isoOrNull,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  PARAMETER_PROBLEMS,
  Problem,
  problemResponses,
  type Routes,
  requireServiceCredential,
  SERVICE_CREDENTIAL_PROBLEMS,
} from '@timedeal/platform'
import type { ReservationRecord, ReservationState, ReserveRefusal } from '@timedeal/stock'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { z } from 'zod'
import type { LiveStock } from '../flows/live-stock.ts'
import type { GoodsMetrics } from '../metrics.ts'

export interface ReservationRoutesDeps {
  readonly live: LiveStock
  readonly metrics: GoodsMetrics
  readonly internalSecret: string
}

const reference = z.string().regex(/^[\x21-\x7e]{1,64}$/, 'expected 1-64 printable characters without spaces')
const goodsId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a goods id')

const reservationRequest = z.strictObject({
  reservationId: reference,
  goodsId,
  userId: reference,
  quantity: z.number().int().min(1).max(1000),
})

const confirmRequest = z.strictObject({ goodsId: goodsId.optional() })
const releaseRequest = z.strictObject({ goodsId: goodsId.optional(), reason: z.string().min(1).max(64).optional() })

const refusals: Record<ReserveRefusal | 'GOODS_NOT_FOUND', { status: ContentfulStatusCode; detail: string }> = {
  GOODS_NOT_FOUND: { status: 404, detail: 'no goods with this id' },
  SALE_NOT_OPEN: { status: 422, detail: 'the sale has not opened yet' },
  SALE_CLOSED: { status: 422, detail: 'the sale has closed' },
  PURCHASE_LIMIT_EXCEEDED: { status: 422, detail: 'this would take the user past the per-user purchase limit' },
  SOLD_OUT: { status: 409, detail: 'the goods are sold out' },
  INSUFFICIENT_STOCK: { status: 409, detail: 'fewer units are left than requested' },
  RESERVATION_CONFLICT: {
    status: 409,
    detail: 'this reservation id was already used for another goods, user or quantity',
  },
  RESERVATION_RELEASED: {
    status: 409,
    detail: 'this reservation id was released before the reservation arrived; it holds nothing',
  },
  NOT_LOADED: { status: 503, detail: 'the live stock could not be loaded; try again shortly' },
}

const belongsToOtherGoods = (id: string) =>
  new Problem({
    status: 409,
    code: 'RESERVATION_CONFLICT',
    detail: `reservation ${id} was made for other goods than the ones named`,
  })

const stockUnavailable = () =>
  new Problem({
    status: 503,
    code: 'STOCK_UNAVAILABLE',
    detail: 'the live stock could not be reached; try again shortly',
  })

function recordView(record: ReservationRecord) {
  return {
    reservationId: record.reservationId,
    goodsId: record.goodsId,
    userId: record.userId,
    quantity: record.quantity,
    state: record.state,
    reservedAt: isoOrNull(record.reservedAt),
    expiresAt: isoOrNull(record.expiresAt),
    confirmedAt: isoOrNull(record.confirmedAt),
    releasedAt: isoOrNull(record.releasedAt),
    releaseReason: record.releaseReason,
  }
}

const reservationState = z.enum(['RESERVED', 'CONFIRMED', 'RELEASED'] satisfies ReservationState[])

const reservationHeld = z.object({
  reservationId: z.string(),
  goodsId: z.string(),
  userId: z.string(),
  quantity: z.number().int(),
  state: reservationState,
  expiresAt: z.string(),
})

const reservationRecord = reservationHeld.extend({
  expiresAt: z.string().nullable(),
  reservedAt: z.string().nullable(),
  confirmedAt: z.string().nullable(),
  releasedAt: z.string().nullable(),
  releaseReason: z.string().nullable(),
})

const reservationIdPath = z.object({ id: z.string() })
const RESERVATION_NOT_FOUND = { 404: ['RESERVATION_NOT_FOUND'] } as const
const STOCK_UNAVAILABLE = { 503: ['STOCK_UNAVAILABLE'] } as const
/** What confirm and release answer besides their own conflicts. */
const RESERVATION_COMMAND_PROBLEMS = problemResponses(
  JSON_BODY_PROBLEMS,
  PARAMETER_PROBLEMS,
  SERVICE_CREDENTIAL_PROBLEMS,
  RESERVATION_NOT_FOUND,
  STOCK_UNAVAILABLE,
)

const reserve = createRoute({
  method: 'post',
  path: '/',
  summary: 'Hold units for a reservation; the same reservationId again answers the same record',
  request: { body: jsonBody(reservationRequest) },
  responses: {
    201: jsonResponse(reservationHeld, 'reserved (or this reservation, replayed)'),
    ...problemResponses(JSON_BODY_PROBLEMS, SERVICE_CREDENTIAL_PROBLEMS, STOCK_UNAVAILABLE, {
      404: ['GOODS_NOT_FOUND'],
      409: ['SOLD_OUT', 'INSUFFICIENT_STOCK', 'RESERVATION_CONFLICT', 'RESERVATION_RELEASED'],
      422: ['SALE_NOT_OPEN', 'SALE_CLOSED', 'PURCHASE_LIMIT_EXCEEDED'],
    }),
  },
})

const showReservation = createRoute({
  method: 'get',
  path: '/{id}',
  summary: 'The reservation record',
  request: { params: reservationIdPath },
  responses: {
    200: jsonResponse(reservationRecord, 'the record'),
    ...problemResponses(PARAMETER_PROBLEMS, SERVICE_CREDENTIAL_PROBLEMS, RESERVATION_NOT_FOUND, STOCK_UNAVAILABLE),
  },
})

const confirm = createRoute({
  method: 'post',
  path: '/{id}/confirm',
  summary: 'The order is paid: the reservation no longer expires',
  description: "Without goodsId the reservation's goods is looked up by id.",
  request: { params: reservationIdPath, body: jsonBody(confirmRequest, { optional: true }) },
  responses: {
    200: jsonResponse(z.object({ reservationId: z.string(), state: z.literal('CONFIRMED') }), 'confirmed'),
    ...RESERVATION_COMMAND_PROBLEMS,
    ...problemResponses({ 409: ['RESERVATION_EXPIRED', 'RESERVATION_RELEASED', 'RESERVATION_CONFLICT'] }),
  },
})

const release = createRoute({
  method: 'post',
  path: '/{id}/release',
  summary: 'Give the units back, exactly once; `released` says whether this call did it',
  description:
    "With goodsId, an id the goods has never seen is marked released for the retention period (its reserve call may still be on its way, and is then refused) and the answer is 200 with `released: false`. Without goodsId a known reservation is looked up by id, but an unknown id cannot be marked (the marker lives beside the goods' keys, and nothing says which goods): 404 RESERVATION_NOT_FOUND.",
  request: { params: reservationIdPath, body: jsonBody(releaseRequest, { optional: true }) },
  responses: {
    200: jsonResponse(
      z.object({ reservationId: z.string(), state: z.literal('RELEASED'), released: z.boolean() }),
      'released (by this call or before it)',
    ),
    ...RESERVATION_COMMAND_PROBLEMS,
    ...problemResponses({ 409: ['RESERVATION_CONFLICT'] }),
  },
})

/** Reservations confirmed in one call at most: 200 of the longest ids still fit the default 64 KiB body limit. */
export const MAX_CONFIRMATIONS = 200

const confirmationsRequest = z.strictObject({
  reservations: z
    .array(z.strictObject({ reservationId: reference, goodsId }))
    .min(1)
    .max(MAX_CONFIRMATIONS),
})

/** What became of one reservation of a batch confirm; the single route's answers, as values. */
const confirmationOutcome = z.enum(['CONFIRMED', 'EXPIRED', 'RELEASED', 'NOT_FOUND', 'CONFLICT'])
type ConfirmationOutcome = z.infer<typeof confirmationOutcome>

const confirmations = createRoute({
  method: 'post',
  path: '/confirmations',
  summary: 'Confirm many reservations at once; each answers its own outcome',
  description: `Up to ${MAX_CONFIRMATIONS} reservations, each confirmed as \`POST /{id}/confirm\` with its goodsId would be (the same script, run for all of them at once). Each outcome is a value, in the order asked: \`CONFIRMED\` (now or before), \`EXPIRED\` (its hold ran out first), \`RELEASED\`, \`NOT_FOUND\`, \`CONFLICT\` (the id belongs to other goods). When the stock of any of them cannot be reached the whole call is 503 and may be repeated: confirming is idempotent.`,
  request: { body: jsonBody(confirmationsRequest) },
  responses: {
    200: jsonResponse(
      z.object({ outcomes: z.array(z.object({ reservationId: z.string(), outcome: confirmationOutcome })) }),
      'one outcome per reservation, in the order asked',
    ),
    ...problemResponses(JSON_BODY_PROBLEMS, SERVICE_CREDENTIAL_PROBLEMS, STOCK_UNAVAILABLE),
  },
})

/** One reservation's confirm, as its outcome; a stock that cannot be loaded fails the whole call. */
async function confirmOne(live: LiveStock, reservationId: string, goodsId: string): Promise<ConfirmationOutcome> {
  const outcome = await live.confirm(reservationId, goodsId)
  switch (outcome.status) {
    case 'CONFIRMED':
      return 'CONFIRMED'
    case 'RELEASED':
      return outcome.reason === 'expired' ? 'EXPIRED' : 'RELEASED'
    case 'RESERVATION_NOT_FOUND':
      return 'NOT_FOUND'
    case 'RESERVATION_CONFLICT':
      return 'CONFLICT'
    case 'NOT_LOADED':
      throw stockUnavailable()
  }
}

/**
 * The reservation API order-service calls (never exposed publicly): reserve, confirm, release.
 * Each is one Lua script in Redis; every one of them may be retried safely.
 */
export function reservationRoutes({ live, metrics, internalSecret }: ReservationRoutesDeps): Routes {
  // Any failure that is not a refusal means Redis (or MySQL, on a cold start) did not answer.
  const routes = createRoutes({ unexpectedFailure: stockUnavailable })
  routes.use(requireServiceCredential(internalSecret))
  return routes
    .openapi(reserve, async (c) => {
      const request = c.req.valid('json')
      const outcome = await live.reserve(request)
      if (!outcome.ok) {
        metrics.reservations.inc({ outcome: outcome.refusal })
        const refusal = refusals[outcome.refusal]
        const available = 'available' in outcome ? outcome.available : null
        throw new Problem({
          status: refusal.status,
          code: outcome.refusal === 'NOT_LOADED' ? 'STOCK_UNAVAILABLE' : outcome.refusal,
          detail: refusal.detail,
          extensions: available === null ? {} : { stockAvailable: Math.max(0, available) },
        })
      }
      metrics.reservations.inc({ outcome: outcome.replayed ? 'REPLAYED' : 'RESERVED' })
      return c.json(
        {
          reservationId: request.reservationId,
          goodsId: request.goodsId,
          userId: request.userId,
          quantity: request.quantity,
          state: outcome.state,
          expiresAt: new Date(outcome.expiresAt).toISOString(),
        },
        201,
      )
    })
    .openapi(showReservation, async (c) => {
      const { id } = c.req.valid('param')
      const record = await live.store.reservation(id)
      if (!record) throw reservationNotFound(id)
      return c.json(recordView(record), 200)
    })
    .openapi(confirm, async (c) => {
      const { id } = c.req.valid('param')
      // Sent without a body it is `{}`, not parsed: parsing it here gives the schema's shape either way.
      const { goodsId } = confirmRequest.parse(c.req.valid('json'))
      const outcome = await live.confirm(id, goodsId)
      switch (outcome.status) {
        case 'CONFIRMED':
          return c.json({ reservationId: id, state: 'CONFIRMED' as const }, 200)
        case 'RELEASED':
          if (outcome.reason === 'expired') {
            throw new Problem({
              status: 409,
              code: 'RESERVATION_EXPIRED',
              detail: 'the reservation expired before it was confirmed',
            })
          }
          throw new Problem({
            status: 409,
            code: 'RESERVATION_RELEASED',
            detail: 'the reservation was released; it cannot be confirmed',
          })
        case 'RESERVATION_NOT_FOUND':
          throw reservationNotFound(id)
        case 'RESERVATION_CONFLICT':
          throw belongsToOtherGoods(id)
        case 'NOT_LOADED':
          throw stockUnavailable()
      }
    })
    .openapi(release, async (c) => {
      const { id } = c.req.valid('param')
      const { goodsId, reason } = releaseRequest.parse(c.req.valid('json'))
      const outcome = await live.release(id, { ...(goodsId ? { goodsId } : {}), ...(reason ? { reason } : {}) })
      switch (outcome.status) {
        case 'RELEASED':
          // The free-text reason stays on the record; a metric label must come from a small set.
          if (outcome.changed) metrics.releases.inc({ reason: 'released' })
          return c.json({ reservationId: id, state: 'RELEASED' as const, released: outcome.changed }, 200)
        case 'MARKED':
          return c.json({ reservationId: id, state: 'RELEASED' as const, released: false }, 200)
        case 'RESERVATION_NOT_FOUND':
          throw reservationNotFound(id)
        case 'RESERVATION_CONFLICT':
          throw belongsToOtherGoods(id)
        case 'NOT_DUE':
        case 'NOT_LOADED':
          throw stockUnavailable()
      }
    })
    .openapi(confirmations, async (c) => {
      const { reservations } = c.req.valid('json')
      // All scripts are sent at once: Redis answers them in one stream, not one round trip each.
      const outcomes = await Promise.all(
        reservations.map(async ({ reservationId, goodsId }) => ({
          reservationId,
          outcome: await confirmOne(live, reservationId, goodsId),
        })),
      )
      return c.json({ outcomes }, 200)
    })
}

const reservationNotFound = (id: string) =>
  new Problem({ status: 404, code: 'RESERVATION_NOT_FOUND', detail: `no reservation with id ${id}` })
