import type { Logger } from './logger.ts'

type Closer = { name: string; close: () => Promise<unknown> | unknown }

/**
 * Owns what a process opened (clients, workers, servers) and closes it in reverse order on
 * shutdown, so a service drains its work before its connections go away.
 */
export class Lifecycle {
  readonly #closers: Closer[] = []
  readonly #logger: Logger
  #draining = false
  #closed: Promise<void> | undefined

  constructor(logger: Logger) {
    this.#logger = logger
  }

  /** True from the moment shutdown starts: readiness reports false so traffic moves away. */
  get draining(): boolean {
    return this.#draining
  }

  /** Registers `resource` to be closed on shutdown and returns it. */
  add<T>(name: string, resource: T, close: (resource: T) => Promise<unknown> | unknown): T {
    this.#closers.push({ name, close: () => close(resource) })
    return resource
  }

  startDraining(): void {
    this.#draining = true
  }

  /** Closes everything registered, last first. Safe to call more than once. */
  close(): Promise<void> {
    this.#draining = true
    this.#closed ??= this.#closeAll()
    return this.#closed
  }

  async #closeAll(): Promise<void> {
    for (const closer of this.#closers.toReversed()) {
      try {
        await closer.close()
        this.#logger.debug({ resource: closer.name }, 'closed')
      } catch (error) {
        this.#logger.warn({ err: error, resource: closer.name }, 'closing failed')
      }
    }
  }
}

export interface ShutdownOptions {
  readonly logger: Logger
  /** The whole shutdown, from the signal on; past it the process logs one line and exits 1. */
  readonly deadlineMs: number
  /** Runs before anything registered closes: a service drains and closes its listeners here. */
  readonly drain?: () => Promise<void>
}

/**
 * On SIGTERM or SIGINT: readiness turns false, `drain` runs, everything registered closes (last
 * first), and the process exits 0. A shutdown still running at the deadline (a request or a
 * client that never finishes) ends the process with exit code 1, so an orchestrator sees it.
 */
export function stopOnSignal(lifecycle: Lifecycle, options: ShutdownOptions): void {
  const { logger, deadlineMs } = options
  let stopping = false
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down')
    lifecycle.startDraining()
    // Not unref'd: a shutdown stuck on a promise alone would otherwise end the process as a success.
    setTimeout(() => {
      logger.error({ deadlineMs }, `shutdown did not finish within ${deadlineMs} ms (SHUTDOWN_TIMEOUT_MS); exiting`)
      process.exit(1)
    }, deadlineMs)
    void (async () => {
      try {
        await options.drain?.()
      } catch (error) {
        logger.warn({ err: error }, 'draining failed; closing anyway')
      }
      await lifecycle.close()
      logger.info('stopped')
      process.exit(0)
    })()
  }
  process.once('SIGTERM', shutdown)
  process.once('SIGINT', shutdown)
}
