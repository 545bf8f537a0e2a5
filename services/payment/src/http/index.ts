import { createRoutes } from '@timedeal/platform'
import { type PaymentRoutesDeps, paymentRoutes } from './payments.ts'

export type PublicRoutesDeps = PaymentRoutesDeps

/**
 * The public routes of payment-service, one resource per file. Health, readiness, metrics and
 * `/openapi.json` come from the platform app these are mounted on.
 */
export function publicRoutes(deps: PublicRoutesDeps) {
  const routes = createRoutes()
  routes.route('/api/payments', paymentRoutes(deps))
  return routes
}
