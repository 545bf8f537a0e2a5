import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  isoOrNull,
  jsonResponse,
  PARAMETER_PROBLEMS,
  problemResponses,
  type TokenVerifier,
} from '@timedeal/platform'
import { z } from 'zod'
import { PAYMENT_STATUSES, type Payment } from '../domain/payment.ts'
import type { Payments } from '../flows/payments.ts'

export interface PaymentRoutesDeps {
  readonly payments: Payments
  readonly verifier: TokenVerifier
}

const listQuery = z.object({
  orderId: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
})

const instant = z.iso.datetime()

const paymentSchema = z.object({
  id: z.string(),
  orderId: z.string(),
  buyerId: z.string(),
  amount: z.number().int(),
  status: z.enum(PAYMENT_STATUSES),
  provider: z.string(),
  failureCode: z.string().nullable(),
  createdAt: instant,
  completedAt: instant.nullable(),
  failedAt: instant.nullable(),
  refundedAt: instant.nullable(),
})

/** What the API shows of a payment; provider references stay inside. */
export function paymentView(payment: Payment): z.infer<typeof paymentSchema> {
  return {
    id: payment.id,
    orderId: payment.orderId,
    buyerId: payment.buyerId,
    amount: payment.amount,
    status: payment.status,
    provider: payment.provider,
    failureCode: payment.failureCode,
    createdAt: payment.createdAt.toISOString(),
    completedAt: isoOrNull(payment.completedAt),
    failedAt: isoOrNull(payment.failedAt),
    refundedAt: isoOrNull(payment.refundedAt),
  }
}

const listPayments = createRoute({
  method: 'get',
  path: '/',
  summary: "The caller's payments, newest first",
  request: { query: listQuery },
  responses: {
    200: jsonResponse(z.object({ items: z.array(paymentSchema) }), "the payments of the caller's orders"),
    ...problemResponses(PARAMETER_PROBLEMS, AUTH_PROBLEMS),
  },
})

/** `/api/payments`: a buyer's own payments. */
export function paymentRoutes({ payments, verifier }: PaymentRoutesDeps) {
  const routes = createRoutes<AuthedEnv>()
  routes.use(authenticate(verifier))
  return routes.openapi(listPayments, async (c) => {
    // A buyer sees the payments of their own orders only; anyone else's simply are not listed.
    const items = await payments.listForBuyer(c.var.caller.id, c.req.valid('query'))
    return c.json({ items: items.map(paymentView) }, 200)
  })
}
