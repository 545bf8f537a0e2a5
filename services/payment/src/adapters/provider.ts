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

export interface PaymentProvider {
  readonly name: string
  /** Declines are answers; an unreachable provider rejects with {@link ProviderUnavailableError}. */
  charge(request: ChargeRequest, signal: AbortSignal): Promise<ChargeResult>
  refund(request: RefundRequest, signal: AbortSignal): Promise<{ reference: string }>
}

/** The provider could not be asked (down, 5xx): the call may be retried later with the same key. */
export class ProviderUnavailableError extends Error {
  override name = 'ProviderUnavailableError'
}
