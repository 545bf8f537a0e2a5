import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  isoOrNull,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  PARAMETER_PROBLEMS,
  problemResponses,
  type Routes,
  type TokenVerifier,
} from '@timedeal/platform'
import { z } from 'zod'
import type { Notification, ReadSelection } from '../adapters/notification-store.ts'
import { UUID_PATTERN } from '../domain/ids.ts'
import type { Rooms } from '../flows/rooms.ts'

export interface NotificationRoutesDeps {
  readonly rooms: Rooms
  readonly verifier: TokenVerifier
}

const notificationId = z.string().regex(/^[1-9][0-9]{0,19}$/, 'expected a notification id')

const listQuery = z.object({
  before: notificationId.optional().meta({ description: 'Only notifications older than this one' }),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  unread: z.enum(['true', 'false']).default('false').meta({ description: 'true: only the unread ones' }),
})

const readBody = z
  .strictObject({
    ids: z.array(notificationId).min(1).max(500).optional(),
    roomId: z.string().regex(UUID_PATTERN, 'expected a room id').optional(),
  })
  .refine((body) => !(body.ids && body.roomId), { message: 'send ids or roomId, not both' })
  .meta({ description: 'Which to mark read: `ids`, every one of `roomId`, or (an empty object) all.' })

const notificationSchema = z.object({
  id: z.string(),
  roomId: z.string(),
  messageId: z.string(),
  at: z.iso.datetime(),
  readAt: z.iso.datetime().nullable(),
})

const notificationPage = z.object({
  items: z.array(notificationSchema).meta({ description: 'Newest first.' }),
  unreadCount: z.number().int().meta({ description: "All of the caller's unread notifications." }),
  nextBefore: z.string().nullable().meta({ description: 'Send as `before` for older ones; null on the last page.' }),
})

const readResult = z.object({
  marked: z.number().int().meta({ description: 'How many were unread and are read now.' }),
  unreadCount: z.number().int(),
})

export const notificationView = (notification: Notification): z.infer<typeof notificationSchema> => ({
  id: notification.id,
  roomId: notification.roomId,
  messageId: notification.messageId,
  at: notification.at.toISOString(),
  readAt: isoOrNull(notification.readAt),
})

const listNotifications = createRoute({
  method: 'get',
  path: '/',
  summary: "The caller's notifications, newest first, with the unread count",
  request: { query: listQuery },
  responses: {
    200: jsonResponse(notificationPage, 'one page of notifications'),
    ...problemResponses(PARAMETER_PROBLEMS, AUTH_PROBLEMS),
  },
})

const markRead = createRoute({
  method: 'post',
  path: '/read',
  summary: "Mark the caller's notifications read: some by id, a room's, or all",
  request: { body: jsonBody(readBody) },
  responses: {
    200: jsonResponse(readResult, 'how many were marked, and what stays unread'),
    ...problemResponses(JSON_BODY_PROBLEMS, AUTH_PROBLEMS),
  },
})

/** `/api/chat/notifications`: what members missed while away. */
export const notificationRoutes = ({ rooms, verifier }: NotificationRoutesDeps): Routes<AuthedEnv> => {
  const routes = createRoutes<AuthedEnv>()
  routes.use(authenticate(verifier))
  return routes
    .openapi(listNotifications, async (c) => {
      const userId = c.var.caller.id
      const { before, limit, unread } = c.req.valid('query')
      const [page, unreadCount] = await Promise.all([
        rooms.notifications(userId, { limit, beforeId: before, unreadOnly: unread === 'true' }),
        rooms.unreadCount(userId),
      ])
      return c.json({ items: page.notifications.map(notificationView), unreadCount, nextBefore: page.lastId }, 200)
    })
    .openapi(markRead, async (c) => {
      const userId = c.var.caller.id
      const body = c.req.valid('json')
      const selection: ReadSelection = body.ids
        ? { ids: body.ids }
        : body.roomId
          ? { roomId: body.roomId }
          : { all: true }
      const marked = await rooms.markRead(userId, selection)
      return c.json({ marked, unreadCount: await rooms.unreadCount(userId) }, 200)
    })
}
