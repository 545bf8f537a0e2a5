import { setTimeout as sleep } from 'node:timers/promises'
import { ApiException, CustomObjectsApi, type KubeConfig, Watch } from '@kubernetes/client-node'
import type { Logger } from '@timedeal/platform'
import { ExponentialBackoff, halfJitterGenerator, type IBackoff } from 'cockatiel'
import { type AnyResource, GROUP, resourceKey, VERSION } from './controller.ts'

export type InformerEvent = 'upsert' | 'delete'

export interface InformerOptions {
  readonly kubeConfig: KubeConfig
  readonly plural: string
  /** Watch one namespace; undefined watches every namespace. */
  readonly namespace?: string | undefined
  readonly logger: Logger
  /** Called for every change the cache takes in, after it took it in (with what it replaced). */
  readonly onChange: (event: InformerEvent, resource: AnyResource, previous?: AnyResource) => void
  /** Called after every error that made the informer start over (for metrics). */
  readonly onRestart?: (reason: 'gone' | 'error') => void
  readonly restartBackoff?: { readonly initialMs: number; readonly maxMs: number }
  /** Items per list page. */
  readonly pageSize?: number
  /** A list page not answered within this long counts as failed (a request can hang forever). */
  readonly listTimeoutMs?: number
}

/** A watch the server ends by itself before the client's 30 s inactivity timeout would. */
const watchSeconds = () => 20 + Math.floor(Math.random() * 8)

class WatchEnded extends Error {
  readonly gone: boolean
  constructor(gone: boolean, cause?: unknown) {
    super(gone ? 'the watch resource version is too old (410 Gone)' : 'the watch failed', { cause })
    this.gone = gone
  }
}

/**
 * Keeps a cache of one kind's resources in step with the API server: list, then watch from the
 * list's resourceVersion. A watch the server closes is resumed from the last version seen; one
 * whose version expired (410 Gone) is replaced by a fresh list; any other error (the client's
 * own watch stops on errors) starts over with a list after a backoff, so the informer never dies.
 */
export class ResourceInformer {
  readonly #options: InformerOptions
  readonly #api: CustomObjectsApi
  readonly #cache = new Map<string, AnyResource>()
  readonly #backoffFactory: ExponentialBackoff<unknown>
  #backoff: IBackoff<unknown> | undefined
  #resourceVersion = ''
  #stopped = false
  #running: Promise<void> | undefined
  #currentWatch: AbortController | undefined
  #wakeSleep: AbortController | undefined
  #synced = false
  readonly #syncWaiters: (() => void)[] = []

  constructor(options: InformerOptions) {
    this.#options = options
    this.#api = options.kubeConfig.makeApiClient(CustomObjectsApi)
    this.#backoffFactory = new ExponentialBackoff({
      generator: halfJitterGenerator,
      initialDelay: options.restartBackoff?.initialMs ?? 500,
      maxDelay: options.restartBackoff?.maxMs ?? 30_000,
    })
  }

  get description(): string {
    return `${this.#options.plural}${this.#options.namespace ? ` in ${this.#options.namespace}` : ''}`
  }

  /** True once the first list has filled the cache. */
  get synced(): boolean {
    return this.#synced
  }

  /** Resolves once the first list has filled the cache. */
  whenSynced(): Promise<void> {
    if (this.#synced) return Promise.resolve()
    return new Promise((resolve) => this.#syncWaiters.push(resolve))
  }

  list(): AnyResource[] {
    return [...this.#cache.values()]
  }

  get(key: string): AnyResource | undefined {
    return this.#cache.get(key)
  }

  start(): void {
    this.#running ??= this.#loop()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#currentWatch?.abort()
    this.#wakeSleep?.abort()
    await this.#running
  }

  async #loop(): Promise<void> {
    let needList = true
    while (!this.#stopped) {
      try {
        if (needList) await this.#relist()
        needList = false
        await this.#watch()
        // The server closed the watch (its timeout): resume from the last version seen.
      } catch (error) {
        if (this.#stopped) return
        const gone = error instanceof WatchEnded ? error.gone : isGone(error)
        needList = true
        this.#options.onRestart?.(gone ? 'gone' : 'error')
        if (gone) {
          this.#options.logger.info({ informer: this.description }, 'watch version expired; listing again')
          continue
        }
        this.#backoff = (this.#backoff ?? this.#backoffFactory).next(undefined)
        const delayMs = this.#backoff.duration
        this.#options.logger.warn(
          { err: error instanceof WatchEnded ? error.cause : error, informer: this.description, delayMs },
          'informer failed; starting over after a backoff',
        )
        await this.#pause(delayMs)
      }
    }
  }

  async #pause(ms: number): Promise<void> {
    this.#wakeSleep = new AbortController()
    await sleep(ms, undefined, { signal: this.#wakeSleep.signal }).catch(() => undefined)
  }

  /** Lists every page and replaces the cache, reporting what appeared, changed and vanished. */
  async #relist(): Promise<void> {
    const items: AnyResource[] = []
    let continueToken: string | undefined
    let resourceVersion = ''
    do {
      const page = (await withDeadline(this.#listPage(continueToken), this.#options.listTimeoutMs ?? 60_000)) as {
        items: AnyResource[]
        metadata?: { resourceVersion?: string; continue?: string }
      }
      items.push(...page.items)
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion
      continueToken = page.metadata?.continue || undefined
    } while (continueToken)

    const seen = new Set<string>()
    for (const item of items) {
      const key = resourceKey(item.metadata)
      seen.add(key)
      const previous = this.#cache.get(key)
      this.#cache.set(key, item)
      if (previous?.metadata.resourceVersion !== item.metadata.resourceVersion) {
        this.#options.onChange('upsert', item, previous)
      }
    }
    for (const [key, item] of this.#cache) {
      if (seen.has(key)) continue
      this.#cache.delete(key)
      this.#options.onChange('delete', item)
    }
    this.#resourceVersion = resourceVersion
    this.#backoff = undefined
    if (!this.#synced) {
      this.#synced = true
      for (const resolve of this.#syncWaiters.splice(0)) resolve()
    }
  }

  #listPage(continueToken: string | undefined): Promise<unknown> {
    const { plural, namespace } = this.#options
    const page = { limit: this.#options.pageSize ?? 500, ...(continueToken ? { _continue: continueToken } : {}) }
    return namespace
      ? this.#api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, ...page })
      : this.#api.listClusterCustomObject({ group: GROUP, version: VERSION, plural, ...page })
  }

  /** Watches until the server closes the stream (resolves) or something fails (rejects). */
  #watch(): Promise<void> {
    const { plural, namespace } = this.#options
    const path = namespace
      ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`
      : `/apis/${GROUP}/${VERSION}/${plural}`
    return new Promise<void>((resolve, reject) => {
      let failed: WatchEnded | undefined
      const onEvent = (type: string, object: unknown) => {
        if (failed) return
        if (type === 'ERROR') {
          failed = new WatchEnded((object as { code?: number } | undefined)?.code === 410, object)
          this.#currentWatch?.abort()
          return
        }
        this.#take(type, object as AnyResource)
      }
      const onDone = (error: unknown) => {
        if (failed) reject(failed)
        else if (error && !this.#stopped) reject(new WatchEnded(isGone(error), error))
        else resolve()
      }
      new Watch(this.#options.kubeConfig)
        .watch(
          path,
          { resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchSeconds() },
          onEvent,
          onDone,
        )
        .then((controller) => {
          this.#currentWatch = controller
          if (this.#stopped) controller.abort()
        }, reject)
    })
  }

  #take(type: string, resource: AnyResource): void {
    const version = resource.metadata?.resourceVersion
    if (version) this.#resourceVersion = version
    if (type === 'BOOKMARK') return
    const key = resourceKey(resource.metadata)
    if (type === 'DELETED') {
      this.#cache.delete(key)
      this.#options.onChange('delete', resource)
      return
    }
    if (type === 'ADDED' || type === 'MODIFIED') {
      const previous = this.#cache.get(key)
      this.#cache.set(key, resource)
      this.#options.onChange('upsert', resource, previous)
    }
  }
}

function isGone(error: unknown): boolean {
  if (error instanceof ApiException) return error.code === 410
  return (error as { statusCode?: number } | undefined)?.statusCode === 410
}

/** Rejects when `work` has not settled within `ms` (the request itself is left to die on its own). */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the API server within ${ms} ms`)), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}
