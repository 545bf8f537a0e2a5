import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  forwardedHeaders,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  PARAMETER_PROBLEMS,
  problemResponses,
  ROLE_PROBLEMS,
  type Routes,
  requireRole,
  type TokenVerifier,
} from '@timedeal/platform'
import { z } from 'zod'
import type { ChatMessage } from '../adapters/message-store.ts'
import type { Room } from '../adapters/room-store.ts'
import { UUID_PATTERN } from '../domain/ids.ts'
import type { Rooms } from '../flows/rooms.ts'

export interface RoomRoutesDeps {
  readonly rooms: Rooms
  readonly verifier: TokenVerifier
}

/** The largest page of messages one request may ask for. */
export const MESSAGE_PAGE_MAX = 100

const id = (what: string) => z.string().regex(UUID_PATTERN, `expected a ${what} id`)

const openBody = z.strictObject({
  goodsId: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a goods id'),
})

const roomParams = z.object({ id: id('room').meta({ description: 'The room id' }) })

const historyQuery = z.object({
  before: id('message')
    .optional()
    .meta({ description: 'Only messages older than this message id (the last of the previous page)' }),
  limit: z.coerce.number().int().min(1).max(MESSAGE_PAGE_MAX).default(50),
})

const messageSchema = z.object({
  id: z.string(),
  roomId: z.string(),
  senderId: z.string(),
  sentAt: z.iso.datetime(),
  headers: z
    .array(z.tuple([z.string(), z.string()]))
    .meta({ description: "The sender's own STOMP headers, in order, as sent (content-type among them)." }),
  body: z.string().meta({ description: 'The body exactly as sent, base64.' }),
  text: z.string().nullable().meta({ description: 'The body as text, when it is valid UTF-8; null otherwise.' }),
})

const roomSchema = z.object({
  id: z.string(),
  goodsId: z.string(),
  buyerId: z.string(),
  sellerId: z.string(),
  createdAt: z.iso.datetime(),
})

const roomSummarySchema = roomSchema.extend({
  lastMessage: messageSchema.nullable(),
  unreadCount: z.number().int().meta({ description: "The caller's unread notifications of this room." }),
})

const roomList = z.object({ items: z.array(roomSummarySchema) })

const messagePage = z.object({
  items: z.array(messageSchema).meta({ description: 'Newest first.' }),
  nextBefore: z
    .string()
    .nullable()
    .meta({ description: 'Send as `before` for older messages; null when there are none.' }),
})

const utf8 = new TextDecoder('utf-8', { fatal: true })

function textOf(body: Uint8Array): string | null {
  try {
    return utf8.decode(body)
  } catch {
    return null
  }
}

export function messageView(message: ChatMessage): z.infer<typeof messageSchema> {
  return {
    id: message.id,
    roomId: message.roomId,
    senderId: message.senderId,
    sentAt: message.sentAt.toISOString(),
    headers: message.headers,
    body: Buffer.from(message.body).toString('base64'),
    text: textOf(message.body),
  }
}

export const roomView = (room: Room): z.infer<typeof roomSchema> => ({
  id: room.id,
  goodsId: room.goodsId,
  buyerId: room.buyerId,
  sellerId: room.sellerId,
  createdAt: room.createdAt.toISOString(),
})

const openRoom = createRoute({
  method: 'post',
  path: '/',
  summary: "Open the buyer's room with the seller of a goods item (again: the same room)",
  middleware: [requireRole('BUYER')] as const,
  request: { body: jsonBody(openBody) },
  responses: {
    201: jsonResponse(roomSchema, 'the room, opened; `location` names it'),
    200: jsonResponse(roomSchema, 'the room this buyer already had about the goods'),
    ...problemResponses(JSON_BODY_PROBLEMS, AUTH_PROBLEMS, ROLE_PROBLEMS, {
      403: ['SELLER_CANNOT_OPEN_ROOM'],
      404: ['GOODS_NOT_FOUND'],
      503: ['GOODS_UNAVAILABLE'],
    }),
  },
})

const listRooms = createRoute({
  method: 'get',
  path: '/',
  summary: "The caller's rooms, as buyer or seller, newest first, with the last message and the unread count",
  responses: {
    200: jsonResponse(roomList, 'the rooms'),
    ...problemResponses(AUTH_PROBLEMS),
  },
})

const roomHistory = createRoute({
  method: 'get',
  path: '/{id}/messages',
  summary: "One page of a room's messages, newest first, to its members",
  request: { params: roomParams, query: historyQuery },
  responses: {
    200: jsonResponse(messagePage, 'one page of messages'),
    ...problemResponses(PARAMETER_PROBLEMS, AUTH_PROBLEMS, { 404: ['ROOM_NOT_FOUND'] }),
  },
})

/** `/api/chat/rooms`: opening rooms, listing them, and reading their history. */
export const roomRoutes = ({ rooms, verifier }: RoomRoutesDeps): Routes<AuthedEnv> => {
  const routes = createRoutes<AuthedEnv>()
  routes.use(authenticate(verifier))
  return routes
    .openapi(openRoom, async (c) => {
      const { goodsId } = c.req.valid('json')
      const { room, created } = await rooms.open(c.var.caller.id, goodsId, forwardedHeaders(c))
      const location = `/api/chat/rooms/${room.id}`
      if (created) return c.json(roomView(room), 201, { location })
      return c.json(roomView(room), 200, { location })
    })
    .openapi(listRooms, async (c) => {
      const summaries = await rooms.list(c.var.caller.id)
      const items = summaries.map(({ room, lastMessage, unreadCount }) => ({
        ...roomView(room),
        lastMessage: lastMessage ? messageView(lastMessage) : null,
        unreadCount,
      }))
      return c.json({ items }, 200)
    })
    .openapi(roomHistory, async (c) => {
      const { id: roomId } = c.req.valid('param')
      const { before, limit } = c.req.valid('query')
      // One more than asked tells whether an older page exists.
      const found = await rooms.history(c.var.caller.id, roomId, { before, limit: limit + 1 })
      const messages = found.slice(0, limit)
      const nextBefore = found.length > limit ? (messages.at(-1)?.id ?? null) : null
      return c.json({ items: messages.map(messageView), nextBefore }, 200)
    })
}
