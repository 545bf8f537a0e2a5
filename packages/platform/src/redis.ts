import { Redis } from 'ioredis'
import type { Logger } from './logger.ts'

export type { Redis } from 'ioredis'

export interface RedisOptions {
  readonly url: string
  readonly logger: Logger
  /** A name shown by CLIENT LIST, to tell connections apart. */
  readonly connectionName?: string
}

/**
 * An ioredis client that fails commands fast while Redis is down (instead of queueing them
 * forever) and reconnects with a capped backoff.
 */
export function createRedis(options: RedisOptions): Redis {
  const redis = new Redis(options.url, {
    connectionName: options.connectionName,
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  })
  let lastError = ''
  redis.on('error', (error: Error) => {
    // One line per distinct failure, not one per reconnect attempt.
    if (error.message !== lastError) options.logger.warn({ err: error }, 'redis connection error')
    lastError = error.message
  })
  redis.on('ready', () => {
    lastError = ''
  })
  return redis
}

export async function pingRedis(redis: Redis): Promise<void> {
  const answer = await redis.ping()
  if (answer !== 'PONG') throw new Error(`unexpected PING answer ${answer}`)
}

/** A Lua script with a fixed number of keys, registered once and called by its SHA1. */
export interface LuaScript {
  readonly numberOfKeys: number
  readonly lua: string
}

/**
 * Registers scripts as ioredis commands: the source is sent once per connection, then every
 * call is EVALSHA; if Redis forgot the script (restart, SCRIPT FLUSH) it is sent again.
 */
export function defineScripts<Names extends string>(redis: Redis, scripts: Record<Names, LuaScript>): void {
  for (const [name, script] of Object.entries<LuaScript>(scripts)) {
    redis.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua })
  }
}

/** Calls a script registered with {@link defineScripts}. */
export function runScript(
  redis: Redis,
  name: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const command = (redis as unknown as Record<string, unknown>)[name]
  if (typeof command !== 'function') throw new Error(`Redis script ${name} is not defined on this client`)
  return (command as (...values: (string | number)[]) => Promise<unknown>).call(redis, ...keys, ...args)
}
