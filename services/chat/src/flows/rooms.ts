import { notFound, Problem } from '@timedeal/platform'
import type { GoodsClient } from '../adapters/goods-client.ts'
import type { ChatMessage, MessageStore } from '../adapters/message-store.ts'
import type {
  Notification,
  NotificationPage,
  NotificationStore,
  ReadSelection,
} from '../adapters/notification-store.ts'
import type { Room, RoomStore } from '../adapters/room-store.ts'
import { newRoomId } from '../domain/ids.ts'

export interface RoomsDeps {
  readonly rooms: RoomStore
  readonly messages: MessageStore
  readonly notifications: NotificationStore
  readonly goods: GoodsClient
  readonly now?: () => Date
}

/** A room as its member sees it in a list: what was said last and how much they have not read. */
export interface RoomSummary {
  readonly room: Room
  readonly lastMessage: ChatMessage | undefined
  readonly unreadCount: number
}

/** Trace headers of the request being served, passed on to goods-service. */
export type CallContext = Readonly<Record<string, string>>

export interface Rooms {
  /** Opens the buyer's room about the goods, or answers the one they already have. */
  open(buyerId: string, goodsId: string, context?: CallContext): Promise<{ room: Room; created: boolean }>
  list(userId: string): Promise<RoomSummary[]>
  /** One page of a room's messages, newest first; a room the user is not in does not exist for them. */
  history(userId: string, roomId: string, page: { before?: string | undefined; limit: number }): Promise<ChatMessage[]>
  notifications(
    userId: string,
    page: { limit: number; beforeId?: string | undefined; unreadOnly?: boolean },
  ): Promise<NotificationPage>
  unreadCount(userId: string): Promise<number>
  markRead(userId: string, selection: ReadSelection): Promise<number>
}

export const roomNotFound = () => notFound('ROOM_NOT_FOUND', 'no such room among yours')
const goodsNotFound = () => notFound('GOODS_NOT_FOUND', 'no goods with this id')
const sellerCannotOpen = () =>
  new Problem({
    status: 403,
    code: 'SELLER_CANNOT_OPEN_ROOM',
    detail: "a room is opened by a buyer; the seller joins the buyer's room",
  })

export function createRooms(deps: RoomsDeps): Rooms {
  const now = deps.now ?? (() => new Date())
  return {
    async open(buyerId, goodsId, context) {
      // A room already open answers without asking goods-service again.
      const existing = await deps.rooms.findByGoodsAndBuyer(goodsId, buyerId)
      if (existing) return { room: existing, created: false }
      const goods = await deps.goods.owner(goodsId, context)
      if (!goods) throw goodsNotFound()
      if (goods.sellerId === buyerId) throw sellerCannotOpen()
      const at = now()
      return deps.rooms.open({ id: newRoomId(at.getTime()), goodsId, buyerId, sellerId: goods.sellerId, createdAt: at })
    },

    async list(userId) {
      const rooms = await deps.rooms.listFor(userId)
      const ids = rooms.map((room) => room.id)
      const [last, unread] = await Promise.all([
        deps.messages.lastOf(ids),
        deps.notifications.unreadByRoom(userId, ids),
      ])
      return rooms.map((room) => ({
        room,
        lastMessage: last.get(room.id),
        unreadCount: unread.get(room.id) ?? 0,
      }))
    },

    async history(userId, roomId, page) {
      if (!(await deps.rooms.isMember(roomId, userId))) throw roomNotFound()
      return deps.messages.page(roomId, page)
    },

    notifications: (userId, page) => deps.notifications.list(userId, page),
    unreadCount: (userId) => deps.notifications.unreadCount(userId),
    markRead: (userId, selection) => deps.notifications.markRead(userId, selection, now()),
  }
}

export type { Notification }
