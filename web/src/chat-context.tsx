import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react'
import { api } from './api.ts'
import { ChatConnection, type ChatMessage } from './chat.ts'
import { useSession } from './session.ts'

export interface RoomSummary {
  readonly id: string
  readonly goodsId: string
  readonly buyerId: string
  readonly sellerId: string
  readonly createdAt: string
  readonly lastMessage: { readonly text: string | null; readonly sentAt: string } | null
  readonly unreadCount: number
}

interface ChatState {
  readonly connection: ChatConnection | undefined
  readonly connected: boolean
  readonly rooms: readonly RoomSummary[]
  readonly unread: ReadonlyMap<string, number>
  readonly totalUnread: number
  /** The newest notification of a message the user was not looking at, for a polite announcement. */
  readonly lastNotice: { readonly roomId: string; readonly at: number } | undefined
  readonly reloadRooms: () => Promise<void>
  /** The room on screen: its notifications are read (the server marks them when it is entered). */
  readonly setViewing: (roomId: string | undefined) => void
}

const ChatContext = createContext<ChatState | undefined>(undefined)

export function ChatProvider({ children }: { children: ReactNode }) {
  const { user } = useSession()
  const [connection, setConnection] = useState<ChatConnection>()
  const [connected, setConnected] = useState(false)
  const [rooms, setRooms] = useState<RoomSummary[]>([])
  const [unread, setUnread] = useState<Map<string, number>>(new Map())
  const [lastNotice, setLastNotice] = useState<ChatState['lastNotice']>()
  const viewing = useRef<string | undefined>(undefined)

  const reloadRooms = useCallback(async () => {
    const { items } = await api<{ items: RoomSummary[] }>('/api/chat/rooms')
    setRooms(items)
    setUnread(new Map(items.map((room) => [room.id, room.id === viewing.current ? 0 : room.unreadCount])))
  }, [])

  const roomIds = useRef(new Set<string>())
  roomIds.current = new Set(rooms.map((room) => room.id))
  const userId = user?.id

  useEffect(() => {
    if (!userId) return
    const chat = new ChatConnection()
    setConnection(chat)
    const offStatus = chat.onStatus((status) => setConnected(status === 'connected'))
    const offNotice = chat.onNotification((notification) => {
      if (notification.type !== 'message' || notification.roomId === viewing.current) return
      setUnread((current) => new Map(current).set(notification.roomId, (current.get(notification.roomId) ?? 0) + 1))
      setLastNotice({ roomId: notification.roomId, at: Date.now() })
      if (!roomIds.current.has(notification.roomId)) void reloadRooms().catch(() => {})
    })
    void reloadRooms().catch(() => {})
    return () => {
      offStatus()
      offNotice()
      chat.close()
      setConnection(undefined)
      setConnected(false)
    }
  }, [userId, reloadRooms])

  const setViewing = useCallback((roomId: string | undefined) => {
    viewing.current = roomId
    if (roomId) setUnread((current) => new Map(current).set(roomId, 0))
  }, [])

  const value = useMemo<ChatState>(
    () => ({
      connection: user ? connection : undefined,
      connected,
      rooms,
      unread,
      totalUnread: [...unread.values()].reduce((sum, count) => sum + count, 0),
      lastNotice,
      reloadRooms,
      setViewing,
    }),
    [user, connection, connected, rooms, unread, lastNotice, reloadRooms, setViewing],
  )
  return <ChatContext.Provider value={value}>{children}</ChatContext.Provider>
}

export function useChat(): ChatState {
  const chat = useContext(ChatContext)
  if (!chat) throw new Error('useChat outside ChatProvider')
  return chat
}

export type { ChatMessage }
