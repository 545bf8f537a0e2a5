/**
 * Writes stock into Redis in pipelined chunks: one round trip per chunk, each goods through a
 * script that decides atomically, by the Redis clock, whether it may write.
 *
 * - `IfAbsent` runs the stock package's load-if-absent script, the same one goods-service's cold
 *   start runs: stock already in Redis is never touched.
 * - `Overwrite` runs {@link overwriteBeforeOpeningScript}: absent stock is loaded the same way;
 *   loaded stock is replaced only while neither the stored nor the new sale window has opened.
 *
 * A chunk that fails is retried (cockatiel, exponential backoff) for the goods whose answer did
 * not arrive; both scripts are idempotent, so a retried goods is never written twice over.
 *
 * On a Redis Cluster a pipeline may only hold keys of one primary, and a chunk's goods sit on all
 * of them: there the chunk's calls go out together, unpipelined, each to its goods' primary, and
 * each primary that has not seen the script is sent it by the client.
 */
import { createHash } from 'node:crypto'
import { defineScripts, type Redis, runScript } from '@timedeal/platform'
import { loadIfAbsentScript, type StockKeys, type StockSource, stockKeys } from '@timedeal/stock'
import { ExponentialBackoff, handleAll, retry } from 'cockatiel'
import type { WarmupMode } from './types.ts'

/**
 * Loads stock like load-if-absent, or replaces it before its sale opens. It lives here rather
 * than in the stock package because nothing but an explicit warm-up may replace loaded stock.
 *
 * KEYS: available, sale. ARGV: onHand, startsAt, endsAt, purchaseLimit, initialStock, version.
 * Returns 1 (was absent, loaded), 2 (replaced), -1 (a sale window has opened: refused) or -2 (Redis
 * holds a newer version of the terms than the snapshot: left alone).
 */
export const overwriteBeforeOpeningScript = {
  numberOfKeys: 2,
  lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function load()
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'startsAt', ARGV[2], 'endsAt', ARGV[3], 'purchaseLimit', ARGV[4],
    'initialStock', ARGV[5], 'version', ARGV[6])
  redis.call('SET', KEYS[1], ARGV[1])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  load()
  return 1
end
local stored = redis.call('HMGET', KEYS[2], 'startsAt', 'version')
local opens = math.min(tonumber(stored[1] or ARGV[2]), tonumber(ARGV[2]))
if now >= opens then return -1 end
if tonumber(stored[2] or '0') > tonumber(ARGV[6]) then return -2 end
load()
return 2
`,
} as const

export interface WriterOptions {
  readonly prefix: string
  /** The namespace's shards (default 16), as goods-service's STOCK_SHARDS. */
  readonly shards?: number
  readonly mode: WarmupMode
  readonly chunkSize: number
  /** Attempts per chunk, the first included. */
  readonly maxAttempts: number
  /** The wait before the second attempt; it doubles up to 5 s. */
  readonly retryBaseMs?: number
}

export interface ChunkOutcome {
  /** The goods this writer wrote, in the order given. */
  readonly loaded: readonly StockSource[]
  readonly skipped: number
  readonly refused: number
}

export interface StockWriter {
  write(rows: readonly StockSource[]): Promise<ChunkOutcome>
  /** Requests sent to Redis so far: one per chunk (pipelined, or sent together on a cluster), plus script loads. */
  readonly roundTrips: number
}

/** A failure of the target that retries did not overcome; the warm-up reports RedisError. */
export class TargetError extends Error {
  override readonly name = 'TargetError'
}

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex')

export function createStockWriter(redis: Redis, options: WriterOptions): StockWriter {
  const keys: StockKeys = stockKeys(options.prefix, options.shards)
  const script = options.mode === 'IfAbsent' ? loadIfAbsentScript.lua : overwriteBeforeOpeningScript.lua
  const sha = sha1(script)
  const clusterCommand = options.mode === 'IfAbsent' ? 'warmupLoadIfAbsent' : 'warmupOverwriteBeforeOpening'
  if (redis.isCluster) defineScripts(redis, { [clusterCommand]: { numberOfKeys: 2, lua: script } })
  let roundTrips = 0
  const policy = retry(handleAll, {
    maxAttempts: options.maxAttempts - 1,
    backoff: new ExponentialBackoff({ initialDelay: options.retryBaseMs ?? 100, maxDelay: 5_000 }),
  })

  async function writeChunk(rows: readonly StockSource[]): Promise<ChunkOutcome> {
    const answers = new Map<number, number>()
    const pending = () => rows.map((_, index) => index).filter((index) => !answers.has(index))
    try {
      await policy.execute(async () => {
        const indexes = pending()
        const calls = indexes.map((index) => {
          const row = rows[index] as StockSource
          const args = [row.onHand, row.startsAt, row.endsAt, row.purchaseLimit ?? 0, row.initialStock, row.version]
          return { keys: [keys.available(row.goodsId), keys.sale(row.goodsId)], args }
        })
        roundTrips += 1
        let results: [Error | null, unknown][]
        if (redis.isCluster) {
          results = await Promise.all(
            calls.map(({ keys: scriptKeys, args }) =>
              runScript(redis, clusterCommand, scriptKeys, args).then(
                (value): [null, unknown] => [null, value],
                (error: Error): [Error, null] => [error, null],
              ),
            ),
          )
        } else {
          const pipeline = redis.pipeline()
          for (const { keys: scriptKeys, args } of calls) pipeline.evalsha(sha, 2, ...scriptKeys, ...args)
          results = (await pipeline.exec()) ?? []
        }
        let noScript = false
        let failure: Error | undefined
        results.forEach(([error, value], position) => {
          const index = indexes[position] as number
          if (!error) answers.set(index, Number(value))
          else if (error.message.startsWith('NOSCRIPT')) noScript = true
          else failure ??= error
        })
        if (noScript) {
          // Redis restarted or flushed its scripts: send the source once, then the rest again.
          roundTrips += 1
          await redis.script('LOAD', script)
        }
        if (answers.size < rows.length) {
          throw failure ?? new Error(`${rows.length - answers.size} goods of the chunk have no answer yet`)
        }
      })
    } catch (error) {
      throw new TargetError(`Redis: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
    }
    const loaded: StockSource[] = []
    let skipped = 0
    let refused = 0
    rows.forEach((row, index) => {
      const answer = answers.get(index)
      if (answer === 1 || answer === 2) loaded.push(row)
      else {
        skipped += 1
        if (answer === -1) refused += 1
      }
    })
    return { loaded, skipped, refused }
  }

  return {
    get roundTrips() {
      return roundTrips
    },
    async write(rows) {
      const loaded: StockSource[] = []
      let skipped = 0
      let refused = 0
      for (let start = 0; start < rows.length; start += options.chunkSize) {
        const outcome = await writeChunk(rows.slice(start, start + options.chunkSize))
        loaded.push(...outcome.loaded)
        skipped += outcome.skipped
        refused += outcome.refused
      }
      return { loaded, skipped, refused }
    },
  }
}

/**
 * `sha256:<hex>` over the records loaded, one line each in goods id order, so the same stock
 * loaded in any order gives the same checksum: `id onHand startsAt endsAt limit initialStock version`.
 */
export function warmupChecksum(records: readonly StockSource[]): string {
  const lines = records
    .map(
      (record) =>
        `${record.goodsId} ${record.onHand} ${record.startsAt} ${record.endsAt} ${record.purchaseLimit ?? 0} ${record.initialStock} ${record.version}\n`,
    )
    .sort()
  const hash = createHash('sha256')
  for (const line of lines) hash.update(line)
  return `sha256:${hash.digest('hex')}`
}
