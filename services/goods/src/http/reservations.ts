import {
  type AppEnv,
  type Logger,
  Problem,
  problemResponse,
  readJson,
  requireServiceCredential,
  validate,
} from '@timedeal/platform'
import type { ReservationRecord, ReserveRefusal } from '@timedeal/stock'
import { Hono } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { z } from 'zod'
import type { LiveStock } from '../flows/live-stock.ts'
import type { GoodsMetrics } from '../metrics.ts'

export interface ReservationRoutesDeps {
  readonly live: LiveStock
  readonly metrics: GoodsMetrics
  readonly internalSecret: string
  readonly logger: Logger
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

/** The body of a call whose fields are all optional: no body at all reads as `{}`. */
async function optionalJson(request: Request): Promise<unknown> {
  const text = await request.text()
  if (text.trim() === '') return {}
  if (!(request.headers.get('content-type') ?? '').includes('json')) {
    throw new Problem({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', detail: 'send the body as application/json' })
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new Problem({ status: 400, code: 'MALFORMED_JSON', detail: 'the request body is not valid JSON' })
  }
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
  const instant = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
  return {
    reservationId: record.reservationId,
    goodsId: record.goodsId,
    userId: record.userId,
    quantity: record.quantity,
    state: record.state,
    reservedAt: instant(record.reservedAt),
    expiresAt: instant(record.expiresAt),
    confirmedAt: instant(record.confirmedAt),
    releasedAt: instant(record.releasedAt),
    releaseReason: record.releaseReason,
  }
}

/**
 * The reservation API order-service calls (never exposed publicly): reserve, confirm, release.
 * Each is one Lua script in Redis; every one of them may be retried safely.
 */
export function reservationRoutes({ live, metrics, internalSecret, logger }: ReservationRoutesDeps) {
  return (
    new Hono<AppEnv>()
      .use(requireServiceCredential(internalSecret))
      // Any failure that is not a refusal means Redis (or MySQL, on a cold start) did not answer.
      .onError((error, c) => {
        if (error instanceof Problem) return problemResponse(error, c.req.path)
        ;(c.get('logger') ?? logger).error({ err: error, path: c.req.path }, 'reservation request failed')
        return problemResponse(stockUnavailable(), c.req.path)
      })
      .post('/', async (c) => {
        const request = validate(reservationRequest, await readJson(c.req.raw), 'reservation')
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
      .get('/:id', async (c) => {
        const record = await live.store.reservation(c.req.param('id'))
        if (!record) throw reservationNotFound(c.req.param('id'))
        return c.json(recordView(record))
      })
      // The body's goodsId is optional: without it the reservation's goods is looked up by id.
      .post('/:id/confirm', async (c) => {
        const id = c.req.param('id')
        const { goodsId } = validate(confirmRequest, await optionalJson(c.req.raw), 'confirm')
        const outcome = await live.confirm(id, goodsId)
        switch (outcome.status) {
          case 'CONFIRMED':
            return c.json({ reservationId: id, state: 'CONFIRMED' })
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
      // `{goodsId, reason?}`. With the goods, an id it has never seen is marked released for the
      // retention period (its reserve call may still be on its way, and is then refused) and the
      // answer is 200 with `released: false`. Without the goods a known reservation is looked up
      // by id as before, but an unknown id cannot be marked (the marker lives beside the goods'
      // keys, and nothing says which goods): it answers 404 RESERVATION_NOT_FOUND.
      .post('/:id/release', async (c) => {
        const id = c.req.param('id')
        const { goodsId, reason } = validate(releaseRequest, await optionalJson(c.req.raw), 'release')
        const outcome = await live.release(id, { ...(goodsId ? { goodsId } : {}), ...(reason ? { reason } : {}) })
        switch (outcome.status) {
          case 'RELEASED':
            // The free-text reason stays on the record; a metric label must come from a small set.
            if (outcome.changed) metrics.releases.inc({ reason: 'released' })
            return c.json({ reservationId: id, state: 'RELEASED', released: outcome.changed })
          case 'MARKED':
            return c.json({ reservationId: id, state: 'RELEASED', released: false })
          case 'RESERVATION_NOT_FOUND':
            throw reservationNotFound(id)
          case 'RESERVATION_CONFLICT':
            throw belongsToOtherGoods(id)
          case 'NOT_DUE':
          case 'NOT_LOADED':
            throw stockUnavailable()
        }
      })
  )
}

const reservationNotFound = (id: string) =>
  new Problem({ status: 404, code: 'RESERVATION_NOT_FOUND', detail: `no reservation with id ${id}` })
