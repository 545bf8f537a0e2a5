/**
 * Collects calls made within a short linger into one batch, so reconciling many resources at
 * once costs a few admin calls instead of one per resource.
 */
export type BatchRun<Item, Result> = (items: Item[]) => Promise<Array<Result | Error>>

export interface Batcher<Item, Result> {
  add(item: Item): Promise<Result>
}

interface Waiting<Item, Result> {
  item: Item
  resolve(result: Result): void
  reject(error: unknown): void
}

export function batcher<Item, Result>(
  run: BatchRun<Item, Result>,
  options: { lingerMs: number; maxBatch: number },
): Batcher<Item, Result> {
  let waiting: Waiting<Item, Result>[] = []
  let timer: NodeJS.Timeout | undefined

  const flush = () => {
    timer = undefined
    const batch = waiting
    waiting = []
    run(batch.map((entry) => entry.item)).then(
      (results) => {
        batch.forEach((entry, index) => {
          const result = results[index]
          if (result instanceof Error) entry.reject(result)
          else entry.resolve(result as Result)
        })
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error)
      },
    )
  }

  return {
    add(item) {
      return new Promise<Result>((resolve, reject) => {
        waiting.push({ item, resolve, reject })
        if (waiting.length >= options.maxBatch) {
          clearTimeout(timer)
          flush()
        } else {
          timer ??= setTimeout(flush, options.lingerMs)
        }
      })
    },
  }
}

/**
 * Runs a batch call; when it fails for a batch of several (Kafka names only the first failing
 * item), runs each item alone so every item gets its own answer.
 */
export async function eachOnFailure<Item>(
  items: Item[],
  call: (items: Item[]) => Promise<unknown>,
  tolerated: (error: unknown) => boolean = () => false,
): Promise<Array<undefined | Error>> {
  const attempt = async (group: Item[]): Promise<undefined | Error> => {
    try {
      await call(group)
      return undefined
    } catch (error) {
      if (tolerated(error)) return undefined
      return error instanceof Error ? error : new Error(String(error))
    }
  }
  const whole = await attempt(items)
  if (whole === undefined) return items.map(() => undefined)
  if (items.length === 1) return [whole]
  return Promise.all(items.map((item) => attempt([item])))
}
