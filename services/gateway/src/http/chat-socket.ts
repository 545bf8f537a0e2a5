import type { IncomingMessage } from 'node:http'
import { upgradeWebSocket } from '@hono/node-server'
import { type AppEnv, Problem } from '@timedeal/platform'
import { Hono } from 'hono'
import type { SocketPassthrough } from '../adapters/socket-passthrough.ts'
import { CHAT_SOCKET_PATH } from '../domain/routing.ts'
import { forwardingHeaders } from './proxy.ts'

/**
 * `/ws/chat`: an upgrade that got past the gateway's limits is handed to the passthrough, which
 * carries it to chat-service as it is. `upgradeWebSocket` only tells the listener to go on with
 * the upgrade; the passthrough, standing in for a `ws` server, never accepts it here.
 */
export function chatSocketRoutes(passthrough: SocketPassthrough, trustProxy: boolean): Hono<AppEnv> {
  return new Hono<AppEnv>().all(
    CHAT_SOCKET_PATH,
    async (c, next) => {
      const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket' || !incoming) {
        throw new Problem({
          status: 426,
          code: 'UPGRADE_REQUIRED',
          detail: `${CHAT_SOCKET_PATH} is a WebSocket (STOMP) endpoint; open it with a WebSocket client`,
          headers: { upgrade: 'websocket' },
        })
      }
      passthrough.prepare(incoming, {
        ...forwardingHeaders(c, trustProxy),
        traceparent: c.var.traceparent,
        'x-request-id': c.var.requestId,
      })
      await next()
    },
    upgradeWebSocket(() => ({})),
  )
}
