import { type AppEnv, authenticate, type TokenVerifier, validate } from '@timedeal/platform'
import { Hono } from 'hono'
import { z } from 'zod'
import type { Payment } from '../domain/payment.ts'
import type { Payments } from '../flows/payments.ts'

export interface PaymentRoutesDeps {
  readonly payments: Payments
  readonly verifier: TokenVerifier
}

const listQuery = z.object({
  orderId: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
})

const instant = (value: Date | null) => (value ? value.toISOString() : null)

/** What the API shows of a payment; provider references stay inside. */
export function paymentView(payment: Payment) {
  return {
    id: payment.id,
    orderId: payment.orderId,
    buyerId: payment.buyerId,
    amount: payment.amount,
    status: payment.status,
    provider: payment.provider,
    failureCode: payment.failureCode,
    createdAt: payment.createdAt.toISOString(),
    completedAt: instant(payment.completedAt),
    failedAt: instant(payment.failedAt),
    refundedAt: instant(payment.refundedAt),
  }
}

/** `/api/payments`: a buyer's own payments. */
export const paymentRoutes = ({ payments, verifier }: PaymentRoutesDeps): Hono<AppEnv> =>
  new Hono<AppEnv>().get('/', authenticate(verifier), async (c) => {
    const query = validate(listQuery, c.req.query(), 'query')
    // A buyer sees the payments of their own orders only; anyone else's simply are not listed.
    const items = await payments.listForBuyer(c.var.caller.id, query)
    return c.json({ items: items.map(paymentView) })
  })
