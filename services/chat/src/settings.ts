import {
  authSettings,
  kafkaSettings,
  mongoSettings,
  mysqlSettings,
  originList,
  positiveInt,
  redisSettings,
  serviceSettings,
} from '@timedeal/platform'
import { z } from 'zod'

/** goods-service, asked who sells a goods item when a buyer opens a room about it. */
function goodsSettings() {
  return {
    GOODS_URL: z.url({ error: 'expected the base URL of goods-service' }).default('http://127.0.0.1:8082'),
    /** How long one call to goods-service may take. */
    GOODS_TIMEOUT_MS: positiveInt(2_000),
    /** Consecutive failures (timeouts, refused connections, 5xx) that stop calls for GOODS_BREAKER_OPEN_MS. */
    GOODS_BREAKER_THRESHOLD: positiveInt(5),
    GOODS_BREAKER_OPEN_MS: positiveInt(5_000),
  }
}

/** The gateway's origin and the local development origins: browsers elsewhere are refused at the upgrade. */
const DEFAULT_ALLOWED_ORIGINS = ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://localhost:5173']

/** The STOMP endpoint `/ws/chat`: who may open it, how large frames are, how fast a user may send. */
function realtimeSettings() {
  return {
    CHAT_ALLOWED_ORIGINS: originList().default(DEFAULT_ALLOWED_ORIGINS),
    CHAT_MAX_FRAME_BYTES: positiveInt(128 * 1024),
    CHAT_MAX_BODY_BYTES: positiveInt(16 * 1024),
    CHAT_MAX_HEADERS: positiveInt(64),
    CHAT_MAX_HEADER_LINE_BYTES: positiveInt(8 * 1024),
    CHAT_MAX_SUBSCRIPTIONS: positiveInt(100),
    /** Bytes waiting to be written to one connection; past it the slow client is disconnected. */
    CHAT_SEND_BUFFER_BYTES: positiveInt(1024 * 1024),
    /** The server's heart-beat offer, both ways (ms). */
    CHAT_HEARTBEAT_MS: positiveInt(10_000),
    CHAT_CONNECT_TIMEOUT_MS: positiveInt(10_000),
    /** SENDs per user per second, across that user's connections on this instance. */
    CHAT_SEND_RATE_PER_SECOND: positiveInt(20),
    /** Past this rate the connection gets ERROR and is closed; between the two, an error MESSAGE. */
    CHAT_SEND_HARD_RATE_PER_SECOND: positiveInt(60),
    /** How long a member counts as present in a room once its instance stops renewing it (ms). */
    CHAT_PRESENCE_TTL_MS: positiveInt(30_000),
    /** The consumer group shared by every instance that stores messages and notifies; each instance also has its own under this name. */
    CHAT_MESSAGES_GROUP: z.string().min(1).default('chat-service.messages'),
    /** How long a SUBSCRIBE with resume-after waits for storage to catch up before it is refused (ms). */
    CHAT_RESUME_WAIT_MS: positiveInt(5_000),
    /** Times a NACKed message is delivered again before it is given up. */
    CHAT_MAX_REDELIVERIES: z.coerce.number().int().min(0).default(3),
    /** Unacknowledged messages one client-acknowledged subscription may hold; past it the connection is closed. */
    CHAT_MAX_UNACKED: positiveInt(1_000),
    /** Rooms kept in memory (a room never changes once opened). */
    CHAT_ROOM_CACHE_SIZE: positiveInt(100_000),
    /** Before every Redis key and channel of the chat (presence, notifications). */
    CHAT_REDIS_PREFIX: z.string().min(1).default('chat'),
  }
}

/** Every setting of chat-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('chat-service', 8085),
  ...mysqlSettings('timedeal_chat'),
  ...mongoSettings('timedeal_chat'),
  ...redisSettings(),
  ...kafkaSettings(),
  ...authSettings(),
  ...realtimeSettings(),
  ...goodsSettings(),
})

export type Settings = z.infer<typeof settingsSchema>
