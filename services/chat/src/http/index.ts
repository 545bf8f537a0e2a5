import { createRoutes, type Routes } from '@timedeal/platform'
import { type NotificationRoutesDeps, notificationRoutes } from './notifications.ts'
import { type RoomRoutesDeps, roomRoutes } from './rooms.ts'

export type PublicRoutesDeps = RoomRoutesDeps & NotificationRoutesDeps

/**
 * The public routes of chat-service, one resource per file, each declared with `createRoute` so
 * it is validated and listed in `/openapi.json`. Health, readiness and metrics come from the
 * platform app these are mounted on.
 */
export function publicRoutes(deps: PublicRoutesDeps): Routes {
  const routes = createRoutes()
  routes.route('/api/chat/rooms', roomRoutes(deps))
  routes.route('/api/chat/notifications', notificationRoutes(deps))
  return routes
}
