import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'

/**
 * The routes of order-service. Health, readiness and metrics come from the platform app this
 * is mounted on.
 */
export const orderRoutes = (): Hono<AppEnv> => new Hono<AppEnv>()
