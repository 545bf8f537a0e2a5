/**
 * The payment provider behind payment-service. The service talks to this interface only, so a
 * real provider is one more adapter; the project ships {@link SandboxProvider}.
 */

export interface ChargeRequest {
  /** The provider answers a repeated key with the first answer: a retried charge never charges twice. */
  readonly idempotencyKey: string
  readonly orderId: string
  /** Whole won (KRW). */
  readonly amount: number
  /** A card token, when the buyer's client sent one. */
  readonly paymentToken?: string | undefined
}

export type ChargeResult =
  | { readonly approved: true; readonly reference: string }
  | { readonly approved: false; readonly code: string }

export interface RefundRequest {
  readonly idempotencyKey: string
  readonly chargeReference: string
  readonly amount: number
}

/**
 * What the provider knows of a charge, asked by its idempotency key:
 * - `absent`: it took no money under this key, and from now on it refuses to (the key is closed),
 *   so a request still on its way cannot capture after the caller recorded a failure;
 * - `pending`: it is still deciding; ask again later;
 * - `captured` / `declined`: its answer, the same one a repeated charge gets.
 */
export type ChargeLookup =
  | { readonly state: 'absent' }
  | { readonly state: 'pending' }
  | { readonly state: 'captured'; readonly reference: string; readonly amount: number }
  | { readonly state: 'declined'; readonly code: string }

export interface PaymentProvider {
  readonly name: string
  /** Declines are answers; an unreachable provider rejects with {@link ProviderUnavailableError}. */
  charge(request: ChargeRequest, signal: AbortSignal): Promise<ChargeResult>
  /** Looks a charge up by its idempotency key; an unreachable provider rejects with {@link ProviderUnavailableError}. */
  findCharge(idempotencyKey: string, signal: AbortSignal): Promise<ChargeLookup>
  refund(request: RefundRequest, signal: AbortSignal): Promise<{ reference: string }>
}

/** The provider could not be asked (down, 5xx): the call may be retried later with the same key. */
export class ProviderUnavailableError extends Error {
  override name = 'ProviderUnavailableError'
}
