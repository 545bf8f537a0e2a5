import type { AppEnv } from '@timedeal/platform'
import { Hono } from 'hono'

/**
 * The public routes of chat-service, one resource per file as they arrive. Health, readiness
 * and metrics come from the platform app these are mounted on.
 */
export const publicRoutes = (): Hono<AppEnv> => new Hono<AppEnv>()
