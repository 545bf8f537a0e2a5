/**
 * One placement per Idempotency-Key at a time. The request that claims a key places the order;
 * a twin with the same key waits for that outcome and answers it too: the order once it is
 * written, or the same refusal while the refusal is remembered. Pure rules; the claims live in
 * the `placements` table.
 */
import { newClaimToken, newReservationId } from './ids.ts'

/** A refusal as the buyer saw it, kept so a twin or a retry under the same key sees it again. */
export interface Refusal {
  readonly status: number
  readonly code: string
  readonly detail: string
  readonly extensions: Readonly<Record<string, unknown>>
}

export interface PlacementClaim {
  readonly buyerId: string
  readonly idempotencyKey: string
  readonly goodsId: string
  readonly quantity: number
  readonly state: 'PLACING' | 'REFUSED'
  /** Which request holds the key: only it may write the order or the refusal. */
  readonly token: string
  /** The reservation this placement takes its units under. */
  readonly reservationId: string
  readonly refusal: Refusal | null
  /** PLACING: the holder's lease runs out then. REFUSED: the refusal is forgotten then. */
  readonly until: Date
}

export interface PlacementRequest {
  readonly buyerId: string
  readonly idempotencyKey: string
  readonly goodsId: string
  readonly quantity: number
}

/** A claim for a request about to place its order, with a reservation id of its own. */
export function newClaim(request: PlacementRequest, now: Date, leaseMs: number): PlacementClaim {
  return {
    buyerId: request.buyerId,
    idempotencyKey: request.idempotencyKey,
    goodsId: request.goodsId,
    quantity: request.quantity,
    state: 'PLACING',
    token: newClaimToken(),
    reservationId: newReservationId(),
    refusal: null,
    until: new Date(now.getTime() + leaseMs),
  }
}

/** What a request does about a key another request has claimed. */
export type ClaimDecision =
  | { readonly kind: 'key-reused' }
  | { readonly kind: 'refused'; readonly refusal: Refusal }
  | { readonly kind: 'wait' }
  | { readonly kind: 'take-over' }

export function judgeClaim(claim: PlacementClaim, request: PlacementRequest, now: Date): ClaimDecision {
  if (claim.goodsId !== request.goodsId || claim.quantity !== request.quantity) return { kind: 'key-reused' }
  const current = now.getTime() < claim.until.getTime()
  if (claim.state === 'REFUSED' && claim.refusal && current) return { kind: 'refused', refusal: claim.refusal }
  if (claim.state === 'PLACING' && current) return { kind: 'wait' }
  // A forgotten refusal, or a holder whose lease ran out (it died): this request tries afresh.
  return { kind: 'take-over' }
}
