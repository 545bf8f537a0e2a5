/**
 * One STOMP connection per signed-in tab. @stomp/stompjs reconnects; on every (re)connect each
 * open room is subscribed again with `resume-after` the last message id seen, so what was sent
 * while the connection was down is replayed, and message ids already shown are dropped: nothing
 * is lost and nothing is shown twice.
 */
import { Client, type IMessage, type StompSubscription } from '@stomp/stompjs'
import { refresh, session } from './api.ts'

export interface ChatMessage {
  readonly id: string
  readonly roomId: string
  readonly senderId: string
  readonly sentAt: string
  readonly text: string
}

export interface ChatNotification {
  readonly type: 'message' | 'read'
  readonly roomId: string
  readonly messageId?: string
  readonly senderId?: string
}

interface RoomFeed {
  lastId: string | undefined
  readonly seen: Set<string>
  readonly onMessage: (message: ChatMessage) => void
  subscription: StompSubscription | undefined
}

type Status = 'connected' | 'connecting'

/** Seconds until the access token expires (0 when unreadable), from its `exp` claim. */
function secondsLeft(token: string | undefined): number {
  try {
    const payload = token?.split('.')[1]
    if (!payload) return 0
    const { exp } = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number }
    return exp ? exp - Date.now() / 1000 : 0
  } catch {
    return 0
  }
}

export class ChatConnection {
  private readonly client: Client
  private readonly rooms = new Map<string, RoomFeed>()
  private readonly notificationListeners = new Set<(notification: ChatNotification) => void>()
  private readonly statusListeners = new Set<(status: Status) => void>()
  status: Status = 'connecting'

  constructor() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
    this.client = new Client({
      brokerURL: `${scheme}://${location.host}/ws/chat`,
      reconnectDelay: 1000,
      heartbeatIncoming: 10_000,
      heartbeatOutgoing: 10_000,
      beforeConnect: async (client) => {
        // A connection that was down for a while comes back with a fresh token.
        if (secondsLeft(session.token) < 30) await refresh()
        client.connectHeaders = { passcode: session.token ?? '' }
      },
      onConnect: () => {
        this.client.subscribe('/user/queue/notifications', (frame) => this.notify(frame))
        for (const [roomId, feed] of this.rooms) this.subscribeRoom(roomId, feed)
        this.setStatus('connected')
      },
      onWebSocketClose: () => {
        for (const feed of this.rooms.values()) feed.subscription = undefined
        this.setStatus('connecting')
      },
    })
    this.client.activate()
  }

  /** Live messages of a room after `lastId` (the newest one the history showed), until the returned function is called. */
  openRoom(roomId: string, lastId: string | undefined, known: Iterable<string>, onMessage: (m: ChatMessage) => void) {
    const feed: RoomFeed = { lastId, seen: new Set(known), onMessage, subscription: undefined }
    this.rooms.set(roomId, feed)
    if (this.client.connected) this.subscribeRoom(roomId, feed)
    return () => {
      if (this.rooms.get(roomId) !== feed) return
      this.rooms.delete(roomId)
      if (this.client.connected) feed.subscription?.unsubscribe()
    }
  }

  /** False when there is no connection to send on right now. */
  send(roomId: string, text: string): boolean {
    if (!this.client.connected) return false
    this.client.publish({
      destination: `/pub/rooms/${roomId}`,
      body: text,
      headers: { 'content-type': 'text/plain;charset=utf-8' },
    })
    return true
  }

  onNotification(listener: (notification: ChatNotification) => void): () => void {
    this.notificationListeners.add(listener)
    return () => this.notificationListeners.delete(listener)
  }

  onStatus(listener: (status: Status) => void): () => void {
    this.statusListeners.add(listener)
    return () => this.statusListeners.delete(listener)
  }

  close(): void {
    void this.client.deactivate()
  }

  private subscribeRoom(roomId: string, feed: RoomFeed): void {
    const headers: Record<string, string> = { id: `room-${roomId}` }
    if (feed.lastId) headers['resume-after'] = feed.lastId
    feed.subscription = this.client.subscribe(
      `/sub/rooms/${roomId}`,
      (frame) => this.deliver(roomId, feed, frame),
      headers,
    )
  }

  private deliver(roomId: string, feed: RoomFeed, frame: IMessage): void {
    const id = frame.headers['message-id']
    if (!id || feed.seen.has(id)) return
    feed.seen.add(id)
    feed.lastId = id
    feed.onMessage({
      id,
      roomId,
      senderId: frame.headers['sender-id'] ?? '',
      sentAt: frame.headers['sent-at'] ?? new Date().toISOString(),
      text: frame.body,
    })
  }

  private notify(frame: IMessage): void {
    try {
      const notification = JSON.parse(frame.body) as ChatNotification
      for (const listener of this.notificationListeners) listener(notification)
    } catch {
      // a notification we cannot read is not worth breaking the page over
    }
  }

  private setStatus(status: Status): void {
    this.status = status
    for (const listener of this.statusListeners) listener(status)
  }
}
