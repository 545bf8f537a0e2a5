import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'
import { type PaymentRoutesDeps, paymentRoutes } from './payments.ts'

export type PublicRoutesDeps = PaymentRoutesDeps

/**
 * The public routes of payment-service, one resource per file. Health, readiness and metrics
 * come from the platform app these are mounted on.
 */
export const publicRoutes = (deps: PublicRoutesDeps): Hono<AppEnv> =>
  new Hono<AppEnv>().route('/api/payments', paymentRoutes(deps))
