import { defineScripts, type Redis, runScript } from '@timedeal/platform'
import { parseExpiryMember, type ShardKeys, type StockKeys, stockKeys } from './keys.ts'
import { type StockScriptName, stockScripts } from './scripts.ts'

/** What a sale promises: its window (epoch ms, end exclusive), limit and stock. */
export interface SaleTerms {
  readonly startsAt: number
  readonly endsAt: number
  /** Units one user may hold at once in live reservations; null means no limit. */
  readonly purchaseLimit: number | null
  readonly initialStock: number
  /** The catalog row's version: older terms never overwrite newer ones. */
  readonly version: number
}

/** The durable record of one goods' stock, as the warm-up and the cold start load it. */
export interface StockSource extends SaleTerms {
  readonly goodsId: string
  readonly onHand: number
}

export const SALE_STATES = ['UPCOMING', 'OPEN', 'SOLD_OUT', 'CLOSED'] as const
export type SaleState = (typeof SALE_STATES)[number]

/** The state of a sale at `now`: the window decides first, then whether any stock is left. */
export function saleStateAt(now: number, window: { startsAt: number; endsAt: number }, available: number): SaleState {
  if (now < window.startsAt) return 'UPCOMING'
  if (now >= window.endsAt) return 'CLOSED'
  return available > 0 ? 'OPEN' : 'SOLD_OUT'
}

export interface StockSnapshot {
  /** Redis server time the snapshot was taken at (epoch ms). */
  readonly now: number
  readonly available: number
  readonly terms: SaleTerms
  readonly state: SaleState
}

export interface ReserveRequest {
  readonly reservationId: string
  readonly goodsId: string
  readonly userId: string
  readonly quantity: number
}

export const RESERVE_REFUSALS = [
  'SALE_NOT_OPEN',
  'SALE_CLOSED',
  'PURCHASE_LIMIT_EXCEEDED',
  'SOLD_OUT',
  'INSUFFICIENT_STOCK',
  'RESERVATION_CONFLICT',
  /** The id was released before it was ever reserved: a late reserve call, refused. */
  'RESERVATION_RELEASED',
  'NOT_LOADED',
] as const
export type ReserveRefusal = (typeof RESERVE_REFUSALS)[number]

export type ReservationState = 'RESERVED' | 'CONFIRMED' | 'RELEASED'

export type ReserveOutcome =
  | {
      readonly ok: true
      readonly now: number
      readonly state: ReservationState
      readonly expiresAt: number
      /** True when this id was reserved before: nothing changed this time. */
      readonly replayed: boolean
      readonly available: number
    }
  | { readonly ok: false; readonly now: number; readonly refusal: ReserveRefusal; readonly available: number | null }

/** What confirm and release answer when they cannot act on the reservation they were given. */
export type ReservationNotAtHand =
  /** Confirm: the id is unknown. Release: no goods was named and the id is unknown, so nothing could be marked. */
  | { readonly status: 'RESERVATION_NOT_FOUND' }
  /**
   * The id was reserved at other goods than the caller named or, with no goods named, at goods
   * of more than one shard: which one is meant cannot be told, so nothing changed.
   */
  | { readonly status: 'RESERVATION_CONFLICT' }
  | { readonly status: 'NOT_LOADED'; readonly goodsId: string }

export type ConfirmOutcome =
  | { readonly status: 'CONFIRMED'; readonly changed: boolean }
  | { readonly status: 'RELEASED'; readonly reason: string }
  | ReservationNotAtHand

export type ReleaseOutcome =
  | { readonly status: 'RELEASED'; readonly changed: boolean }
  /** The goods had no reservation with this id: it is marked released, so a late reserve is refused. */
  | { readonly status: 'MARKED' }
  | { readonly status: 'NOT_DUE' }
  | ReservationNotAtHand

export type ConfigureOutcome =
  | { readonly status: 'OK'; readonly delta: number }
  | { readonly status: 'STALE' }
  | { readonly status: 'SALE_IN_PROGRESS' }
  | { readonly status: 'STOCK_BELOW_RESERVED'; readonly available: number }
  | { readonly status: 'NOT_LOADED' }

export interface ReservationRecord {
  readonly reservationId: string
  readonly goodsId: string
  readonly userId: string
  readonly quantity: number
  readonly state: ReservationState
  readonly reservedAt: number
  readonly expiresAt: number
  readonly confirmedAt: number | null
  readonly releasedAt: number | null
  readonly releaseReason: string | null
}

export interface ReleaseOptions {
  /** Why the units go back, kept on the record (e.g. `order-cancelled`). */
  readonly reason?: string
  /**
   * The goods of the reservation (order events and order-service's calls carry it). It saves the
   * lookup, and it is what lets the release of an unknown id leave a released marker there.
   */
  readonly goodsId?: string
}

export interface StockStoreOptions {
  readonly prefix?: string
  /** Shards of the namespace (default 16): the same number in every process that uses it. */
  readonly shards?: number
  /** How long an unconfirmed reservation holds its units. */
  readonly holdMs: number
  /** How long a released reservation's record (or released marker) is kept, so retries stay no-ops. */
  readonly retentionMs: number
}

/** Live stock in Redis, typed: every change goes through one of the package's scripts. */
export interface StockStore {
  readonly keys: StockKeys
  /** Redis server time (epoch ms), the clock every sale window is judged by. */
  now(): Promise<number>
  /** A goods' live stock and terms, or undefined when its stock is not loaded. */
  read(goodsId: string): Promise<StockSnapshot | undefined>
  /** Loads stock and terms unless the stock is already there; true when this call loaded it. */
  loadIfAbsent(source: StockSource): Promise<boolean>
  /** Applies edited sale terms (and a changed initial stock) to loaded stock. */
  configure(goodsId: string, terms: SaleTerms): Promise<ConfigureOutcome>
  reserve(request: ReserveRequest): Promise<ReserveOutcome>
  /**
   * Confirms by id alone (the goods is looked up in every shard) or, given the goods, at that goods.
   * An id found in more than one shard is refused as `RESERVATION_CONFLICT`: name the goods.
   */
  confirm(reservationId: string, goodsId?: string): Promise<ConfirmOutcome>
  /**
   * Gives a reservation's units back once. Given the goods, an id it has never seen is marked
   * released (`MARKED`) for the retention period, or refused as `RESERVATION_CONFLICT` when goods
   * of another shard hold it; without the goods, an unknown id is only not found.
   */
  release(reservationId: string, options?: ReleaseOptions): Promise<ReleaseOutcome>
  /**
   * A reservation's record; a released marker is no reservation, so it reads as undefined. By id
   * alone, an id found in more than one shard reads as undefined too unless the goods is given.
   */
  reservation(reservationId: string, goodsId?: string): Promise<ReservationRecord | undefined>
  /** Units a user holds in live reservations of a goods. */
  holding(goodsId: string, userId: string): Promise<number>
  /**
   * Releases unconfirmed reservations past their hold, up to `limit` in each shard. Reports how
   * many were due and released, and the goods whose stock must be loaded before theirs can go
   * back. `due` reaches `limit` whenever some shard may have more waiting.
   */
  expireDue(limit?: number): Promise<{ released: number; due: number; unloaded: string[] }>
}

export function createStockStore(redis: Redis, options: StockStoreOptions): StockStore {
  const keys = stockKeys(options.prefix, options.shards)
  defineScripts(redis, stockScripts)
  const run = async (name: StockScriptName, scriptKeys: string[], args: (string | number)[]) =>
    asArray(await runScript(redis, name, scriptKeys, args))
  const reservationKeys = (goodsId: string, reservationId: string) => {
    const shard = keys.shardOf(goodsId)
    return [
      keys.available(goodsId),
      keys.sale(goodsId),
      keys.holders(goodsId),
      keys.reservation(goodsId, reservationId),
      shard.reservationGoods(reservationId),
      shard.expiries,
      shard.ledger,
    ]
  }

  /**
   * The goods of a reservation known by id alone: each shard keeps the ids reserved in it, so
   * every shard is asked. One id in two shards (reserved at goods of each) names no single goods.
   */
  async function goodsOf(reservationId: string, known?: string): Promise<string | 'AMBIGUOUS' | undefined> {
    if (known) return known
    const owners = await Promise.all(keys.shards.map((shard) => redis.get(shard.reservationGoods(reservationId))))
    const found = owners.filter((owner): owner is string => owner !== null)
    if (found.length > 1) return 'AMBIGUOUS'
    return found[0]
  }

  /**
   * Whether an id the named goods' shard does not know was reserved (or marked) at goods of
   * another shard. Asked only when confirm or release found nothing at the named goods, so the
   * usual calls pay nothing for it.
   */
  async function reservedInOtherShard(reservationId: string, goodsId: string): Promise<boolean> {
    const own = keys.shardOf(goodsId)
    const others = keys.shards.filter((shard) => shard !== own)
    const owners = await Promise.all(others.map((shard) => redis.get(shard.reservationGoods(reservationId))))
    return owners.some((owner) => owner !== null)
  }

  async function release(reservationId: string, goodsId: string, kind: string, reason: string, onlyIfDue: boolean) {
    const [status, , changed] = await run('stockRelease', reservationKeys(goodsId, reservationId), [
      goodsId,
      reservationId,
      kind,
      reason,
      options.retentionMs,
      onlyIfDue ? 1 : 0,
    ])
    switch (status) {
      case 'RELEASED':
        return { status, changed: Number(changed) === 1 } as const
      case 'MARKED':
      case 'NOT_DUE':
      case 'RESERVATION_NOT_FOUND':
      case 'RESERVATION_CONFLICT':
        return { status } as const
      case 'NOT_LOADED':
        return { status, goodsId } as const
      default:
        throw new Error(`unexpected answer from the release script: ${String(status)}`)
    }
  }

  async function expireDueIn(shard: ShardKeys, limit: number) {
    const due = (await run('stockDueExpiries', [shard.expiries], [limit])).map(String)
    return Promise.all(
      due.map(async (member) => {
        const parsed = parseExpiryMember(member)
        if (!parsed) {
          await redis.zrem(shard.expiries, member)
          return undefined
        }
        return release(parsed.reservationId, parsed.goodsId, 'expire', 'expired', true)
      }),
    )
  }

  return {
    keys,

    async now() {
      const [seconds, micros] = await redis.time()
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    },

    async read(goodsId) {
      const values = (await run('stockRead', [keys.available(goodsId), keys.sale(goodsId)], [])).map(Number)
      const [now = 0, available, startsAt = 0, endsAt = 0, purchaseLimit = 0, initialStock = 0, version = 0] = values
      if (available === undefined) return undefined
      const terms = { startsAt, endsAt, purchaseLimit: purchaseLimit > 0 ? purchaseLimit : null, initialStock, version }
      return { now, available, terms, state: saleStateAt(now, terms, available) }
    },

    async loadIfAbsent(source) {
      const loaded = await runScript(
        redis,
        'stockLoadIfAbsent',
        [keys.available(source.goodsId), keys.sale(source.goodsId)],
        [source.onHand, source.startsAt, source.endsAt, source.purchaseLimit ?? 0, source.initialStock, source.version],
      )
      return Number(loaded) === 1
    },

    async configure(goodsId, terms) {
      const [status, , value] = await run(
        'stockConfigure',
        [keys.available(goodsId), keys.sale(goodsId), keys.shardOf(goodsId).ledger],
        [goodsId, terms.version, terms.startsAt, terms.endsAt, terms.purchaseLimit ?? 0, terms.initialStock],
      )
      switch (status) {
        case 'OK':
          return { status, delta: Number(value) }
        case 'STOCK_BELOW_RESERVED':
          return { status, available: Number(value) }
        case 'STALE':
        case 'SALE_IN_PROGRESS':
        case 'NOT_LOADED':
          return { status }
        default:
          throw new Error(`unexpected answer from the configure script: ${String(status)}`)
      }
    },

    async reserve(request) {
      const answer = await run('stockReserve', reservationKeys(request.goodsId, request.reservationId), [
        request.goodsId,
        request.reservationId,
        request.userId,
        request.quantity,
        options.holdMs,
      ])
      const [status, now, ...rest] = answer
      if (status === 'OK') {
        const [state, expiresAt, replayed, available] = rest
        return {
          ok: true,
          now: Number(now),
          state: String(state) as ReservationState,
          expiresAt: Number(expiresAt),
          replayed: Number(replayed) === 1,
          available: Number(available),
        }
      }
      if (!RESERVE_REFUSALS.includes(status as ReserveRefusal)) {
        throw new Error(`unexpected answer from the reserve script: ${String(status)}`)
      }
      const available = rest[0]
      return {
        ok: false,
        now: Number(now),
        refusal: status as ReserveRefusal,
        available: available === undefined || available === null ? null : Number(available),
      }
    },

    async confirm(reservationId, knownGoodsId) {
      const goodsId = await goodsOf(reservationId, knownGoodsId)
      if (!goodsId) return { status: 'RESERVATION_NOT_FOUND' }
      if (goodsId === 'AMBIGUOUS') return { status: 'RESERVATION_CONFLICT' }
      const [status, , value] = await run('stockConfirm', reservationKeys(goodsId, reservationId), [
        goodsId,
        reservationId,
        options.retentionMs,
      ])
      switch (status) {
        case 'CONFIRMED':
          return { status, changed: Number(value) === 1 }
        case 'RELEASED':
          return { status, reason: String(value) }
        case 'RESERVATION_NOT_FOUND':
          if (knownGoodsId && (await reservedInOtherShard(reservationId, goodsId))) {
            return { status: 'RESERVATION_CONFLICT' }
          }
          return { status }
        case 'RESERVATION_CONFLICT':
          return { status }
        case 'NOT_LOADED':
          return { status, goodsId }
        default:
          throw new Error(`unexpected answer from the confirm script: ${String(status)}`)
      }
    },

    async release(reservationId, releaseOptions = {}) {
      const goodsId = await goodsOf(reservationId, releaseOptions.goodsId)
      if (!goodsId) return { status: 'RESERVATION_NOT_FOUND' }
      if (goodsId === 'AMBIGUOUS') return { status: 'RESERVATION_CONFLICT' }
      const outcome = await release(reservationId, goodsId, 'release', releaseOptions.reason ?? 'released', false)
      // The named goods never saw the id and marked it; if goods of another shard hold it, the
      // caller named the wrong goods. The marker stays: that id belongs elsewhere anyway.
      if (outcome.status === 'MARKED' && (await reservedInOtherShard(reservationId, goodsId))) {
        return { status: 'RESERVATION_CONFLICT' }
      }
      return outcome
    },

    async reservation(reservationId, knownGoodsId) {
      const goodsId = await goodsOf(reservationId, knownGoodsId)
      if (!goodsId || goodsId === 'AMBIGUOUS') return undefined
      const record = await redis.hgetall(keys.reservation(goodsId, reservationId))
      if (!record.user) return undefined
      const time = (value: string | undefined) => (value ? Number(value) : null)
      return {
        reservationId,
        goodsId,
        userId: record.user,
        quantity: Number(record.quantity),
        state: record.state as ReservationState,
        reservedAt: Number(record.reservedAt),
        expiresAt: Number(record.expiresAt),
        confirmedAt: time(record.confirmedAt),
        releasedAt: time(record.releasedAt),
        releaseReason: record.releaseReason ?? null,
      }
    },

    async holding(goodsId, userId) {
      return Number((await redis.hget(keys.holders(goodsId), userId)) ?? 0)
    },

    async expireDue(limit = 200) {
      const outcomes = (await Promise.all(keys.shards.map((shard) => expireDueIn(shard, limit)))).flat()
      const unloaded = new Set<string>()
      let released = 0
      for (const outcome of outcomes) {
        if (outcome?.status === 'RELEASED' && outcome.changed) released += 1
        if (outcome?.status === 'NOT_LOADED') unloaded.add(outcome.goodsId)
      }
      return { released, due: outcomes.length, unloaded: [...unloaded] }
    },
  }
}

function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error(`expected an array from a stock script, got ${typeof value}`)
  return value
}
