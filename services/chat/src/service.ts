import {
  type Connectors,
  type Logger,
  type Routes,
  type TokenVerifier,
  tokenVerifierFromSettings,
} from '@timedeal/platform'
import type { WebSocketServer } from 'ws'
import { createGoodsClient, type GoodsClient } from './adapters/goods-client.ts'
import { MessageStore } from './adapters/message-store.ts'
import { NotificationStore } from './adapters/notification-store.ts'
import { RoomStore } from './adapters/room-store.ts'
import { startRealtime } from './flows/realtime.ts'
import { createRooms, type Rooms } from './flows/rooms.ts'
import { publicRoutes } from './http/index.ts'
import type { Settings } from './settings.ts'

export interface ChatServiceDeps {
  /** Opens the service's servers; each one opened is watched by /readyz and closed on shutdown. */
  readonly connect: Connectors
  readonly settings: Settings
  readonly logger: Logger
  /** Defaults to the verifier of the JWT_* settings. */
  readonly verifier?: TokenVerifier
  /** Defaults to the HTTP client of `GOODS_URL`, with the policies its settings describe. */
  readonly goods?: GoodsClient
}

export interface ChatStores {
  readonly rooms: RoomStore
  readonly messages: MessageStore
  readonly notifications: NotificationStore
}

export interface ChatService {
  readonly publicRoutes: Routes
  readonly stores: ChatStores
  readonly rooms: Rooms
  readonly verifier: TokenVerifier
  /** The `ws` server of `/ws/chat`, for the public listener's upgrades. */
  readonly websocket: WebSocketServer
  stop(): Promise<void>
}

/**
 * Builds chat-service: the composition root. Every server is connected at start, so a missing
 * one fails fast and /readyz reports it even before the domain uses it.
 */
export async function startChatService(deps: ChatServiceDeps): Promise<ChatService> {
  const { connect, settings, logger } = deps
  const [sequelize, mongo] = await Promise.all([connect.mysql(), connect.mongo(), connect.redis(), connect.kafka()])
  const verifier = deps.verifier ?? tokenVerifierFromSettings(settings)
  const goods =
    deps.goods ??
    createGoodsClient({
      baseUrl: settings.GOODS_URL,
      timeoutMs: settings.GOODS_TIMEOUT_MS,
      failureThreshold: settings.GOODS_BREAKER_THRESHOLD,
      openMs: settings.GOODS_BREAKER_OPEN_MS,
      logger: logger.child({ component: 'goods-client' }),
    })
  const stores: ChatStores = {
    rooms: new RoomStore(sequelize),
    messages: new MessageStore(mongo),
    notifications: new NotificationStore(sequelize),
  }
  // The history reads are ranges on this index: it exists before the first request is served.
  await stores.messages.ensureIndexes()
  const rooms = createRooms({ ...stores, goods })
  const realtime = await startRealtime({ connect, settings, logger, verifier, stores })
  return {
    publicRoutes: publicRoutes({ rooms, verifier }).route('/', realtime.routes),
    stores,
    rooms,
    verifier,
    websocket: realtime.websocket,
    stop: () => realtime.stop(),
  }
}
