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
import type { LiveStock } from '../adapters/live-stock.ts'
import type { StockMetrics } from '../adapters/metrics.ts'

export interface ReservationRoutesDeps {
  readonly live: LiveStock
  readonly metrics: StockMetrics
  readonly internalSecret: string
  readonly logger: Logger
}

const reference = z.string().regex(/^[\x21-\x7e]{1,64}$/, 'expected 1-64 printable characters without spaces')

const reservationRequest = z.strictObject({
  reservationId: reference,
  goodsId: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a goods id'),
  userId: reference,
  quantity: z.number().int().min(1).max(1000),
})

const releaseRequest = z.strictObject({ reason: z.string().min(1).max(64).optional() })

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
  NOT_LOADED: { status: 503, detail: 'the live stock could not be loaded; try again shortly' },
}

const stockUnavailable = () =>
  new Problem(503, 'STOCK_UNAVAILABLE', 'the live stock could not be reached; try again shortly')

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
          throw new Problem(
            refusal.status,
            outcome.refusal === 'NOT_LOADED' ? 'STOCK_UNAVAILABLE' : outcome.refusal,
            refusal.detail,
            available === null ? {} : { stockAvailable: Math.max(0, available) },
          )
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
      .post('/:id/confirm', async (c) => {
        const id = c.req.param('id')
        const outcome = await live.confirm(id)
        switch (outcome.status) {
          case 'CONFIRMED':
            return c.json({ reservationId: id, state: 'CONFIRMED' })
          case 'RELEASED':
            if (outcome.reason === 'expired') {
              throw new Problem(409, 'RESERVATION_EXPIRED', 'the reservation expired before it was confirmed')
            }
            throw new Problem(409, 'RESERVATION_RELEASED', 'the reservation was released; it cannot be confirmed')
          case 'RESERVATION_NOT_FOUND':
            throw reservationNotFound(id)
          case 'NOT_LOADED':
            throw stockUnavailable()
        }
      })
      .post('/:id/release', async (c) => {
        const id = c.req.param('id')
        const hasBody = (c.req.header('content-length') ?? '0') !== '0' || c.req.header('transfer-encoding')
        const { reason } = hasBody ? validate(releaseRequest, await readJson(c.req.raw), 'release') : {}
        const outcome = await live.release(id, reason ? { reason } : {})
        switch (outcome.status) {
          case 'RELEASED':
            // The free-text reason stays on the record; a metric label must come from a small set.
            if (outcome.changed) metrics.releases.inc({ reason: 'released' })
            return c.json({ reservationId: id, state: 'RELEASED', released: outcome.changed })
          case 'RESERVATION_NOT_FOUND':
            throw reservationNotFound(id)
          case 'NOT_DUE':
          case 'NOT_LOADED':
            throw stockUnavailable()
        }
      })
  )
}

const reservationNotFound = (id: string) => new Problem(404, 'RESERVATION_NOT_FOUND', `no reservation with id ${id}`)
