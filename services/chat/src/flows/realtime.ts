import type { AppEnv, Connectors, EventSubscription, Logger, TokenVerifier } from '@timedeal/platform'
import type { Hono } from 'hono'
import type { WebSocketServer } from 'ws'
import { ChatEvents, instanceGroup, StoredOffsets } from '../adapters/chat-events.ts'
import type { MessageStore } from '../adapters/message-store.ts'
import type { NotificationStore } from '../adapters/notification-store.ts'
import { RedisNotificationFanOut, RedisPresence } from '../adapters/presence.ts'
import { RoomCache } from '../adapters/room-cache.ts'
import type { RoomStore } from '../adapters/room-store.ts'
import { newMessageId } from '../domain/ids.ts'
import { chatSocketRoutes, createChatSocketServer } from '../http/ws.ts'
import type { Settings } from '../settings.ts'
import { ChatFlow } from './hub.ts'

export interface RealtimeDeps {
  readonly connect: Connectors
  readonly settings: Settings
  readonly logger: Logger
  readonly verifier: TokenVerifier
  readonly stores: {
    readonly rooms: RoomStore
    readonly messages: MessageStore
    readonly notifications: NotificationStore
  }
}

export interface Realtime {
  /** The `/ws/chat` route, to mount on the public routes. */
  readonly routes: Hono<AppEnv>
  /** The `ws` server the public listener hands the upgrades to. */
  readonly websocket: WebSocketServer
  stop(): Promise<void>
}

/**
 * The STOMP endpoint and the message flow behind it: the chat topic (one shared group stores
 * and notifies, one group of this instance's own delivers to its subscribers from memory), presence in
 * Redis renewed while sessions stay, notifications pushed across instances.
 */
export async function startRealtime(deps: RealtimeDeps): Promise<Realtime> {
  const { connect, settings, logger, stores } = deps
  const [bus, redis] = await Promise.all([connect.kafka(), connect.redis()])
  // A subscribed Redis connection can do nothing else: the notification channel gets its own.
  const subscriber = redis.duplicate()
  subscriber.on('error', (error: Error) => logger.warn({ err: error }, 'redis notification listener error'))
  const events = await ChatEvents.open(bus)
  const storage = await StoredOffsets.open(bus, settings.CHAT_MESSAGES_GROUP)
  const presence = new RedisPresence(redis, settings.CHAT_REDIS_PREFIX, settings.CHAT_PRESENCE_TTL_MS)
  const fanOut = new RedisNotificationFanOut(redis, settings.CHAT_REDIS_PREFIX)
  const flow = new ChatFlow({
    rooms: new RoomCache(stores.rooms, settings.CHAT_ROOM_CACHE_SIZE),
    messages: stores.messages,
    notifications: stores.notifications,
    channel: events,
    presence,
    fanOut,
    newMessageId,
    rate: { soft: settings.CHAT_SEND_RATE_PER_SECOND, hard: settings.CHAT_SEND_HARD_RATE_PER_SECOND },
    storage,
    resumeWaitMs: settings.CHAT_RESUME_WAIT_MS,
    acks: { maxRedeliveries: settings.CHAT_MAX_REDELIVERIES, maxUnacked: settings.CHAT_MAX_UNACKED },
  })
  await fanOut.listen(subscriber, (userId, notification) => flow.pushLocal(userId, notification))
  const subscriptions: EventSubscription[] = []
  subscriptions.push(
    await events.consume(settings.CHAT_MESSAGES_GROUP, (messages) => flow.record(messages), {
      fromBeginning: true,
      commitOffsets: true,
    }),
  )
  subscriptions.push(
    await events.consume(instanceGroup(settings.CHAT_MESSAGES_GROUP), (messages) => flow.deliver(messages), {
      fromBeginning: false,
      commitOffsets: false,
    }),
  )
  const renewal = setInterval(
    () => {
      presence
        .renew(flow.presentHere())
        .catch((error: unknown) => logger.warn({ err: error }, 'presence renewal failed'))
    },
    Math.max(1000, Math.floor(settings.CHAT_PRESENCE_TTL_MS / 3)),
  )
  renewal.unref()
  const limits = {
    allowedOrigins: settings.CHAT_ALLOWED_ORIGINS,
    maxFrameBytes: settings.CHAT_MAX_FRAME_BYTES,
    maxBodyBytes: settings.CHAT_MAX_BODY_BYTES,
    maxHeaders: settings.CHAT_MAX_HEADERS,
    maxHeaderLineBytes: settings.CHAT_MAX_HEADER_LINE_BYTES,
    maxSubscriptions: settings.CHAT_MAX_SUBSCRIPTIONS,
    sendBufferBytes: settings.CHAT_SEND_BUFFER_BYTES,
    heartBeatMs: settings.CHAT_HEARTBEAT_MS,
    connectTimeoutMs: settings.CHAT_CONNECT_TIMEOUT_MS,
  }
  const websocket = createChatSocketServer(limits)
  const routes = chatSocketRoutes({ hub: flow, verifier: deps.verifier, limits, logger })
  return {
    routes,
    websocket,
    async stop() {
      clearInterval(renewal)
      for (const client of websocket.clients) client.close(1001, 'server shutting down')
      await Promise.all(subscriptions.map((subscription) => subscription.close()))
      await events.close()
      await storage.close()
      subscriber.disconnect()
    },
  }
}
