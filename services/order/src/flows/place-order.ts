/**
 * Placing an order: claim the Idempotency-Key, reserve the units, then write the order and its
 * OrderPlaced event in one transaction. One request per key does the work; a twin with the
 * same key waits for its outcome and answers the same: the same order, or the same refusal.
 */
import { type Logger, notFound, Problem, unprocessable } from '@timedeal/platform'
import type { Counter } from 'prom-client'
import type { CallContext, GoodsClient, Reservation, ReservationRef } from '../adapters/goods-client.ts'
import { DuplicateOrderError, type OrderStore } from '../adapters/order-store.ts'
import type { ClaimPlacement } from '../adapters/placement-claims.ts'
import type { PlacementStore } from '../adapters/placement-store.ts'
import { LostClaimError, type WritePlacement } from '../adapters/placement-writer.ts'
import { newOrderId } from '../domain/ids.ts'
import { type Order, placeOrder } from '../domain/order-state.ts'
import { judgeClaim, newClaim, type PlacementClaim, type Refusal } from '../domain/placement.ts'

export interface PlaceOrderRequest {
  readonly buyerId: string
  readonly goodsId: string
  readonly quantity: number
  readonly idempotencyKey: string
  readonly traceparent?: string | undefined
  /** Headers for the calls to goods-service made on the buyer's behalf. */
  readonly context?: CallContext
}

export interface Placement {
  readonly order: Order
  /** False when the Idempotency-Key had already placed this order: nothing new happened. */
  readonly created: boolean
}

export interface PlacementRules {
  /** The payment deadline is this long before the reservation's hold runs out. */
  readonly paymentDeadlineMarginMs: number
  /** How long a placement holds its key before a twin may take over. */
  readonly leaseMs: number
  /** How long a refused key answers the same refusal. */
  readonly refusalTtlMs: number
}

export interface PlaceOrderDeps {
  readonly store: OrderStore
  readonly placements: PlacementStore
  readonly goods: GoodsClient
  readonly rules: PlacementRules
  readonly logger: Logger
  /** Counts placements by outcome (created, replayed, refused, failed). */
  readonly placed: Counter<'outcome'>
  /** Claims the key (possibly in one statement with other placements' claims). */
  readonly claimPlacement: ClaimPlacement
  /**
   * Writes the order, settles its claim and adds its events to the outbox in one transaction
   * (possibly shared with other placements); rejects with LostClaimError or DuplicateOrderError
   * when the order is not its key's.
   */
  readonly writePlacement: WritePlacement
  readonly clock: () => Date
}

/** How often a twin looks whether the request holding its key is done. */
const TWIN_POLL_MS = 25

/** goods-service's refusals of the buyer's request: the answer for the key, not a failure. */
const REFUSAL_CODES = new Set([
  'GOODS_NOT_FOUND',
  'SOLD_OUT',
  'INSUFFICIENT_STOCK',
  'SALE_NOT_OPEN',
  'SALE_CLOSED',
  'PURCHASE_LIMIT_EXCEEDED',
])

const isRefusal = (error: unknown): error is Problem => error instanceof Problem && REFUSAL_CODES.has(error.code)

const refusalOf = (problem: Problem): Refusal => ({
  status: problem.status,
  code: problem.code,
  detail: problem.message,
  extensions: problem.extensions,
})

const problemOfRefusal = (refusal: Refusal) =>
  new Problem({
    status: refusal.status as Problem['status'],
    code: refusal.code,
    detail: refusal.detail,
    extensions: { ...refusal.extensions },
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function createPlaceOrder(deps: PlaceOrderDeps): (request: PlaceOrderRequest) => Promise<Placement> {
  const { store, placements, goods, rules, logger, clock, placed } = deps

  /** The order this key already placed, if it asked for the same thing. */
  async function replayOf(request: PlaceOrderRequest): Promise<Order | undefined> {
    const existing = await store.findByIdempotencyKey(request.buyerId, request.idempotencyKey)
    if (!existing) return undefined
    if (existing.goodsId !== request.goodsId || existing.quantity !== request.quantity) throw keyReused()
    return existing
  }

  async function releaseQuietly({ reservationId, goodsId }: ReservationRef, reason: string, context?: CallContext) {
    try {
      await goods.release({ reservationId, goodsId }, reason, context)
    } catch (error) {
      // goods-service releases unconfirmed reservations itself when their hold runs out.
      logger.warn({ err: error, reservationId, goodsId }, 'could not release a reservation; its hold will expire')
    }
  }

  type Claimed =
    | { readonly kind: 'holder'; readonly claim: PlacementClaim; readonly previous?: PlacementClaim }
    | { readonly kind: 'placed' }
    | { readonly kind: 'refused'; readonly refusal: Refusal }
    | { readonly kind: 'wait' }

  /** Claims the key for this request, or says what the request holding it came to. */
  async function claimKey(request: PlaceOrderRequest): Promise<Claimed> {
    const now = clock()
    const mine = newClaim(request, now, rules.leaseMs)
    const outcome = await deps.claimPlacement(mine)
    if (outcome === 'claimed') return { kind: 'holder', claim: mine }
    if (outcome === 'placed') return { kind: 'placed' }
    const current = await placements.find(request.buyerId, request.idempotencyKey)
    // Gone since: its order was written or it was given up; look again.
    if (!current) return { kind: 'wait' }
    const decision = judgeClaim(current, request, now)
    switch (decision.kind) {
      case 'key-reused':
        throw keyReused()
      case 'refused':
        return decision
      case 'wait':
        return decision
      case 'take-over':
        if (!(await placements.takeOver(current, mine))) return { kind: 'wait' }
        return current.state === 'PLACING'
          ? { kind: 'holder', claim: mine, previous: current }
          : { kind: 'holder', claim: mine }
    }
  }

  /** Takes the units under the claim's reservation; a refusal is remembered for the key. */
  async function reserveFor(request: PlaceOrderRequest, claim: PlacementClaim) {
    const reservation: ReservationRef = { reservationId: claim.reservationId, goodsId: request.goodsId }
    let reserving = false
    try {
      const item = await goods.goods(request.goodsId, request.context)
      if (!item) throw notFound('GOODS_NOT_FOUND', `no goods with id ${request.goodsId}`)
      reserving = true
      const held = await goods.reserve(
        { ...reservation, userId: request.buyerId, quantity: request.quantity },
        request.context,
      )
      // A fresh id is never answered with an ended reservation; if it were, nothing is held for the order.
      if (held.state !== 'RESERVED')
        throw new Problem({ status: 503, code: 'GOODS_UNAVAILABLE', detail: 'goods-service ended the reservation' })
      return { item, held }
    } catch (error) {
      if (isRefusal(error)) {
        // The claim's check and the order of a holder before it may have crossed: a key that
        // placed its order answers with it, never with a refusal.
        if (await store.findByIdempotencyKey(request.buyerId, request.idempotencyKey)) {
          await placements.abandon(claim)
          throw new LostClaimError('the key placed its order meanwhile')
        }
        await placements.refuse(claim, refusalOf(error), new Date(clock().getTime() + rules.refusalTtlMs))
        placed.inc({ outcome: 'refused' })
        throw error
      }
      // The units may have been taken before the answer was lost.
      if (reserving) await releaseQuietly(reservation, 'order-not-placed', request.context)
      await placements.abandon(claim)
      placed.inc({ outcome: 'failed' })
      throw error
    }
  }

  /** Places the order as the holder of the key; undefined when the key was lost meanwhile. */
  async function placeAsHolder(
    request: PlaceOrderRequest,
    claim: PlacementClaim,
    previous: PlacementClaim | undefined,
  ): Promise<Placement | undefined> {
    // The earlier holder died: its units, if it took any, go back now rather than at its hold's end.
    if (previous) await releaseQuietly(previous, 'placement-taken-over', request.context)
    let reserved: Awaited<ReturnType<typeof reserveFor>>
    try {
      reserved = await reserveFor(request, claim)
    } catch (error) {
      if (error instanceof LostClaimError) return undefined
      throw error
    }
    const { item, held } = reserved
    const now = clock()
    const { order, events } = placeOrder({
      id: newOrderId(now.getTime()),
      buyerId: request.buyerId,
      sellerId: item.sellerId,
      goodsId: request.goodsId,
      reservationId: claim.reservationId,
      quantity: request.quantity,
      unitPrice: item.price,
      at: now,
      payBy: paymentDeadline(held, now),
    })
    try {
      await deps.writePlacement({
        order,
        idempotencyKey: request.idempotencyKey,
        claim,
        events,
        traceparent: request.traceparent,
      })
    } catch (error) {
      await releaseQuietly(order, 'order-not-placed', request.context)
      if (error instanceof LostClaimError || error instanceof DuplicateOrderError) return undefined
      await placements.abandon(claim)
      placed.inc({ outcome: 'failed' })
      throw error
    }
    placed.inc({ outcome: 'created' })
    return { order, created: true }
  }

  function paymentDeadline(held: Reservation, now: Date): Date {
    const payBy = new Date(held.expiresAt.getTime() - rules.paymentDeadlineMarginMs)
    if (payBy <= now) {
      logger.warn(
        { expiresAt: held.expiresAt, marginMs: rules.paymentDeadlineMarginMs },
        'the reservation holds for less than the payment deadline margin; the order expires at once',
      )
    }
    return payBy
  }

  return async function place(request) {
    // A holder finishes within its lease; past twice that, something keeps the key busy.
    const giveUpAt = clock().getTime() + 2 * rules.leaseMs
    for (;;) {
      const claimed = await claimKey(request)
      if (claimed.kind === 'placed') {
        const earlier = await replayOf(request)
        if (earlier) {
          placed.inc({ outcome: 'replayed' })
          return { order: earlier, created: false }
        }
      }
      if (claimed.kind === 'refused') {
        placed.inc({ outcome: 'refused' })
        throw problemOfRefusal(claimed.refusal)
      }
      if (claimed.kind === 'holder') {
        const placement = await placeAsHolder(request, claimed.claim, claimed.previous)
        if (placement) return placement
      }
      if (clock().getTime() > giveUpAt) {
        throw new Problem({
          status: 503,
          code: 'PLACEMENT_IN_PROGRESS',
          detail: 'another request with this Idempotency-Key is still being placed; try again shortly',
        })
      }
      await sleep(TWIN_POLL_MS)
    }
  }
}

const keyReused = () =>
  unprocessable(
    'IDEMPOTENCY_KEY_REUSED',
    'this Idempotency-Key already placed an order for other goods or another quantity',
  )
