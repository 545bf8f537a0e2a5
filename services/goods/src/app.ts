import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'

/**
 * The routes of goods-service. Health, readiness and metrics come from the platform app this
 * is mounted on.
 */
export const goodsRoutes = (): Hono<AppEnv> => new Hono<AppEnv>()
