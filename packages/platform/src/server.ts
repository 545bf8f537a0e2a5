import type { Server } from 'node:http'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'
import type { Lifecycle } from './lifecycle.ts'
import type { Logger } from './logger.ts'

export interface ServeOptions {
  // biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env type
  readonly app: Hono<any>
  readonly host: string
  readonly port: number
  readonly logger: Logger
  readonly lifecycle: Lifecycle
  readonly shutdownTimeoutMs: number
  /** The setting that names the port, for the message when the port is taken. */
  readonly portSetting?: string
}

/**
 * Listens, and on SIGTERM or SIGINT shuts down gracefully: readiness turns false, the listener
 * stops accepting, in-flight requests drain (up to the timeout), then clients close in reverse
 * order. A port that is taken is one clear line and exit code 1.
 */
export async function serveUntilSignal(options: ServeOptions): Promise<Server> {
  const { logger, lifecycle } = options
  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: options.app.fetch, hostname: options.host, port: options.port }, () =>
      resolve(started as Server),
    ) as Server
    started.once('error', reject)
  }).catch((error: NodeJS.ErrnoException) => {
    const where = `${options.host}:${options.port}`
    const setting = options.portSetting ?? 'HTTP_PORT'
    const reason =
      error.code === 'EADDRINUSE'
        ? `port ${where} is already in use; stop that process or set ${setting} to another port`
        : `cannot listen on ${where}: ${error.message}`
    logger.fatal({ code: error.code }, reason)
    process.stderr.write(`${reason}\n`)
    return lifecycle.close().then(() => process.exit(1))
  })
  logger.info({ address: `http://${options.host}:${options.port}` }, 'listening')

  const shutdown = (signal: string) => {
    if (lifecycle.draining) return
    logger.info({ signal }, 'shutting down')
    lifecycle.startDraining()
    const forced = setTimeout(() => {
      logger.warn('in-flight requests did not finish in time; closing their connections')
      server.closeAllConnections()
    }, options.shutdownTimeoutMs)
    forced.unref()
    server.close(() => {
      clearTimeout(forced)
      void lifecycle.close().then(() => {
        logger.info('stopped')
        process.exit(0)
      })
    })
    server.closeIdleConnections()
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
  return server as Server
}
