/**
 * The benchmarks' load generator: undici keep-alive pools in worker threads, so the bench's own
 * main thread (Kafka watchers, metrics sampling) neither slows the requests nor is counted in
 * their CPU. Every request is built from a template: `{{uuid}}` is a fresh UUID (an
 * Idempotency-Key, a reservation id), `{{index}}` the request's number, and any other
 * `{{name}}` a value of `rotate[name]` picked round robin (a buyer's token, a goods id).
 *
 * Closed-loop: `clients` concurrent clients, each waiting for its answer. Open-loop: a fixed
 * arrival rate; each latency is measured from the request's intended send time, so a backlog
 * shows as latency instead of as a slower sender.
 */
import { Worker } from 'node:worker_threads'

export interface RequestPlan {
  /** `http://host:port` of the target. */
  readonly origin: string
  readonly method: 'POST'
  readonly path: string
  /** Header values are templates too (`authorization: Bearer {{buyer}}`). */
  readonly headers: Readonly<Record<string, string>>
  /** A JSON body as a template. */
  readonly body: string
  readonly rotate?: Readonly<Record<string, readonly string[]>>
  /** A field of a successful JSON answer to keep per request (say the order's `id`); a refusal keeps its `code`. */
  readonly keep?: string
}

export type LoadMode =
  | { readonly kind: 'closed'; readonly clients: number; readonly total: number; readonly seconds: number }
  | { readonly kind: 'open'; readonly rate: number; readonly seconds: number }

/** What one thread is given. */
export interface WorkerTask {
  readonly plan: RequestPlan
  readonly mode: LoadMode
  /** This thread sends requests first, first + stride, first + 2 × stride, ... */
  readonly first: number
  readonly stride: number
  /** Where this thread's arrivals sit in the shared schedule (open-loop). */
  readonly offsetMs: number
  readonly connections: number
  readonly startAtEpochMs: number
}

/** One entry per request, in the order the answers came. */
export interface LoadResults {
  /** When the request was meant to go out (epoch ms): its send time in closed-loop. */
  readonly intendedAt: number[]
  /** From the intended send time to the whole answer. */
  readonly latencyMs: number[]
  /** The HTTP status; 0 when no answer came (the error is in `kept`). */
  readonly status: number[]
  readonly kept: string[]
  /** CPU time of the generator's threads (user + system), microseconds. */
  cpuMicros: number
  /** Wall time of the longest thread from the common start. */
  seconds: number
}

export interface LoadOptions {
  readonly plan: RequestPlan
  readonly mode: LoadMode
  /** Threads; 1 drives several thousand requests per second. */
  readonly threads: number
  /** Keep-alive connections per thread (closed-loop: at least its clients). */
  readonly connections?: number
}

const workerFile = new URL('./load-worker.ts', import.meta.url)

/** Part `index` of `count` split into `parts` near-equal shares. */
export const shareOf = (count: number, parts: number, index: number) =>
  Math.floor(count / parts) + (index < count % parts ? 1 : 0)

/**
 * Several runs' records as one: together, their CPU added, and their wall time the longest of
 * them (`'concurrent'`: threads of one run) or the sum (`'consecutive'`: rounds one after another).
 */
export function mergeResults(parts: readonly LoadResults[], timing: 'concurrent' | 'consecutive'): LoadResults {
  const seconds = parts.map((part) => part.seconds)
  return {
    intendedAt: parts.flatMap((part) => part.intendedAt),
    latencyMs: parts.flatMap((part) => part.latencyMs),
    status: parts.flatMap((part) => part.status),
    kept: parts.flatMap((part) => part.kept),
    cpuMicros: parts.reduce((sum, part) => sum + part.cpuMicros, 0),
    seconds: timing === 'concurrent' ? Math.max(...seconds) : seconds.reduce((sum, value) => sum + value, 0),
  }
}

/** Splits the work over `threads` worker threads, runs it, and merges their records. */
export async function runLoad(options: LoadOptions): Promise<LoadResults> {
  const { plan, mode } = options
  const threads = Math.max(1, Math.min(options.threads, mode.kind === 'closed' ? mode.clients : options.threads))
  const startAtEpochMs = Date.now() + 200
  const shares = Array.from({ length: threads }, (_, thread): WorkerTask => {
    const share = (count: number) => shareOf(count, threads, thread)
    const threadMode: LoadMode =
      mode.kind === 'closed'
        ? { ...mode, clients: share(mode.clients), total: share(mode.total) }
        : { ...mode, rate: mode.rate / threads }
    const clients = mode.kind === 'closed' ? share(mode.clients) : 0
    return {
      plan,
      mode: threadMode,
      first: thread,
      stride: threads,
      offsetMs: mode.kind === 'open' ? (1000 / mode.rate) * thread : 0,
      connections: Math.max(clients, Math.ceil((options.connections ?? 256) / threads)),
      startAtEpochMs,
    }
  })
  const parts = await Promise.all(
    shares.map(
      (workerData) =>
        new Promise<LoadResults>((resolve, reject) => {
          const worker = new Worker(workerFile, { workerData })
          worker.once('message', (results: LoadResults) => {
            resolve(results)
            void worker.terminate()
          })
          worker.once('error', reject)
          worker.once('exit', (code) => reject(new Error(`a load generator thread exited with ${code}`)))
        }),
    ),
  )
  return mergeResults(parts, 'concurrent')
}

/** Requests whose status is in `ok`, and a count of every other outcome (a problem's code, an error). */
export function outcomesOf(results: LoadResults, ok: (status: number) => boolean) {
  const failures = new Map<string, number>()
  let succeeded = 0
  results.status.forEach((status, index) => {
    if (ok(status)) {
      succeeded += 1
      return
    }
    const reason = `${status === 0 ? 'no answer' : `HTTP ${status}`} ${results.kept[index] ?? ''}`.trim()
    failures.set(reason, (failures.get(reason) ?? 0) + 1)
  })
  return { succeeded, failures }
}
