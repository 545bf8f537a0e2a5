import { type AppEnv, createRoutes, type Routes } from '@timedeal/platform'
import { type OrderRoutesDeps, orderRoutes } from './orders.ts'

export type PublicRoutesDeps = OrderRoutesDeps

/**
 * The public routes of order-service, one resource per file. Health, readiness, metrics and
 * `/openapi.json` come from the platform app these are mounted on.
 */
export function publicRoutes(deps: PublicRoutesDeps): Routes<AppEnv> {
  const routes = createRoutes()
  routes.route('/api/orders', orderRoutes(deps))
  return routes
}
