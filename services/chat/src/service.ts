import type { Connectors, Routes } from '@timedeal/platform'
import { publicRoutes } from './http/index.ts'

export interface ChatServiceDeps {
  /** Opens the service's servers; each one opened is watched by /readyz and closed on shutdown. */
  readonly connect: Connectors
}

export interface ChatService {
  readonly publicRoutes: Routes
  /** Nothing runs in the background yet, so there is nothing to wait for. */
  stop(): Promise<void>
}

/**
 * Builds chat-service: the composition root. Every server is connected at start, so a missing
 * one fails fast and /readyz reports it even before the domain uses it.
 */
export async function startChatService({ connect }: ChatServiceDeps): Promise<ChatService> {
  await Promise.all([connect.mysql(), connect.mongo(), connect.redis(), connect.kafka()])
  return {
    publicRoutes: publicRoutes(),
    async stop() {},
  }
}
