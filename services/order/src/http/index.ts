import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'
import { type OrderRoutesDeps, orderRoutes } from './orders.ts'

export type PublicRoutesDeps = OrderRoutesDeps

/**
 * The public routes of order-service, one resource per file. Health, readiness and metrics come
 * from the platform app these are mounted on.
 */
export const publicRoutes = (deps: PublicRoutesDeps): Hono<AppEnv> =>
  new Hono<AppEnv>().route('/api/orders', orderRoutes(deps))
