import { defineScripts, type Redis, runScript } from '@timedeal/platform'

export interface LimitRule {
  /** What is counted, e.g. `login:address:203.0.113.7`. */
  readonly key: string
  readonly limit: number
  readonly windowSeconds: number
}

export interface LimitVerdict {
  readonly allowed: boolean
  /** Seconds until the tightest exceeded window ends; 0 when allowed. */
  readonly retryAfterSeconds: number
}

export interface RateLimiter {
  /** Counts one attempt against every rule, atomically; refused when any rule is over its limit. */
  hit(rules: readonly LimitRule[]): Promise<LimitVerdict>
  /** Forgets the count of one key (e.g. an account's failures after it signs in). */
  reset(key: string): Promise<void>
}

// Fixed windows: the first hit of a window sets its expiry. All counters move in one script,
// so parallel attempts cannot slip between a read and a write. ARGV holds limit, window pairs.
const hitLua = `
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i * 2 - 1])
  local window = tonumber(ARGV[i * 2])
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, window) end
  if count > limit then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = window end
    if ttl > wait then wait = ttl end
  end
end
return wait
`

/** The script for `count` rules; scripts declare their keys up front, so there is one per count. */
function scriptFor(redis: Redis, count: number): string {
  const name = `userServiceRateLimitHit${count}`
  if (!(name in redis)) defineScripts(redis, { [name]: { numberOfKeys: count, lua: hitLua } })
  return name
}

export function createRedisRateLimiter(redis: Redis, prefix = 'user:limit:'): RateLimiter {
  return {
    async hit(rules) {
      if (rules.length === 0) return { allowed: true, retryAfterSeconds: 0 }
      const wait = await runScript(
        redis,
        scriptFor(redis, rules.length),
        rules.map((rule) => `${prefix}${rule.key}`),
        rules.flatMap((rule) => [rule.limit, rule.windowSeconds]),
      )
      const retryAfterSeconds = Number(wait)
      return { allowed: retryAfterSeconds === 0, retryAfterSeconds }
    },
    async reset(key) {
      await redis.del(`${prefix}${key}`)
    },
  }
}
