import type { StompHeader } from '@timedeal/stomp'
import type { ChatMessage } from '../adapters/message-store.ts'
import type { ChatConnection, ChatHub } from '../http/ws.ts'
import { StompRefusal } from '../http/ws.ts'

/** The rooms as the flow needs them (RoomStore). */
export interface RoomDirectory {
  find(roomId: string): Promise<{ readonly buyerId: string; readonly sellerId: string } | undefined>
}

/** The message history as the flow needs it (MessageStore). */
export interface MessageLog {
  /** True when the message is new; saving it again changes nothing. */
  save(message: ChatMessage): Promise<boolean>
  /** Messages of the room after `afterId`, oldest first. */
  after(roomId: string, afterId: string, limit: number): Promise<ChatMessage[]>
}

/** Notifications as the flow needs them (NotificationStore). */
export interface NotificationLog {
  add(notification: { userId: string; roomId: string; messageId: string; at: Date }): Promise<{ readonly id: string }>
  markRoomRead(roomId: string, userId: string): Promise<unknown>
}

/** Carries messages between instances (Kafka, keyed by room). */
export interface MessageChannel {
  /** Resolves once the message is durable (acknowledged by every in-sync replica). */
  publish(message: ChatMessage): Promise<void>
}

/** Who is in which room right now, across instances (Redis). */
export interface Presence {
  enter(roomId: string, userId: string, sessionId: string): Promise<void>
  leave(roomId: string, userId: string, sessionId: string): Promise<void>
  isPresent(roomId: string, userId: string): Promise<boolean>
}

/** Pushes a user's notifications to that user's sessions on every instance (Redis pub/sub). */
export interface NotificationFanOut {
  push(userId: string, notification: PushedNotification): Promise<void>
}

/** What `/user/queue/notifications` carries (JSON): a message the user missed, or their peer reading the room. */
export type PushedNotification =
  | {
      readonly type: 'message'
      readonly id: string
      readonly roomId: string
      readonly messageId: string
      readonly senderId: string
      readonly at: string
    }
  | { readonly type: 'read'; readonly roomId: string; readonly readerId: string; readonly at: string }

export interface RateLimit {
  /** Sends per second above which a user gets an error MESSAGE (the connection stays). */
  readonly soft: number
  /** Sends per second above which the connection is ended. */
  readonly hard: number
}

export interface ChatFlowDeps {
  readonly rooms: RoomDirectory
  readonly messages: MessageLog
  readonly notifications: NotificationLog
  readonly channel: MessageChannel
  readonly presence: Presence
  readonly fanOut: NotificationFanOut
  readonly newMessageId: (now: number) => string
  readonly rate: RateLimit
  readonly now?: () => number
}

export const ROOM_SEND_PREFIX = '/pub/rooms/'
export const ROOM_TOPIC_PREFIX = '/sub/rooms/'
export const NOTIFICATIONS_QUEUE = '/user/queue/notifications'
export const ERRORS_QUEUE = '/user/queue/errors'
/** A SUBSCRIBE header: replay the room's messages after this id, then go live. */
export const RESUME_AFTER_HEADER = 'resume-after'
/** Headers the server vouches for on every MESSAGE of a room. */
export const SENDER_HEADER = 'sender-id'
export const SENT_AT_HEADER = 'sent-at'

const REPLAY_PAGE = 500
/** Headers of a SEND that only steer the frame, not part of the message. */
const HOP_HEADERS = new Set(['destination', 'receipt', 'content-length'])
const utf8 = new TextEncoder()

interface RoomSubscription {
  readonly connection: ChatConnection
  readonly id: string
  readonly roomId: string
  /** While a resume replays history, live messages wait here; undefined once live. */
  pending: ChatMessage[] | undefined
  /** Ids the replay delivered, so a live copy of the same message is not delivered twice. */
  replayed: Set<string> | undefined
}

interface ConnectionState {
  readonly connection: ChatConnection
  readonly rooms: Map<string, RoomSubscription>
  /** Subscription ids on the user's notification queue. */
  readonly notificationIds: Set<string>
  readonly errorIds: Set<string>
}

/**
 * The message flow of one instance: checks a SEND (destination, membership, rate), hands it to
 * the channel and answers once it is durable; delivers what the channel brings to this
 * instance's own subscribers; keeps presence and notifies absent members.
 */
export class ChatFlow implements ChatHub {
  readonly #deps: ChatFlowDeps
  readonly #now: () => number
  readonly #connections = new Map<string, ConnectionState>()
  /** roomId → this instance's subscriptions to it. */
  readonly #roomSubscribers = new Map<string, Set<RoomSubscription>>()
  /** userId → connections of that user on this instance. */
  readonly #userConnections = new Map<string, Set<ConnectionState>>()
  /** userId → send times of the last second, for the rate limit. */
  readonly #sends = new Map<string, number[]>()

  constructor(deps: ChatFlowDeps) {
    this.#deps = deps
    this.#now = deps.now ?? Date.now
  }

  connected(connection: ChatConnection): void {
    const state: ConnectionState = { connection, rooms: new Map(), notificationIds: new Set(), errorIds: new Set() }
    this.#connections.set(connection.sessionId, state)
    addTo(this.#userConnections, connection.userId, state)
  }

  async send(
    connection: ChatConnection,
    destination: string,
    headers: readonly StompHeader[],
    body: Uint8Array,
  ): Promise<boolean> {
    const roomId = roomOf(destination, ROOM_SEND_PREFIX)
    if (!roomId)
      throw new StompRefusal(`cannot send to ${JSON.stringify(destination)}; send to ${ROOM_SEND_PREFIX}{roomId}`)
    if (!this.#withinRate(connection)) return false
    await this.#requireMember(roomId, connection.userId)
    const now = this.#now()
    await this.#deps.channel.publish({
      id: this.#deps.newMessageId(now),
      roomId,
      senderId: connection.userId,
      body,
      headers: headers.filter(([name]) => !HOP_HEADERS.has(name)).map(([name, value]) => [name, value]),
      sentAt: new Date(now),
    })
    return true
  }

  async subscribe(
    connection: ChatConnection,
    id: string,
    destination: string,
    headers: readonly StompHeader[],
  ): Promise<void> {
    const state = this.#state(connection)
    if (destination === NOTIFICATIONS_QUEUE) {
      state.notificationIds.add(id)
      return
    }
    if (destination === ERRORS_QUEUE) {
      state.errorIds.add(id)
      return
    }
    const roomId = roomOf(destination, ROOM_TOPIC_PREFIX)
    if (!roomId) throw new StompRefusal(`unknown destination ${JSON.stringify(destination)}`)
    await this.#requireMember(roomId, connection.userId)
    const resumeAfter = headers.find(([name]) => name === RESUME_AFTER_HEADER)?.[1]
    const subscription: RoomSubscription = {
      connection,
      id,
      roomId,
      pending: resumeAfter ? [] : undefined,
      replayed: undefined,
    }
    // Live first, then the replay: whatever arrives meanwhile waits, so nothing falls between.
    state.rooms.set(id, subscription)
    addTo(this.#roomSubscribers, roomId, subscription)
    await this.#deps.presence.enter(roomId, connection.userId, connection.sessionId)
    await this.#enter(roomId, connection.userId)
    if (resumeAfter) await this.#replay(subscription, resumeAfter)
  }

  unsubscribe(connection: ChatConnection, id: string): void {
    const state = this.#connections.get(connection.sessionId)
    if (!state) return
    state.notificationIds.delete(id)
    state.errorIds.delete(id)
    const subscription = state.rooms.get(id)
    if (!subscription) return
    this.#dropRoomSubscription(state, subscription)
  }

  disconnected(connection: ChatConnection): void {
    const state = this.#connections.get(connection.sessionId)
    if (!state) return
    this.#connections.delete(connection.sessionId)
    removeFrom(this.#userConnections, connection.userId, state)
    if (!this.#userConnections.has(connection.userId)) this.#sends.delete(connection.userId)
    for (const subscription of [...state.rooms.values()]) this.#dropRoomSubscription(state, subscription)
  }

  /**
   * A message the channel brought to this instance: stored (once, whoever stores first) before
   * it is delivered, so a resume that reads storage misses nothing delivered live.
   */
  async deliver(message: ChatMessage): Promise<void> {
    await this.#deps.messages.save(message)
    for (const subscription of this.#roomSubscribers.get(message.roomId) ?? []) {
      if (subscription.pending) subscription.pending.push(message)
      else this.#deliverTo(subscription, message)
    }
  }

  /**
   * The one place a message is stored for good and its absent members notified (one consumer
   * group for all instances): a member without a session in the room gets a notification.
   */
  async record(message: ChatMessage): Promise<void> {
    await this.#deps.messages.save(message)
    const room = await this.#deps.rooms.find(message.roomId)
    if (!room) return
    for (const userId of [room.buyerId, room.sellerId]) {
      if (userId === message.senderId) continue
      if (await this.#deps.presence.isPresent(message.roomId, userId)) continue
      const notification = await this.#deps.notifications.add({
        userId,
        roomId: message.roomId,
        messageId: message.id,
        at: message.sentAt,
      })
      await this.#deps.fanOut.push(userId, {
        type: 'message',
        id: notification.id,
        roomId: message.roomId,
        messageId: message.id,
        senderId: message.senderId,
        at: message.sentAt.toISOString(),
      })
    }
  }

  /** A notification pushed to `userId` (from any instance): every session of theirs here that listens gets it. */
  pushLocal(userId: string, notification: PushedNotification): void {
    const body = utf8.encode(JSON.stringify(notification))
    for (const state of this.#userConnections.get(userId) ?? []) {
      for (const id of state.notificationIds) {
        state.connection.deliver(id, {
          destination: NOTIFICATIONS_QUEUE,
          messageId:
            notification.type === 'message'
              ? `notification-${notification.id}`
              : `read-${notification.roomId}-${notification.readerId}-${notification.at}`,
          headers: [['content-type', 'application/json']],
          body,
        })
      }
    }
  }

  /** Every (room, user, session) present on this instance, for presence to keep alive. */
  presentHere(): { roomId: string; userId: string; sessionId: string }[] {
    return [...this.#connections.values()].flatMap((state) =>
      [...state.rooms.values()].map((subscription) => ({
        roomId: subscription.roomId,
        userId: state.connection.userId,
        sessionId: state.connection.sessionId,
      })),
    )
  }

  /** Entering a room reads it: its notifications are marked read and the other member is told. */
  async #enter(roomId: string, userId: string): Promise<void> {
    await this.#deps.notifications.markRoomRead(roomId, userId)
    const room = await this.#deps.rooms.find(roomId)
    const peer = room?.buyerId === userId ? room.sellerId : room?.buyerId
    if (!peer) return
    await this.#deps.fanOut.push(peer, {
      type: 'read',
      roomId,
      readerId: userId,
      at: new Date(this.#now()).toISOString(),
    })
  }

  async #replay(subscription: RoomSubscription, afterId: string): Promise<void> {
    const replayed = new Set<string>()
    let cursor = afterId
    for (;;) {
      const page = await this.#deps.messages.after(subscription.roomId, cursor, REPLAY_PAGE)
      for (const message of page) {
        replayed.add(message.id)
        this.#deliverTo(subscription, message)
      }
      const last = page.at(-1)
      if (!last || page.length < REPLAY_PAGE) break
      cursor = last.id
    }
    const waiting = subscription.pending ?? []
    subscription.pending = undefined
    for (const message of waiting) if (!replayed.has(message.id)) this.#deliverTo(subscription, message)
  }

  #deliverTo(subscription: RoomSubscription, message: ChatMessage): void {
    subscription.connection.deliver(subscription.id, {
      destination: `${ROOM_TOPIC_PREFIX}${message.roomId}`,
      messageId: message.id,
      serverHeaders: [
        [SENDER_HEADER, message.senderId],
        [SENT_AT_HEADER, message.sentAt.toISOString()],
      ],
      headers: message.headers,
      body: message.body,
    })
  }

  #dropRoomSubscription(state: ConnectionState, subscription: RoomSubscription): void {
    state.rooms.delete(subscription.id)
    removeFrom(this.#roomSubscribers, subscription.roomId, subscription)
    const stillThere = [...state.rooms.values()].some((other) => other.roomId === subscription.roomId)
    if (!stillThere) {
      void this.#deps.presence
        .leave(subscription.roomId, state.connection.userId, state.connection.sessionId)
        .catch(() => undefined) // it expires on its own
    }
  }

  async #requireMember(roomId: string, userId: string): Promise<void> {
    const room = await this.#deps.rooms.find(roomId)
    if (!room || (room.buyerId !== userId && room.sellerId !== userId)) {
      throw new StompRefusal(`not a member of room ${JSON.stringify(roomId.slice(0, 64))}`)
    }
  }

  /** Counts the send; false (after telling the client) when it is over the soft limit. */
  #withinRate(connection: ChatConnection): boolean {
    const now = this.#now()
    const recent = (this.#sends.get(connection.userId) ?? []).filter((at) => now - at < 1000)
    recent.push(now)
    this.#sends.set(connection.userId, recent)
    if (recent.length > this.#deps.rate.hard) throw new StompRefusal('sending too fast')
    if (recent.length <= this.#deps.rate.soft) return true
    const state = this.#connections.get(connection.sessionId)
    for (const id of state?.errorIds ?? []) {
      connection.deliver(id, {
        destination: ERRORS_QUEUE,
        headers: [['content-type', 'text/plain']],
        body: utf8.encode(`sending too fast: at most ${this.#deps.rate.soft} messages per second; message dropped`),
      })
    }
    return false
  }

  #state(connection: ChatConnection): ConnectionState {
    const state = this.#connections.get(connection.sessionId)
    if (!state) throw new Error(`connection ${connection.sessionId} is not known to the hub`)
    return state
  }
}

/** The room id of `/pub/rooms/{id}` or `/sub/rooms/{id}`, or undefined. */
function roomOf(destination: string, prefix: string): string | undefined {
  if (!destination.startsWith(prefix)) return undefined
  const roomId = destination.slice(prefix.length)
  return /^[A-Za-z0-9-]{1,64}$/.test(roomId) ? roomId : undefined
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key)
  if (!set) {
    set = new Set()
    map.set(key, set)
  }
  set.add(value)
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key)
  if (!set) return
  set.delete(value)
  if (set.size === 0) map.delete(key)
}
