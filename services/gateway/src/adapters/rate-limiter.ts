/**
 * Request counters in Redis, shared by every gateway instance: a fixed window per key, counted
 * and checked in one Lua script, so two instances never both let the last request of a window in.
 */
import { defineScripts, type Logger, type Redis, runScript } from '@timedeal/platform'
import { TaskCancelledError, TimeoutStrategy, timeout } from 'cockatiel'

/**
 * KEYS[1] the counter; ARGV[1] the window (ms), ARGV[2] the limit.
 * Returns { allowed (1|0), count, ms until the window ends }.
 */
const COUNT_REQUEST = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
if count > tonumber(ARGV[2]) then return {0, count, ttl} end
return {1, count, ttl}
`

export type LimitScope = 'address' | 'user'

export interface LimitVerdict {
  readonly allowed: boolean
  readonly limit: number
  readonly remaining: number
  /** Until the window ends: when a refused client may try again. */
  readonly resetMs: number
}

export interface RateLimiter {
  /** Counts one request of `subject`; undefined when Redis did not answer in time (the request goes through). */
  hit(scope: LimitScope, subject: string): Promise<LimitVerdict | undefined>
}

export interface RateLimiterOptions {
  readonly redis: Redis
  readonly keyPrefix: string
  readonly windowMs: number
  readonly limits: Readonly<Record<LimitScope, number>>
  readonly timeoutMs: number
  readonly logger: Logger
  /** Told when a counter was skipped because Redis failed or was slow. */
  readonly onSkipped?: (scope: LimitScope) => void
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { redis, windowMs, limits } = options
  defineScripts(redis, { gatewayCountRequest: { numberOfKeys: 1, lua: COUNT_REQUEST } })
  const inTime = timeout(options.timeoutMs, TimeoutStrategy.Aggressive)
  return {
    async hit(scope, subject) {
      const limit = limits[scope]
      try {
        const [allowed, count, ttl] = (await inTime.execute(() =>
          runScript(redis, 'gatewayCountRequest', [`${options.keyPrefix}${scope}:${subject}`], [windowMs, limit]),
        )) as [number, number, number]
        return { allowed: allowed === 1, limit, remaining: Math.max(0, limit - count), resetMs: ttl }
      } catch (error) {
        // Limits protect the services; an outage of Redis must not become an outage of everything.
        const slow = error instanceof TaskCancelledError
        options.logger.warn({ err: slow ? undefined : error, scope }, 'rate limit skipped: Redis did not answer')
        options.onSkipped?.(scope)
        return undefined
      }
    },
  }
}
