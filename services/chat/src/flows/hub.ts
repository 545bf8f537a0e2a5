import type { AckMode, StompHeader } from '@timedeal/stomp'
import type { ChatMessage } from '../adapters/message-store.ts'
import { UUID_PATTERN } from '../domain/ids.ts'
import type { ChatConnection, ChatHub } from '../http/ws.ts'
import { StompRefusal } from '../http/ws.ts'

/** The rooms as the flow needs them (RoomStore). */
export interface RoomDirectory {
  find(roomId: string): Promise<{ readonly buyerId: string; readonly sellerId: string } | undefined>
}

/** The message history as the flow needs it (MessageStore). */
export interface MessageLog {
  /** Stores them in one request; those stored before are left as they are. */
  saveMany(messages: readonly ChatMessage[]): Promise<number>
  /** Messages of the room after `afterId`, oldest first. */
  after(roomId: string, afterId: string, limit: number): Promise<ChatMessage[]>
}

/** Notifications as the flow needs them (NotificationStore). */
export interface NotificationLog {
  /** Records each once per (user, message) and answers them as stored. */
  addMany(
    notifications: readonly { userId: string; roomId: string; messageId: string; at: Date }[],
  ): Promise<{ readonly id: string; readonly userId: string; readonly messageId: string }[]>
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
  /** The users present in each room, in one round trip. */
  presentIn(roomIds: Iterable<string>): Promise<Map<string, Set<string>>>
}

/**
 * How far storage has come along the chat topic (Kafka offsets per partition): a message lies
 * below its partition's end once written, and below the shared group's committed offset once stored.
 */
export interface StorageProgress {
  ends(): Promise<Map<number, bigint>>
  stored(): Promise<Map<number, bigint>>
}

/** Pushes a user's notifications to that user's sessions on every instance (Redis pub/sub). */
export interface NotificationFanOut {
  push(userId: string, notification: PushedNotification): Promise<void>
  /** Many pushes in one round trip. */
  pushMany(pushes: readonly { userId: string; notification: PushedNotification }[]): Promise<void>
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

/** Client-acknowledged subscriptions: how often a NACKed message comes again, how many may wait. */
export interface AckLimits {
  readonly maxRedeliveries: number
  /** Delivered and unacknowledged messages one subscription may hold; past it the connection is closed. */
  readonly maxUnacked: number
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
  readonly storage: StorageProgress
  /** How long a resume waits for storage to hold everything sent before it; past it, it is refused. */
  readonly resumeWaitMs: number
  readonly acks: AckLimits
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
/** On a MESSAGE sent again after a NACK. */
export const REDELIVERED_HEADER = 'redelivered'

const REPLAY_PAGE = 500
/** Between two looks at how far storage has come, while a resume waits for it. */
const STORAGE_POLL_MS = 25
/** Headers of a SEND that only steer the frame, not part of the message. */
const HOP_HEADERS = new Set(['destination', 'receipt', 'content-length'])
const utf8 = new TextEncoder()

interface RoomSubscription {
  readonly connection: ChatConnection
  readonly id: string
  readonly roomId: string
  /** While a resume replays history, live messages wait here; undefined once live. */
  pending: ChatMessage[] | undefined
  /**
   * After a resume, per partition, the offset from which messages come live: those below it
   * were in storage when the replay read it, so the replay had them.
   */
  liveFrom: Map<number, bigint> | undefined
  /** Client modes: delivered and not yet acknowledged, by message id, with how often each came again. */
  readonly unacked: Map<string, { readonly message: ChatMessage; redeliveries: number }> | undefined
}

/** A SEND rate per user over a sliding second, estimated from this second's count and the last one's. */
interface SendWindow {
  start: number
  count: number
  previous: number
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
  /** userId → recent sends, for the rate limit. */
  readonly #sends = new Map<string, SendWindow>()

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
    ack: AckMode = 'auto',
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
    // Ids compare as text, so anything else would replay all or nothing without a word.
    if (resumeAfter && !UUID_PATTERN.test(resumeAfter)) {
      throw new StompRefusal(`${RESUME_AFTER_HEADER} must be a message id`)
    }
    const subscription: RoomSubscription = {
      connection,
      id,
      roomId,
      pending: resumeAfter ? [] : undefined,
      liveFrom: undefined,
      unacked: ack === 'auto' ? undefined : new Map(),
    }
    // Live first, then the replay: whatever arrives meanwhile waits, so nothing falls between.
    state.rooms.set(id, subscription)
    addTo(this.#roomSubscribers, roomId, subscription)
    await this.#deps.presence.enter(roomId, connection.userId, connection.sessionId)
    await this.#enter(roomId, connection.userId)
    if (resumeAfter) await this.#resume(state, subscription, resumeAfter)
  }

  /**
   * ACK or NACK of room messages on a client-acknowledged subscription. A NACKed message comes
   * again (`redelivered: true`) up to `maxRedeliveries` times; after that the session is told on
   * its error queue that it was given up.
   */
  settle(connection: ChatConnection, subscriptionId: string, messageIds: readonly string[], nack: boolean): void {
    const state = this.#connections.get(connection.sessionId)
    const subscription = state?.rooms.get(subscriptionId)
    const unacked = subscription?.unacked
    if (!state || !subscription || !unacked) return
    for (const messageId of messageIds) {
      const entry = unacked.get(messageId)
      if (!entry) continue
      if (!nack) {
        unacked.delete(messageId)
      } else if (entry.redeliveries >= this.#deps.acks.maxRedeliveries) {
        unacked.delete(messageId)
        this.#tellError(
          state,
          `message ${messageId} on subscription ${subscriptionId} given up after ${entry.redeliveries} redeliveries`,
        )
      } else {
        entry.redeliveries += 1
        this.#deliverTo(subscription, entry.message, contentOf(entry.message, true))
      }
    }
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
   * Messages the channel brought to this instance (one polled batch of one partition), delivered
   * to its subscribers from memory. Storage is the shared group's work; a resume waits for it.
   */
  async deliver(messages: readonly ChatMessage[]): Promise<void> {
    for (const message of messages) {
      const subscribers = this.#roomSubscribers.get(message.roomId)
      if (!subscribers) continue
      const content = contentOf(message, false)
      for (const subscription of subscribers) {
        if (subscription.pending) subscription.pending.push(message)
        else if (isLive(subscription, message)) this.#deliverTo(subscription, message, content)
      }
    }
  }

  /**
   * The one place messages are stored for good and absent members notified (one consumer group
   * for all instances): a batch is stored in one request, presence of its rooms read in one
   * round trip (none for a room whose members are both here), and a member without a session in
   * the room gets a notification.
   */
  async record(messages: readonly ChatMessage[]): Promise<void> {
    await this.#deps.messages.saveMany(messages)
    const roomIds = new Set(messages.map(({ roomId }) => roomId))
    const rooms = new Map(
      await Promise.all([...roomIds].map(async (roomId) => [roomId, await this.#deps.rooms.find(roomId)] as const)),
    )
    // Both members in the room on this very instance are present: Redis is asked only about the others.
    const allHere = new Set(
      [...rooms]
        .filter(([roomId, room]) => room && this.#isHere(roomId, room.buyerId) && this.#isHere(roomId, room.sellerId))
        .map(([roomId]) => roomId),
    )
    const present = await this.#deps.presence.presentIn([...roomIds].filter((roomId) => !allHere.has(roomId)))
    const missed: { userId: string; message: ChatMessage }[] = []
    for (const message of messages) {
      const room = rooms.get(message.roomId)
      if (!room || allHere.has(message.roomId)) continue
      for (const userId of [room.buyerId, room.sellerId]) {
        if (userId !== message.senderId && !present.get(message.roomId)?.has(userId)) missed.push({ userId, message })
      }
    }
    await this.#notify(missed)
  }

  /** Whether `userId` has a live subscription to the room on this instance (and so is present). */
  #isHere(roomId: string, userId: string): boolean {
    for (const subscription of this.#roomSubscribers.get(roomId) ?? []) {
      if (subscription.connection.userId === userId) return true
    }
    return false
  }

  /** Notifications of missed messages: recorded in one write, then pushed in one round trip. */
  async #notify(missed: readonly { userId: string; message: ChatMessage }[]): Promise<void> {
    if (missed.length === 0) return
    const stored = await this.#deps.notifications.addMany(
      missed.map(({ userId, message }) => ({
        userId,
        roomId: message.roomId,
        messageId: message.id,
        at: message.sentAt,
      })),
    )
    const idOf = new Map(stored.map(({ id, userId, messageId }) => [`${userId}|${messageId}`, id]))
    await this.#deps.fanOut.pushMany(
      missed.flatMap(({ userId, message }) => {
        const id = idOf.get(`${userId}|${message.id}`)
        if (id === undefined) return []
        const notification: PushedNotification = {
          type: 'message',
          id,
          roomId: message.roomId,
          messageId: message.id,
          senderId: message.senderId,
          at: message.sentAt.toISOString(),
        }
        return [{ userId, notification }]
      }),
    )
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

  /**
   * Replays what came after `afterId`, then goes live, with no gap and no duplicate. Live
   * delivery does not wait for storage, so the replay first waits until storage holds every
   * message written before the subscription went live (past `resumeWaitMs` the subscription is
   * refused, never left with a gap). Messages below those ends come from storage, the rest live.
   */
  async #resume(state: ConnectionState, subscription: RoomSubscription, afterId: string): Promise<void> {
    let ends: Map<number, bigint>
    try {
      ends = await this.#storedUpToNow()
    } catch (error) {
      this.#dropRoomSubscription(state, subscription)
      throw error
    }
    for (let cursor: string | undefined = afterId; cursor !== undefined; ) {
      const page = await this.#deps.messages.after(subscription.roomId, cursor, REPLAY_PAGE)
      for (const message of page) {
        if (!belowEnds(message, ends)) continue
        this.#deliverTo(subscription, message, contentOf(message, false))
      }
      cursor = page.length < REPLAY_PAGE ? undefined : page.at(-1)?.id
    }
    const waiting = subscription.pending ?? []
    subscription.pending = undefined
    subscription.liveFrom = ends
    for (const message of waiting) {
      if (isLive(subscription, message)) this.#deliverTo(subscription, message, contentOf(message, false))
    }
  }

  /** The chat topic's ends now, once the shared group has stored everything below them. */
  async #storedUpToNow(): Promise<Map<number, bigint>> {
    const ends = await this.#deps.storage.ends()
    const deadline = this.#now() + this.#deps.resumeWaitMs
    for (;;) {
      const stored = await this.#deps.storage.stored()
      if ([...ends].every(([partition, end]) => (stored.get(partition) ?? 0n) >= end)) return ends
      if (this.#now() >= deadline) throw new StompRefusal('history is catching up; retry')
      await new Promise((resolve) => setTimeout(resolve, STORAGE_POLL_MS))
    }
  }

  #deliverTo(subscription: RoomSubscription, message: ChatMessage, content: MessageContent): void {
    if (!subscription.connection.deliver(subscription.id, content)) return
    const unacked = subscription.unacked
    if (!unacked) return
    const entry = unacked.get(message.id)
    if (!entry) unacked.set(message.id, { message, redeliveries: 0 })
    // A client that never acknowledges would have the server hold its messages without end.
    if (unacked.size > this.#deps.acks.maxUnacked) {
      subscription.connection.fail(
        `more than ${this.#deps.acks.maxUnacked} unacknowledged messages on subscription ${subscription.id}`,
      )
    }
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
    const rate = this.#countSend(connection.userId)
    if (rate > this.#deps.rate.hard) throw new StompRefusal('sending too fast')
    if (rate <= this.#deps.rate.soft) return true
    const state = this.#connections.get(connection.sessionId)
    if (state) {
      this.#tellError(state, `sending too fast: at most ${this.#deps.rate.soft} messages per second; message dropped`)
    }
    return false
  }

  /**
   * Counts one send of the user and answers their sends over the last second, this one
   * included: this second's count plus the share of the last second's still inside the window.
   */
  #countSend(userId: string): number {
    const now = this.#now()
    let window = this.#sends.get(userId)
    if (!window) {
      window = { start: now, count: 0, previous: 0 }
      this.#sends.set(userId, window)
    }
    const elapsed = now - window.start
    if (elapsed >= 2000) Object.assign(window, { start: now, count: 0, previous: 0 })
    else if (elapsed >= 1000) Object.assign(window, { start: window.start + 1000, count: 0, previous: window.count })
    window.count += 1
    const overlap = 1 - (now - window.start) / 1000
    return Math.floor(window.previous * overlap) + window.count
  }

  /** A soft error on the session's `/user/queue/errors` subscriptions (the connection stays). */
  #tellError(state: ConnectionState, text: string): void {
    const body = utf8.encode(text)
    for (const id of state.errorIds) {
      state.connection.deliver(id, {
        destination: ERRORS_QUEUE,
        headers: [['content-type', 'text/plain']],
        body,
      })
    }
  }

  #state(connection: ChatConnection): ConnectionState {
    const state = this.#connections.get(connection.sessionId)
    if (!state) throw new Error(`connection ${connection.sessionId} is not known to the hub`)
    return state
  }
}

type MessageContent = Parameters<ChatConnection['deliver']>[1]

/** A room message as every subscriber gets it: built once per message, not once per delivery. */
function contentOf(message: ChatMessage, redelivered: boolean): MessageContent {
  const serverHeaders: StompHeader[] = [
    [SENDER_HEADER, message.senderId],
    [SENT_AT_HEADER, message.sentAt.toISOString()],
  ]
  if (redelivered) serverHeaders.push([REDELIVERED_HEADER, 'true'])
  return {
    destination: `${ROOM_TOPIC_PREFIX}${message.roomId}`,
    messageId: message.id,
    serverHeaders,
    headers: message.headers,
    body: message.body,
  }
}

/** Whether a message written before the replay read storage (and so replayed from it, if it was asked for). */
function belowEnds(message: ChatMessage, ends: Map<number, bigint>): boolean {
  if (!message.position) return true
  return message.position.offset < (ends.get(message.position.partition) ?? 0n)
}

/** Whether a live message is the subscription's to get live: after a resume, only what the replay could not have. */
function isLive(subscription: RoomSubscription, message: ChatMessage): boolean {
  return !subscription.liveFrom || !message.position || !belowEnds(message, subscription.liveFrom)
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
