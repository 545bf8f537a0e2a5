import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'

/**
 * The routes of payment-service. Health, readiness and metrics come from the platform app this
 * is mounted on.
 */
export const paymentRoutes = (): Hono<AppEnv> => new Hono<AppEnv>()
