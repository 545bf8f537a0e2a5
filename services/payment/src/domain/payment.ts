/**
 * A payment of one order, and the rules of what happens to it. Pure: the provider's answers,
 * ids and time come in as arguments.
 */

/**
 * COMPLETED and FAILED follow a charge; REFUNDED follows COMPLETED once; VOIDED marks an order
 * that ended before it was charged, so a late OrderPlaced (a dead letter replayed) charges nothing.
 */
export const PAYMENT_STATUSES = ['COMPLETED', 'FAILED', 'REFUNDED', 'VOIDED'] as const
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number]

export interface Payment {
  readonly id: string
  readonly orderId: string
  readonly buyerId: string
  /** Whole won (KRW). */
  readonly amount: number
  readonly status: PaymentStatus
  readonly provider: string
  readonly providerReference: string | null
  readonly failureCode: string | null
  readonly createdAt: Date
  readonly completedAt: Date | null
  readonly failedAt: Date | null
  readonly refundedAt: Date | null
  readonly refundReference: string | null
}

export interface ChargeOutcome {
  readonly approved: boolean
  readonly reference?: string
  readonly code?: string
}

/** The payment a charge came to. */
export function paymentOfCharge(
  input: { id: string; orderId: string; buyerId: string; amount: number; provider: string; at: Date },
  outcome: ChargeOutcome,
): Payment {
  const base = {
    ...input,
    createdAt: input.at,
    refundedAt: null,
    refundReference: null,
  }
  return outcome.approved
    ? {
        ...base,
        status: 'COMPLETED',
        providerReference: outcome.reference ?? null,
        failureCode: null,
        completedAt: input.at,
        failedAt: null,
      }
    : {
        ...base,
        status: 'FAILED',
        providerReference: null,
        failureCode: outcome.code ?? 'DECLINED',
        completedAt: null,
        failedAt: input.at,
      }
}

/** The marker of an order that ended before any charge. */
export function voidedPayment(input: {
  id: string
  orderId: string
  buyerId: string
  provider: string
  at: Date
}): Payment {
  return {
    ...input,
    amount: 0,
    status: 'VOIDED',
    providerReference: null,
    failureCode: null,
    createdAt: input.at,
    completedAt: null,
    failedAt: null,
    refundedAt: null,
    refundReference: null,
  }
}

/** What an order that ended (cancelled, expired, returned) means for its payment. */
export type SettlementAction = 'refund' | 'void' | 'none'

export function settlementFor(payment: Payment | undefined): SettlementAction {
  if (!payment) return 'void'
  return payment.status === 'COMPLETED' ? 'refund' : 'none'
}

export function refunded(payment: Payment, reference: string, at: Date): Payment {
  if (payment.status !== 'COMPLETED') throw new Error(`a ${payment.status} payment cannot be refunded`)
  return { ...payment, status: 'REFUNDED', refundedAt: at, refundReference: reference }
}
