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
