import { createHash } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import type { Logger } from './logger.ts'

export type { Redis } from 'ioredis'

export interface RedisOptions {
  readonly url: string
  /**
   * Seed nodes (`host:port`) of a Redis Cluster (`REDIS_CLUSTER_NODES`). Given, the client is a
   * cluster client (user, password and TLS still come from `url`); empty or absent, `url` is the
   * one Redis.
   */
  readonly clusterNodes?: readonly string[]
  readonly logger: Logger
  /** A name shown by CLIENT LIST, to tell connections apart. */
  readonly connectionName?: string
  /**
   * Commands issued in the same turn of the event loop leave in one socket write
   * (`REDIS_AUTO_PIPELINING`): under a burst, one write per request is what costs. One Redis
   * only: a cluster client keeps one write per command, since ioredis' cluster auto-pipelining
   * left the write-behind's stream reads unanswered in our cluster tests.
   */
  readonly autoPipelining?: boolean
}

const retryStrategy = (attempt: number) => Math.min(attempt * 100, 2_000)

/**
 * An ioredis client that fails commands fast while Redis is down (instead of queueing them
 * forever) and reconnects with a capped backoff: one Redis, or a Redis Cluster when
 * `clusterNodes` are given, so every service picks its connection the same way.
 */
export function createRedis(options: RedisOptions): Redis {
  const commandOptions = {
    connectionName: options.connectionName,
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
  }
  const redis = options.clusterNodes?.length
    ? clusterClient(options.clusterNodes, options.url, commandOptions)
    : new Redis(options.url, {
        ...commandOptions,
        retryStrategy,
        enableAutoPipelining: options.autoPipelining ?? false,
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

/**
 * A cluster client typed as `Redis`: both speak the same commands, and the callers of this helper
 * use only commands (keyed ones are routed to the slot's primary, keyless ones to any node), never
 * the single-server extras (`select`, `monitor`).
 */
function clusterClient(
  nodes: readonly string[],
  url: string,
  commandOptions: {
    connectionName?: string | undefined
    maxRetriesPerRequest: number
    connectTimeout: number
  },
): Redis {
  const { username, password, protocol } = new URL(url)
  const cluster = new Cluster(
    nodes.map((node) => {
      const split = node.lastIndexOf(':')
      return { host: node.slice(0, split), port: Number(node.slice(split + 1)) }
    }),
    {
      clusterRetryStrategy: retryStrategy,
      redisOptions: {
        ...commandOptions,
        ...(username ? { username: decodeURIComponent(username) } : {}),
        ...(password ? { password: decodeURIComponent(password) } : {}),
        ...(protocol === 'rediss:' ? { tls: {} } : {}),
      },
    },
  )
  return cluster as unknown as Redis
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

/** A script as a client calls it: by SHA once Redis has its source. */
interface DefinedScript {
  readonly sha: string
  readonly lua: string
  /** Set once the source was sent on this client; a NOSCRIPT answer clears it. */
  loaded: boolean
}

const definedScripts = new WeakMap<object, Map<string, DefinedScript>>()

/**
 * Registers scripts on a client: the first call sends the source (EVAL, which also caches it in
 * Redis), every later call is EVALSHA; if Redis forgot the script (restart, SCRIPT FLUSH, another
 * cluster node) the call is sent again with the source. Plain EVALSHA commands, unlike ioredis'
 * own script commands, stay by SHA inside a pipeline too.
 */
export function defineScripts<Names extends string>(redis: Redis, scripts: Record<Names, LuaScript>): void {
  let defined = definedScripts.get(redis)
  if (!defined) {
    defined = new Map()
    definedScripts.set(redis, defined)
  }
  for (const [name, script] of Object.entries<LuaScript>(scripts)) {
    defined.set(name, { sha: createHash('sha1').update(script.lua).digest('hex'), lua: script.lua, loaded: false })
  }
}

/** Calls a script registered with {@link defineScripts}. */
export function runScript(
  redis: Redis,
  name: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const script = definedScripts.get(redis)?.get(name)
  if (!script) throw new Error(`Redis script ${name} is not defined on this client`)
  const withSource = () => {
    script.loaded = true
    return redis.eval(script.lua, keys.length, ...keys, ...args)
  }
  if (!script.loaded) return withSource()
  return redis.evalsha(script.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
    return withSource()
  })
}
