/**
 * Gathers calls made close together and hands them to one `run`: a burst of requests costs a
 * few statements or Kafka requests instead of one each, while every caller still gets its own
 * answer. Used where a hot path writes (group commit of placements, the sandbox's books, the chat
 * topic's publishes).
 */

export interface BatcherOptions<In, Out> {
  /**
   * Handles one batch and answers each input's outcome, in order (as `Promise.allSettled` does).
   * A throw fails every input of the batch.
   */
  readonly run: (inputs: readonly In[]) => Promise<readonly PromiseSettledResult<Out>[]>
  /** Inputs handed to one `run` at most; a batch that fills up goes at once. */
  readonly maxBatch: number
  /**
   * How long the first call of a batch waits for others. 0 (the default): until the current turn
   * of the event loop is over, so calls woken by the same socket reads go together.
   */
  readonly lingerMs?: number
  /** Batches running at once at most (default 1); calls arriving meanwhile form the next one. */
  readonly maxInFlight?: number
}

interface Waiting<In, Out> {
  readonly input: In
  resolve(value: Out): void
  reject(error: unknown): void
}

/** Every input fulfilled with the matching value: the shape of `run`'s answer when nothing fails alone. */
export const allFulfilled = <Out>(values: readonly Out[]): PromiseSettledResult<Out>[] =>
  values.map((value) => ({ status: 'fulfilled', value }))

export function createBatcher<In, Out>(options: BatcherOptions<In, Out>): (input: In) => Promise<Out> {
  const { run, maxBatch, lingerMs = 0, maxInFlight = 1 } = options
  const queue: Waiting<In, Out>[] = []
  let inFlight = 0
  let cancelWake: (() => void) | undefined

  function scheduleWake() {
    if (cancelWake) return
    if (lingerMs > 0) {
      const timer = setTimeout(flush, lingerMs)
      cancelWake = () => clearTimeout(timer)
    } else {
      const immediate = setImmediate(flush)
      cancelWake = () => clearImmediate(immediate)
    }
  }

  async function runBatch(batch: readonly Waiting<In, Out>[]) {
    try {
      const outcomes = await run(batch.map(({ input }) => input))
      for (const [index, waiting] of batch.entries()) {
        const outcome = outcomes[index]
        if (outcome?.status === 'fulfilled') waiting.resolve(outcome.value)
        else waiting.reject(outcome ? outcome.reason : new Error('the batch answered no outcome for this call'))
      }
    } catch (error) {
      for (const waiting of batch) waiting.reject(error)
    }
  }

  function flush() {
    cancelWake?.()
    cancelWake = undefined
    while (queue.length > 0 && inFlight < maxInFlight) {
      const batch = queue.splice(0, maxBatch)
      inFlight++
      void runBatch(batch).finally(() => {
        inFlight--
        // Calls that arrived while every slot was busy go at once: they have waited already.
        if (queue.length > 0) flush()
      })
    }
  }

  return (input) =>
    new Promise<Out>((resolve, reject) => {
      queue.push({ input, resolve, reject })
      if (queue.length >= maxBatch) flush()
      else if (inFlight < maxInFlight) scheduleWake()
    })
}
