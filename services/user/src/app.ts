import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'

/**
 * The routes of user-service. Health, readiness and metrics come from the platform app this
 * is mounted on.
 */
export const userRoutes = (): Hono<AppEnv> => new Hono<AppEnv>()
