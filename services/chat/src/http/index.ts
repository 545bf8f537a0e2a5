import { createRoutes, type Routes } from '@timedeal/platform'

/**
 * The public routes of chat-service, one resource per file as they arrive, each declared with
 * `createRoute` so it is validated and listed in `/openapi.json`. Health, readiness and metrics
 * come from the platform app these are mounted on.
 */
export const publicRoutes = (): Routes => createRoutes()
