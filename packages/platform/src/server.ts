import type { Server } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'
import type { ListenerWebSocketServer } from './http.ts'
import { type Lifecycle, stopOnSignal } from './lifecycle.ts'
import type { Logger } from './logger.ts'

export interface Listener {
  // biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env type
  readonly app: Hono<any>
  readonly host: string
  readonly port: number
  /** The setting that names the port, for the message when the port is taken. */
  readonly portSetting: string
  /** What listens here, for the log (`public`, `internal`). */
  readonly name: string
  /** Takes the WebSocket upgrades the app accepts. */
  readonly websocket?: ListenerWebSocketServer
}

export interface ServeOptions {
  readonly listeners: readonly Listener[]
  readonly logger: Logger
  readonly lifecycle: Lifecycle
  /** How long the listeners keep serving, not ready, after the signal. */
  readonly drainMs: number
  /** The whole shutdown; past it the process exits 1. */
  readonly shutdownTimeoutMs: number
}

/**
 * Listens on every listener, and on SIGTERM or SIGINT shuts down gracefully: readiness turns
 * false at once while the listeners keep serving (in-flight and new requests) for the drain
 * period, so load balancers stop sending traffic first; then the listeners close, in-flight
 * requests finish, and clients close in reverse order. A port that is taken is one clear line
 * and exit code 1.
 */
export async function serveUntilSignal(options: ServeOptions): Promise<Server[]> {
  const { logger, lifecycle } = options
  const servers: Server[] = []
  for (const listener of options.listeners) servers.push(await listen(listener, logger, lifecycle))
  stopOnSignal(lifecycle, {
    logger,
    deadlineMs: options.shutdownTimeoutMs,
    drain: async () => {
      if (options.drainMs > 0) {
        logger.info({ drainMs: options.drainMs }, 'not ready; still serving for the drain period')
        await sleep(options.drainMs)
      }
      await Promise.all(servers.map((server, index) => closeServer(server, options.listeners[index]?.websocket)))
    },
  })
  return servers
}

async function listen(listener: Listener, logger: Logger, lifecycle: Lifecycle): Promise<Server> {
  const where = `${listener.host}:${listener.port}`
  const server = await new Promise<Server>((resolve, reject) => {
    const websocket = listener.websocket ? { websocket: { server: listener.websocket } } : {}
    const started = serve(
      { fetch: listener.app.fetch, hostname: listener.host, port: listener.port, ...websocket },
      () => resolve(started as Server),
    ) as Server
    started.once('error', reject)
  }).catch(async (error: NodeJS.ErrnoException) => {
    const reason =
      error.code === 'EADDRINUSE'
        ? `port ${where} is already in use; stop that process or set ${listener.portSetting} to another port`
        : `cannot listen on ${where}: ${error.message}`
    logger.fatal({ code: error.code }, reason)
    process.stderr.write(`${reason}\n`)
    await lifecycle.close()
    return process.exit(1)
  })
  logger.info({ address: `http://${where}`, listener: listener.name }, 'listening')
  return server
}

/**
 * Stops accepting connections and resolves once the requests in flight have finished. WebSocket
 * connections would hold the server open forever, so they are told the server is going away.
 */
function closeServer(server: Server, websocket: ListenerWebSocketServer | undefined): Promise<void> {
  for (const client of websocket?.clients ?? []) client.close(1001, 'server shutting down')
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeIdleConnections()
  })
}
