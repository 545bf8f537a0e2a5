/**
 * The Lua scripts that change live stock. Each runs atomically in Redis, reads the clock with
 * `TIME` (so every instance of every service agrees on "now"), and appends each change it makes
 * to the ledger stream in the same step, so the write-behind sees exactly what happened.
 *
 * Scripts on one reservation take the same seven keys, in this order:
 *   1 available  2 sale  3 holders  4 reservation  5 reservation-goods  6 expiries  7 ledger
 * where 5 to 7 are those of the goods' shard, so all seven share one hash tag (one slot).
 *
 * The reservation key (4) holds either a reservation or a released marker: a hash with `state`
 * RELEASED and no `user`, left by the release of an id that was never reserved, so a reserve of
 * that id arriving later is refused. The lookup (5) keeps a reservation id to one goods of the
 * shard; confirm and release read it only when the id is not at the goods they were given, to
 * tell an unknown id from one reserved at other goods of the shard.
 */
import type { LuaScript } from '@timedeal/platform'

const clock = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// Gives a live reservation's units back. Callers check the state first; turning it RELEASED in
// the same step is what makes a second release find nothing to give back.
const giveBack = `
local function give_back(goods, id, user, quantity, kind, reason, now, retention)
  redis.call('INCRBY', KEYS[1], quantity)
  if redis.call('HINCRBY', KEYS[3], user, -quantity) <= 0 then redis.call('HDEL', KEYS[3], user) end
  redis.call('HSET', KEYS[4], 'state', 'RELEASED', 'releasedAt', now, 'releaseReason', reason)
  redis.call('ZREM', KEYS[6], goods .. '|' .. id)
  redis.call('XADD', KEYS[7], '*', 'goods', goods, 'kind', kind, 'delta', quantity,
    'reservation', id, 'user', user, 'at', now)
  -- A released record is kept for a while so retries and redelivered events stay no-ops.
  redis.call('PEXPIRE', KEYS[4], retention)
  redis.call('PEXPIRE', KEYS[5], retention)
end
`

/**
 * Reserves `quantity` units for a user: the sale window, the user's limit and the stock are
 * checked and the units taken in one step. A known reservation id answers with its record; an
 * id released before it was ever reserved is refused (`RESERVATION_RELEASED`) and holds nothing.
 *
 * ARGV: goodsId, reservationId, userId, quantity, holdMs
 * Returns `{'OK', now, state, expiresAt, replayed, available}` or `{refusal, now, available}`.
 */
export const reserveScript: LuaScript = {
  numberOfKeys: 7,
  lua: `${clock}
local goods, id, user = ARGV[1], ARGV[2], ARGV[3]
local quantity = tonumber(ARGV[4])
local now = now_ms()

local known = redis.call('HMGET', KEYS[4], 'user', 'quantity', 'state', 'expiresAt')
if known[1] then
  if known[1] ~= user or tonumber(known[2]) ~= quantity then return {'RESERVATION_CONFLICT', now} end
  return {'OK', now, known[3], tonumber(known[4]) or 0, 1, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
if known[3] == 'RELEASED' then return {'RESERVATION_RELEASED', now} end
local owner = redis.call('GET', KEYS[5])
if owner and owner ~= goods then return {'RESERVATION_CONFLICT', now} end

local available = redis.call('GET', KEYS[1])
local sale = redis.call('HMGET', KEYS[2], 'startsAt', 'endsAt', 'purchaseLimit')
if not available or not sale[1] or not sale[2] then return {'NOT_LOADED', now} end
available = tonumber(available)
if now < tonumber(sale[1]) then return {'SALE_NOT_OPEN', now, available} end
if now >= tonumber(sale[2]) then return {'SALE_CLOSED', now, available} end
local limit = tonumber(sale[3]) or 0
if limit > 0 and tonumber(redis.call('HGET', KEYS[3], user) or '0') + quantity > limit then
  return {'PURCHASE_LIMIT_EXCEEDED', now, available}
end
if available <= 0 then return {'SOLD_OUT', now, available} end
if available < quantity then return {'INSUFFICIENT_STOCK', now, available} end

local left = redis.call('DECRBY', KEYS[1], quantity)
local expiresAt = now + tonumber(ARGV[5])
redis.call('HINCRBY', KEYS[3], user, quantity)
redis.call('HSET', KEYS[4], 'goods', goods, 'user', user, 'quantity', quantity, 'state', 'RESERVED',
  'reservedAt', now, 'expiresAt', expiresAt)
redis.call('SET', KEYS[5], goods)
redis.call('ZADD', KEYS[6], expiresAt, goods .. '|' .. id)
redis.call('XADD', KEYS[7], '*', 'goods', goods, 'kind', 'reserve', 'delta', -quantity,
  'reservation', id, 'user', user, 'at', now)
return {'OK', now, 'RESERVED', expiresAt, 0, left}
`,
}

/**
 * Confirms a reservation (its order is paid): it no longer expires. A reservation whose hold ran
 * out is expired on the spot instead, so the answer never depends on how late the sweeper is.
 *
 * ARGV: goodsId, reservationId, retentionMs
 * Returns `{'CONFIRMED', now, changed}`, `{'RELEASED', now, reason}`, `{'RESERVATION_NOT_FOUND', now}`,
 * `{'RESERVATION_CONFLICT', now}` (the id belongs to other goods) or `{'NOT_LOADED', now}`.
 */
export const confirmScript: LuaScript = {
  numberOfKeys: 7,
  lua: `${clock}${giveBack}
local goods, id = ARGV[1], ARGV[2]
local now = now_ms()
local record = redis.call('HMGET', KEYS[4], 'user', 'quantity', 'state', 'expiresAt', 'releaseReason')
if record[3] == 'RELEASED' then return {'RELEASED', now, record[5] or 'released'} end
if not record[1] then
  local owner = redis.call('GET', KEYS[5])
  if owner and owner ~= goods then return {'RESERVATION_CONFLICT', now} end
  return {'RESERVATION_NOT_FOUND', now}
end
if record[3] == 'CONFIRMED' then return {'CONFIRMED', now, 0} end
if now >= tonumber(record[4]) then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED', now} end
  give_back(goods, id, record[1], tonumber(record[2]), 'expire', 'expired', now, tonumber(ARGV[3]))
  return {'RELEASED', now, 'expired'}
end
redis.call('HSET', KEYS[4], 'state', 'CONFIRMED', 'confirmedAt', now)
redis.call('ZREM', KEYS[6], goods .. '|' .. id)
return {'CONFIRMED', now, 1}
`,
}

/**
 * Releases a reservation: its units go back exactly once, whether it was reserved or confirmed,
 * however often this runs. With `onlyIfDue` set (the expiry sweeper) it releases only a
 * reservation that is still unconfirmed and past its hold.
 *
 * An id this goods has never seen (its reserve call may still be on its way) gets a released
 * marker, kept `retentionMs`, so that reserve is refused when it arrives. The sweeper never
 * marks: an expiry whose record is gone is simply dropped.
 *
 * ARGV: goodsId, reservationId, kind (`release` | `expire`), reason, retentionMs, onlyIfDue (1 | 0)
 * Returns `{'RELEASED', now, changed}`, `{'MARKED', now}`, `{'NOT_DUE', now}`,
 * `{'RESERVATION_NOT_FOUND', now}`, `{'RESERVATION_CONFLICT', now}` (the id belongs to other goods)
 * or `{'NOT_LOADED', now}`.
 */
export const releaseScript: LuaScript = {
  numberOfKeys: 7,
  lua: `${clock}${giveBack}
local goods, id = ARGV[1], ARGV[2]
local now = now_ms()
local member = goods .. '|' .. id
local record = redis.call('HMGET', KEYS[4], 'user', 'quantity', 'state', 'expiresAt')
if record[3] == 'RELEASED' then
  redis.call('ZREM', KEYS[6], member)
  return {'RELEASED', now, 0}
end
if not record[1] then
  redis.call('ZREM', KEYS[6], member)
  if ARGV[6] == '1' then return {'RESERVATION_NOT_FOUND', now} end
  local owner = redis.call('GET', KEYS[5])
  if owner and owner ~= goods then return {'RESERVATION_CONFLICT', now} end
  local retention = tonumber(ARGV[5])
  redis.call('HSET', KEYS[4], 'goods', goods, 'state', 'RELEASED', 'releasedAt', now, 'releaseReason', ARGV[4])
  redis.call('PEXPIRE', KEYS[4], retention)
  -- The lookup too, so a reserve of this id at any other goods of the shard is refused as well.
  redis.call('SET', KEYS[5], goods, 'PX', retention)
  return {'MARKED', now}
end
if ARGV[6] == '1' then
  if record[3] ~= 'RESERVED' then
    redis.call('ZREM', KEYS[6], member)
    return {'NOT_DUE', now}
  end
  if now < tonumber(record[4]) then return {'NOT_DUE', now} end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED', now} end
give_back(goods, id, record[1], tonumber(record[2]), ARGV[3], ARGV[4], now, tonumber(ARGV[5]))
return {'RELEASED', now, 1}
`,
}

/**
 * Loads a goods' stock and sale terms only if its stock is not in Redis: live stock is never
 * overwritten, and of many concurrent loaders exactly one wins. No ledger entry: the count came
 * from the durable record.
 *
 * KEYS: available, sale. ARGV: onHand, startsAt, endsAt, purchaseLimit, initialStock, version
 * Returns 1 when it loaded, 0 when the stock was already there.
 */
export const loadIfAbsentScript: LuaScript = {
  numberOfKeys: 2,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'startsAt', ARGV[2], 'endsAt', ARGV[3], 'purchaseLimit', ARGV[4],
  'initialStock', ARGV[5], 'version', ARGV[6])
redis.call('SET', KEYS[1], ARGV[1])
return 1
`,
}

/**
 * Applies a seller's edit of loaded stock: new sale terms, and a new initial stock turned into an
 * adjustment of the available count (an `adjust` ledger entry). Terms older than the stored
 * version are ignored; the same version with the same terms changes nothing (the stock is given as
 * a total), and the same version with other terms is refused as stale too, so one version always
 * means one set of terms. Stock cannot change while the stored sale window is open, nor drop below
 * what is reserved.
 *
 * Terms that change are also appended to the ledger (a `terms` entry with the version and every
 * term, delta 0), so MySQL ends up with the terms live stock took even if the edit's own
 * transaction never commits.
 *
 * KEYS: available, sale, ledger (of the goods' shard). ARGV: goodsId, version, startsAt, endsAt, purchaseLimit, initialStock
 * Returns `{'OK', now, delta}`, `{'STALE', now}`, `{'SALE_IN_PROGRESS', now}`,
 * `{'STOCK_BELOW_RESERVED', now, available}` or `{'NOT_LOADED', now}`.
 */
export const configureScript: LuaScript = {
  numberOfKeys: 3,
  lua: `${clock}
local now = now_ms()
local available = redis.call('GET', KEYS[1])
if not available then return {'NOT_LOADED', now} end
available = tonumber(available)
local stored = redis.call('HMGET', KEYS[2], 'version', 'startsAt', 'endsAt', 'initialStock', 'purchaseLimit')
local version = tonumber(ARGV[2])
local storedVersion = tonumber(stored[1] or '0')
if storedVersion > version then return {'STALE', now} end
local same = tonumber(stored[2]) == tonumber(ARGV[3]) and tonumber(stored[3]) == tonumber(ARGV[4])
  and tonumber(stored[4]) == tonumber(ARGV[6]) and (tonumber(stored[5]) or 0) == tonumber(ARGV[5])
if storedVersion == version then
  if same then return {'OK', now, 0} end
  return {'STALE', now}
end
local delta = tonumber(ARGV[6]) - tonumber(stored[4] or ARGV[6])
if delta ~= 0 then
  if now >= tonumber(stored[2] or '0') and now < tonumber(stored[3] or '0') then return {'SALE_IN_PROGRESS', now} end
  if available + delta < 0 then return {'STOCK_BELOW_RESERVED', now, available} end
  redis.call('INCRBY', KEYS[1], delta)
  redis.call('XADD', KEYS[3], '*', 'goods', ARGV[1], 'kind', 'adjust', 'delta', delta,
    'reservation', '', 'user', '', 'at', now)
end
redis.call('HSET', KEYS[2], 'version', ARGV[2], 'startsAt', ARGV[3], 'endsAt', ARGV[4],
  'purchaseLimit', ARGV[5], 'initialStock', ARGV[6])
redis.call('XADD', KEYS[3], '*', 'goods', ARGV[1], 'kind', 'terms', 'delta', 0,
  'reservation', '', 'user', '', 'at', now, 'version', ARGV[2], 'startsAt', ARGV[3], 'endsAt', ARGV[4],
  'purchaseLimit', ARGV[5], 'initialStock', ARGV[6])
return {'OK', now, delta}
`,
}

/**
 * A consistent snapshot of one goods: the server time, the available count and the sale terms.
 *
 * KEYS: available, sale
 * Returns `{now}` when the stock is not loaded, else
 * `{now, available, startsAt, endsAt, purchaseLimit, initialStock, version}`.
 */
export const readScript: LuaScript = {
  numberOfKeys: 2,
  lua: `${clock}
local now = now_ms()
local available = redis.call('GET', KEYS[1])
if not available then return {now} end
local s = redis.call('HMGET', KEYS[2], 'startsAt', 'endsAt', 'purchaseLimit', 'initialStock', 'version')
return {now, tonumber(available), tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0,
  tonumber(s[4]) or 0, tonumber(s[5]) or 0}
`,
}

/**
 * The expiry members of one shard due by the server clock, oldest first.
 *
 * KEYS: expiries (of the shard). ARGV: limit
 */
export const dueExpiriesScript: LuaScript = {
  numberOfKeys: 1,
  lua: `${clock}
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
`,
}

/** Every script, by the command name it is registered under on an ioredis client. */
export const stockScripts = {
  stockReserve: reserveScript,
  stockConfirm: confirmScript,
  stockRelease: releaseScript,
  stockLoadIfAbsent: loadIfAbsentScript,
  stockConfigure: configureScript,
  stockRead: readScript,
  stockDueExpiries: dueExpiriesScript,
} as const satisfies Record<string, LuaScript>

export type StockScriptName = keyof typeof stockScripts
