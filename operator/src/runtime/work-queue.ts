import { ExponentialBackoff, halfJitterGenerator, type IBackoff } from 'cockatiel'

export interface WorkQueueOptions {
  /** How many keys are handled at the same time; one key is never handled twice at once. */
  readonly concurrency: number
  /** Per-key backoff after a failure: from `initialMs`, doubling (with jitter) up to `maxMs`. */
  readonly retry: { readonly initialMs: number; readonly maxMs: number }
  /** The global rate limit on handled keys: a token bucket refilled `perSecond`, holding `burst`. */
  readonly rate: { readonly perSecond: number; readonly burst: number }
  readonly now?: () => number
}

/** What a handled key asks for next: nothing, or another turn after a while. */
export type HandleResult = { readonly requeueAfterMs?: number | undefined } | undefined

export type KeyHandler = (key: string) => Promise<HandleResult>

export interface HandledKey {
  readonly key: string
  readonly error?: unknown
  /** The delay before the key's retry, when it failed. */
  readonly retryInMs?: number
}

/**
 * The queue between informers and controllers. A key waiting is queued once however often it
 * is added; a key added while it is being handled is handled again right after, never beside
 * itself. A failed key comes back after its own exponential backoff (reset by a success), and
 * every key taken passes a global token bucket, so a burst of changes or failures cannot flood
 * the API server or Kafka.
 */
export class WorkQueue {
  readonly #options: WorkQueueOptions
  readonly #now: () => number
  readonly #waiting: string[] = []
  readonly #queued = new Set<string>()
  readonly #active = new Map<string, Promise<void>>()
  readonly #again = new Set<string>()
  readonly #delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>()
  readonly #failures = new Map<string, IBackoff<unknown>>()
  readonly #backoff: ExponentialBackoff<unknown>
  readonly #bucket: TokenBucket
  #handler: KeyHandler | undefined
  #onHandled: ((handled: HandledKey) => void) | undefined
  #pumpTimer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(options: WorkQueueOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#backoff = new ExponentialBackoff({
      generator: halfJitterGenerator,
      initialDelay: options.retry.initialMs,
      maxDelay: options.retry.maxMs,
    })
    this.#bucket = new TokenBucket(options.rate.perSecond, options.rate.burst, this.#now)
  }

  /** Keys waiting to be handled (not counting those being handled or delayed). */
  get depth(): number {
    return this.#queued.size
  }

  get activeCount(): number {
    return this.#active.size
  }

  get delayedCount(): number {
    return this.#delayed.size
  }

  add(key: string): void {
    if (this.#stopped) return
    if (this.#active.has(key)) {
      this.#again.add(key)
      return
    }
    if (this.#queued.has(key)) return
    this.#queued.add(key)
    this.#waiting.push(key)
    this.#pump()
  }

  /** Adds the key after `delayMs`; of several pending delays for one key the earliest stands. */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return
    if (delayMs <= 0) {
      this.add(key)
      return
    }
    const at = this.#now() + delayMs
    const pending = this.#delayed.get(key)
    if (pending && pending.at <= at) return
    if (pending) clearTimeout(pending.timer)
    const timer = setTimeout(() => {
      this.#delayed.delete(key)
      this.add(key)
    }, delayMs)
    timer.unref()
    this.#delayed.set(key, { at, timer })
  }

  /** Drops a key's backoff and pending delay (the resource is gone). */
  forget(key: string): void {
    this.#failures.delete(key)
    const pending = this.#delayed.get(key)
    if (pending) clearTimeout(pending.timer)
    this.#delayed.delete(key)
  }

  /** Starts (or resumes) handing keys to `handler`. */
  start(handler: KeyHandler, onHandled?: (handled: HandledKey) => void): void {
    this.#handler = handler
    this.#onHandled = onHandled
    this.#pump()
  }

  /** Stops taking keys (they keep collecting) and resolves once the keys in hand are done. */
  async pause(): Promise<void> {
    this.#handler = undefined
    if (this.#pumpTimer) clearTimeout(this.#pumpTimer)
    this.#pumpTimer = undefined
    await Promise.all(this.#active.values())
  }

  /** Pauses for good and drops every pending delay. */
  async stop(): Promise<void> {
    this.#stopped = true
    for (const { timer } of this.#delayed.values()) clearTimeout(timer)
    this.#delayed.clear()
    await this.pause()
  }

  #pump(): void {
    while (this.#handler && this.#waiting.length > 0 && this.#active.size < this.#options.concurrency) {
      if (this.#pumpTimer) return
      const waitMs = this.#bucket.take()
      if (waitMs > 0) {
        this.#pumpTimer = setTimeout(() => {
          this.#pumpTimer = undefined
          this.#pump()
        }, Math.ceil(waitMs))
        return
      }
      const key = this.#waiting.shift() as string
      this.#queued.delete(key)
      this.#active.set(key, this.#handle(this.#handler, key))
    }
  }

  async #handle(handler: KeyHandler, key: string): Promise<void> {
    let handled: HandledKey
    try {
      const result = await handler(key)
      this.#failures.delete(key)
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs)
      handled = { key }
    } catch (error) {
      const backoff = (this.#failures.get(key) ?? this.#backoff).next(undefined)
      this.#failures.set(key, backoff)
      this.addAfter(key, backoff.duration)
      handled = { key, error, retryInMs: backoff.duration }
    }
    // Settled before the key is released, so a pause that waits for it sees the report.
    this.#onHandled?.(handled)
    queueMicrotask(() => {
      this.#active.delete(key)
      if (this.#again.delete(key)) this.add(key)
      this.#pump()
    })
  }
}

/** A token bucket: `perSecond` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  readonly #perSecond: number
  readonly #burst: number
  readonly #now: () => number
  #tokens: number
  #at: number

  constructor(perSecond: number, burst: number, now: () => number = Date.now) {
    this.#perSecond = perSecond
    this.#burst = burst
    this.#now = now
    this.#tokens = burst
    this.#at = now()
  }

  /** Takes a token and answers 0, or answers how many ms until one is there (taking nothing). */
  take(): number {
    const now = this.#now()
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#perSecond)
    this.#at = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 0
    }
    return ((1 - this.#tokens) / this.#perSecond) * 1000
  }
}
