import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { Redis } from '@timedeal/platform'
import { connectTestRedis, deleteRedisKeys } from '@timedeal/platform/testing'
import {
  createStockStore,
  LEDGER_GROUP,
  type ReserveOutcome,
  type StockStore,
  waitUntilLedgerApplied,
} from '../src/index.ts'
import { availableOf, countBy, goodsIdInShard, ledgerOf, openSale, testPrefix } from './support.ts'

const prefix = testPrefix()
const HOLD_MS = 60_000

describe('live stock scripts (real Redis)', () => {
  let redis: Redis
  let store: StockStore

  before(() => {
    redis = connectTestRedis('stock-test')
    store = createStockStore(redis, { prefix, holdMs: HOLD_MS, retentionMs: 60_000 })
  })

  after(async () => {
    await deleteRedisKeys(redis, prefix)
    redis.disconnect()
  })

  const reserve = (goodsId: string, userId: string, quantity = 1, reservationId: string = randomUUID()) =>
    store.reserve({ reservationId, goodsId, userId, quantity })

  test('takes exactly the stock when many users race for it, and refuses the rest as SOLD_OUT', async () => {
    const { goodsId } = await openSale(store, { stock: 50 })
    const outcomes = await Promise.all(Array.from({ length: 600 }, (_, index) => reserve(goodsId, `user-${index}`)))
    const codes = countBy(outcomes.map((outcome) => (outcome.ok ? 'OK' : outcome.refusal)))
    assert.deepEqual(Object.fromEntries(codes), { OK: 50, SOLD_OUT: 550 })
    assert.equal(await availableOf(redis, store, goodsId), 0)
    const ledger = await ledgerOf(redis, store, goodsId)
    assert.equal(ledger.length, 50)
    assert.ok(ledger.every((entry) => entry.kind === 'reserve' && entry.delta === -1))
  })

  test('judges the window by the Redis clock: refused 1 ms before opening, open at opening, closed at closing', async () => {
    // Reserve in a tight loop across both edges; every answer carries the server time it was
    // decided at, so each one can be checked against the window to the millisecond. Each edge
    // (as an offset from its window) needs to be hit in some round, not all four in one.
    const edgesHit = new Set<string>()
    for (let round = 1; ; round += 1) {
      const { goodsId, startsAt, endsAt } = await openSale(store, { stock: 1_000_000, opensIn: 150, lastsMs: 100 })
      const seen = new Map<number, ReserveOutcome[]>()
      // Several callers at once, so a pause of one (GC, a busy machine) rarely skips a millisecond.
      const caller = async () => {
        for (let now = 0; now <= endsAt + 1; ) {
          const outcome = await reserve(goodsId, `edge-${randomUUID()}`)
          now = outcome.now
          seen.set(now, [...(seen.get(now) ?? []), outcome])
        }
      }
      await Promise.all(Array.from({ length: 8 }, caller))
      for (const [now, outcomes] of seen) {
        const expected = now < startsAt ? 'SALE_NOT_OPEN' : now >= endsAt ? 'SALE_CLOSED' : 'OK'
        for (const outcome of outcomes) {
          assert.equal(outcome.ok ? 'OK' : outcome.refusal, expected, `at ${now - startsAt} ms after opening`)
        }
      }
      const edges = { beforeOpening: startsAt - 1, opening: startsAt, lastOpen: endsAt - 1, closing: endsAt }
      for (const [edge, at] of Object.entries(edges)) if (seen.has(at)) edgesHit.add(edge)
      if (edgesHit.size === Object.keys(edges).length) return
      // A pause (GC, a busy machine) skipped an edge millisecond: look again with a fresh window.
      assert.ok(
        round < 30,
        `the loop never landed on ${Object.keys(edges).filter((edge) => !edgesHit.has(edge))} in ${round} rounds`,
      )
    }
  })

  test('holds one user to the purchase limit however many requests race', async () => {
    const { goodsId } = await openSale(store, { stock: 100, purchaseLimit: 3 })
    const outcomes = await Promise.all(Array.from({ length: 60 }, () => reserve(goodsId, 'eager-buyer')))
    const codes = countBy(outcomes.map((outcome) => (outcome.ok ? 'OK' : outcome.refusal)))
    assert.deepEqual(Object.fromEntries(codes), { OK: 3, PURCHASE_LIMIT_EXCEEDED: 57 })
    assert.equal(await store.holding(goodsId, 'eager-buyer'), 3)
    assert.equal(await availableOf(redis, store, goodsId), 97)
    assert.equal((await reserve(goodsId, 'other-buyer', 3)).ok, true)
    assert.equal((await reserve(goodsId, 'other-buyer-2', 4)).ok, false)

    // A released reservation no longer counts against the limit.
    const first = await reserve(goodsId, 'patient-buyer', 2, 'patient-1')
    assert.equal(first.ok, true)
    assert.equal((await reserve(goodsId, 'patient-buyer', 2)).ok, false)
    await store.release('patient-1')
    assert.equal((await reserve(goodsId, 'patient-buyer', 2)).ok, true)
  })

  test('answers a retried reservation id with the same reservation and changes nothing', async () => {
    const { goodsId } = await openSale(store, { stock: 10 })
    const id = randomUUID()
    const outcomes = await Promise.all(Array.from({ length: 25 }, () => reserve(goodsId, 'retrying-buyer', 2, id)))
    assert.ok(outcomes.every((outcome) => outcome.ok))
    const fresh = outcomes.filter((outcome) => outcome.ok && !outcome.replayed)
    assert.equal(fresh.length, 1)
    const expiresAt = new Set(outcomes.map((outcome) => (outcome.ok ? outcome.expiresAt : 0)))
    assert.equal(expiresAt.size, 1)
    assert.equal(await availableOf(redis, store, goodsId), 8)
    assert.equal((await ledgerOf(redis, store, goodsId)).length, 1)

    const changedQuantity = await reserve(goodsId, 'retrying-buyer', 3, id)
    assert.equal(changedQuantity.ok ? 'OK' : changedQuantity.refusal, 'RESERVATION_CONFLICT')
    // Each shard keeps its ids to one goods; see the next test for ids in two shards.
    const sameShard = goodsIdInShard(store, store.keys.shardOf(goodsId).index)
    const { goodsId: otherGoods } = await openSale(store, { stock: 10, goodsId: sameShard })
    const otherGoodsSameId = await reserve(otherGoods, 'retrying-buyer', 2, id)
    assert.equal(otherGoodsSameId.ok ? 'OK' : otherGoodsSameId.refusal, 'RESERVATION_CONFLICT')
    assert.equal(await availableOf(redis, store, otherGoods), 10)
  })

  test('never confirms, releases or shows the wrong reservation when one id was reserved at goods of two shards', async () => {
    const id = randomUUID()
    const { goodsId: first } = await openSale(store, { stock: 5, goodsId: goodsIdInShard(store, 1) })
    const { goodsId: second } = await openSale(store, { stock: 5, goodsId: goodsIdInShard(store, 2) })
    assert.ok((await reserve(first, 'buyer-a', 1, id)).ok)
    // Another shard does not see the first one's ids: the same id is taken there too.
    assert.ok((await reserve(second, 'buyer-b', 2, id)).ok)

    // By id alone nothing says which one is meant: refused, nothing changed.
    assert.deepEqual(await store.confirm(id), { status: 'RESERVATION_CONFLICT' })
    assert.deepEqual(await store.release(id), { status: 'RESERVATION_CONFLICT' })
    assert.equal(await store.reservation(id), undefined)
    assert.deepEqual([await availableOf(redis, store, first), await availableOf(redis, store, second)], [4, 3])

    // Named with its goods, each is its own reservation.
    assert.deepEqual(await store.confirm(id, first), { status: 'CONFIRMED', changed: true })
    assert.deepEqual(await store.release(id, { goodsId: second }), { status: 'RELEASED', changed: true })
    assert.deepEqual(
      [(await store.reservation(id, first))?.state, (await store.reservation(id, second))?.state],
      ['CONFIRMED', 'RELEASED'],
    )
    assert.deepEqual([await availableOf(redis, store, first), await availableOf(redis, store, second)], [4, 5])

    // An id in one shard only is found by id alone, whichever shard it is in.
    const single = randomUUID()
    assert.ok((await reserve(second, 'buyer-c', 1, single)).ok)
    assert.equal((await store.reservation(single))?.goodsId, second)
    assert.deepEqual(await store.confirm(single), { status: 'CONFIRMED', changed: true })
  })

  test('expires due reservations in every shard, each once', async () => {
    const own = `${prefix}_shards`
    const shortHold = createStockStore(redis, { prefix: own, shards: 4, holdMs: 200, retentionMs: 60_000 })
    try {
      const goodsIds: string[] = []
      for (let shard = 0; shard < 4; shard += 1) {
        const { goodsId } = await openSale(shortHold, { stock: 10, goodsId: goodsIdInShard(shortHold, shard) })
        goodsIds.push(goodsId)
        for (let index = 0; index < 3; index += 1) {
          const outcome = await shortHold.reserve({
            reservationId: randomUUID(),
            goodsId,
            userId: `u-${index}`,
            quantity: 1,
          })
          assert.ok(outcome.ok)
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 300))
      // Two at a time per shard: the first pass is full, so a sweeper goes on to the next one.
      const first = await shortHold.expireDue(2)
      assert.deepEqual([first.due, first.released], [8, 8])
      const sweeps = await Promise.all([shortHold.expireDue(2), shortHold.expireDue(2)])
      assert.equal(
        sweeps.reduce((sum, sweep) => sum + sweep.released, 0),
        4,
      )
      assert.deepEqual(await shortHold.expireDue(2), { released: 0, due: 0, unloaded: [] })
      for (const goodsId of goodsIds) {
        assert.equal(await availableOf(redis, shortHold, goodsId), 10, `goods ${goodsId}`)
        const expired = (await ledgerOf(redis, shortHold, goodsId)).filter((entry) => entry.kind === 'expire')
        assert.equal(expired.length, 3, `goods ${goodsId}`)
      }
    } finally {
      await deleteRedisKeys(redis, own)
    }
  })

  test('gives the stock back exactly once when a reservation is released again and again', async () => {
    const { goodsId } = await openSale(store, { stock: 5 })
    await reserve(goodsId, 'releasing-buyer', 2, 'release-twice')
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => store.release('release-twice')))
    assert.equal(outcomes.filter((outcome) => outcome.status === 'RELEASED' && outcome.changed).length, 1)
    assert.ok(outcomes.every((outcome) => outcome.status === 'RELEASED'))
    assert.equal(await availableOf(redis, store, goodsId), 5)
    assert.equal(await store.holding(goodsId, 'releasing-buyer'), 0)
    const kinds = (await ledgerOf(redis, store, goodsId)).map((entry) => `${entry.kind}:${entry.delta}`)
    assert.deepEqual(kinds, ['reserve:-2', 'release:2'])
    // A retried reservation of a released id is answered with the record, not a new hold.
    const replay = await reserve(goodsId, 'releasing-buyer', 2, 'release-twice')
    assert.ok(replay.ok && replay.replayed && replay.state === 'RELEASED')
    assert.equal(await availableOf(redis, store, goodsId), 5)
    assert.equal((await store.release('no-such-reservation')).status, 'RESERVATION_NOT_FOUND')
  })

  test('never keeps units for a reserve that follows or races the release of its own id', async () => {
    const { goodsId } = await openSale(store, { stock: 30, purchaseLimit: 1 })
    const ids = Array.from({ length: 30 }, (_, index) => `late-${index}-${randomUUID()}`)
    const answers = await Promise.all(
      ids.map(async (id, index) => {
        const reserveIt = () => reserve(goodsId, `late-buyer-${index}`, 1, id)
        const releaseIt = () => store.release(id, { goodsId, reason: 'order-failed' })
        if (index % 2 === 0) {
          const [reserved, released] = await Promise.all([reserveIt(), releaseIt()])
          return { reserved, released }
        }
        // The reserve call timed out on its way and arrives after the release.
        const released = await releaseIt()
        return { reserved: await reserveIt(), released }
      }),
    )
    for (const { reserved, released } of answers) {
      // Either the reserve came first and the release gave its unit back, or the release left a
      // marker and the reserve was refused.
      if (reserved.ok) assert.deepEqual(released, { status: 'RELEASED', changed: true })
      else {
        assert.equal(reserved.refusal, 'RESERVATION_RELEASED')
        assert.deepEqual(released, { status: 'MARKED' })
      }
    }
    assert.equal(await availableOf(redis, store, goodsId), 30)
    assert.equal(await redis.hlen(store.keys.holders(goodsId)), 0)
    assert.equal((await store.expireDue()).due, 0)
    // Every later reserve of those ids is refused or answered from its released record.
    for (const id of ids) {
      const again = await store.reserve({ reservationId: id, goodsId, userId: 'late-buyer-x', quantity: 1 })
      assert.ok(!again.ok || again.state === 'RELEASED')
    }
    assert.equal(await availableOf(redis, store, goodsId), 30)
    // Without the goods an unknown id cannot be marked.
    assert.equal((await store.release(`never-reserved-${randomUUID()}`)).status, 'RESERVATION_NOT_FOUND')
  })

  test('returns the stock once whatever the order of racing confirm and release calls', async () => {
    const { goodsId } = await openSale(store, { stock: 40 })
    const ids = Array.from({ length: 40 }, (_, index) => `race-${index}-${randomUUID()}`)
    await Promise.all(ids.map((id, index) => reserve(goodsId, `racer-${index}`, 1, id)))
    assert.equal(await availableOf(redis, store, goodsId), 0)

    const answers = await Promise.all(
      ids.map(async (id, index) => {
        const calls =
          index % 2 === 0
            ? [store.confirm(id), store.release(id), store.confirm(id), store.release(id)]
            : [store.release(id), store.confirm(id), store.release(id), store.confirm(id)]
        return Promise.all(calls)
      }),
    )
    for (const [index, calls] of answers.entries()) {
      const changed = calls.filter(
        (outcome) => outcome.status === 'RELEASED' && 'changed' in outcome && outcome.changed,
      )
      assert.equal(changed.length, 1, `reservation ${index} gave its unit back ${changed.length} times`)
    }
    for (const id of ids) assert.equal((await store.reservation(id))?.state, 'RELEASED')
    assert.equal(await availableOf(redis, store, goodsId), 40)
    const releases = (await ledgerOf(redis, store, goodsId)).filter((entry) => entry.kind === 'release')
    assert.equal(releases.length, 40)
    assert.equal(new Set(releases.map((entry) => entry.reservationId)).size, 40)
  })

  test('a confirmed reservation stays taken until it is released, and is then given back', async () => {
    const { goodsId } = await openSale(store, { stock: 3 })
    await reserve(goodsId, 'paying-buyer', 1, 'paid-then-returned')
    assert.deepEqual(await store.confirm('paid-then-returned'), { status: 'CONFIRMED', changed: true })
    assert.deepEqual(await store.confirm('paid-then-returned'), { status: 'CONFIRMED', changed: false })
    assert.equal(await availableOf(redis, store, goodsId), 2)
    assert.deepEqual(await store.release('paid-then-returned', { reason: 'order-returned' }), {
      status: 'RELEASED',
      changed: true,
    })
    assert.equal(await availableOf(redis, store, goodsId), 3)
    assert.equal((await store.reservation('paid-then-returned'))?.releaseReason, 'order-returned')
    assert.deepEqual(await store.confirm('paid-then-returned'), { status: 'RELEASED', reason: 'order-returned' })
  })

  test('expires unconfirmed reservations after the hold and gives their stock back once', async () => {
    const shortHold = createStockStore(redis, { prefix, holdMs: 300, retentionMs: 60_000 })
    const { goodsId } = await openSale(shortHold, { stock: 10 })
    const hold = (id: string) => shortHold.reserve({ reservationId: id, goodsId, userId: `holder-${id}`, quantity: 2 })
    for (const id of ['kept', 'lapsed', 'late-confirm']) assert.equal((await hold(id)).ok, true)
    assert.equal((await shortHold.confirm('kept')).status, 'CONFIRMED')
    assert.equal(await availableOf(redis, shortHold, goodsId), 4)
    await new Promise((resolve) => setTimeout(resolve, 400))

    // Confirming after the hold expires the reservation on the spot, whether or not a sweep ran.
    assert.deepEqual(await shortHold.confirm('late-confirm'), { status: 'RELEASED', reason: 'expired' })
    const sweeps = await Promise.all([shortHold.expireDue(), shortHold.expireDue(), shortHold.expireDue()])
    assert.equal(
      sweeps.reduce((sum, sweep) => sum + sweep.released, 0),
      1,
    )
    assert.equal((await shortHold.expireDue()).due, 0)
    assert.equal(await availableOf(redis, shortHold, goodsId), 8)
    assert.equal((await shortHold.reservation('kept'))?.state, 'CONFIRMED')
    assert.equal((await shortHold.reservation('lapsed'))?.releaseReason, 'expired')
    const expiries = (await ledgerOf(redis, shortHold, goodsId)).filter((entry) => entry.kind === 'expire')
    assert.deepEqual(expiries.map((entry) => entry.reservationId).sort(), ['lapsed', 'late-confirm'])
  })

  test('loads stock only when it is absent: one of many concurrent loaders wins, live stock is never overwritten', async () => {
    const goodsId = `g-${randomUUID()}`
    const now = await store.now()
    const terms = { startsAt: now - 1_000, endsAt: now + 60_000, purchaseLimit: null, initialStock: 10, version: 1 }
    const loads = await Promise.all(
      Array.from({ length: 20 }, (_, index) => store.loadIfAbsent({ ...terms, goodsId, onHand: 10 + index })),
    )
    assert.equal(loads.filter(Boolean).length, 1)
    const winner = 10 + loads.indexOf(true)
    assert.equal(await availableOf(redis, store, goodsId), winner)
    await reserve(goodsId, 'early-buyer', 4)
    assert.equal(await store.loadIfAbsent({ ...terms, goodsId, onHand: 10 }), false)
    assert.equal(await availableOf(redis, store, goodsId), winner - 4)
    assert.equal((await ledgerOf(redis, store, goodsId)).length, 1)
  })

  test('applies a seller edit to loaded stock, refusing stock changes during the sale and stale versions', async () => {
    const { goodsId, startsAt, endsAt } = await openSale(store, { stock: 10, opensIn: 60_000 })
    const terms = { startsAt, endsAt, purchaseLimit: 2, initialStock: 15, version: 2 }
    assert.deepEqual(await store.configure(goodsId, terms), { status: 'OK', delta: 5 })
    assert.deepEqual(await store.configure(goodsId, terms), { status: 'OK', delta: 0 })
    assert.deepEqual(await store.configure(goodsId, { ...terms, initialStock: 1, version: 1 }), { status: 'STALE' })
    // One version is one set of terms: other terms under a version already applied are stale too.
    assert.deepEqual(await store.configure(goodsId, { ...terms, purchaseLimit: 3 }), { status: 'STALE' })
    assert.equal((await store.read(goodsId))?.available, 15)
    assert.equal((await store.read(goodsId))?.terms.purchaseLimit, 2)

    const now = await store.now()
    const open = { ...terms, startsAt: now - 1_000, version: 3 }
    assert.deepEqual(await store.configure(goodsId, open), { status: 'OK', delta: 0 })
    assert.deepEqual(await store.configure(goodsId, { ...open, initialStock: 20, version: 4 }), {
      status: 'SALE_IN_PROGRESS',
    })
    await reserve(goodsId, 'edit-buyer', 2)
    const closed = { ...open, endsAt: now, version: 5 }
    assert.deepEqual(await store.configure(goodsId, closed), { status: 'OK', delta: 0 })
    assert.deepEqual(await store.configure(goodsId, { ...closed, initialStock: 1, version: 6 }), {
      status: 'STOCK_BELOW_RESERVED',
      available: 13,
    })
    const adjustments = (await ledgerOf(redis, store, goodsId)).filter((entry) => entry.kind === 'adjust')
    assert.deepEqual(
      adjustments.map((entry) => entry.delta),
      [5],
    )
    // Every change of terms is in the ledger too, for MySQL to follow.
    const termsEntries = (await ledgerOf(redis, store, goodsId)).filter((entry) => entry.kind === 'terms')
    assert.deepEqual(
      termsEntries.map((entry) => [entry.delta, entry.terms?.version, entry.terms?.initialStock]),
      [
        [0, 2, 15],
        [0, 3, 15],
        [0, 5, 15],
      ],
    )
    assert.deepEqual(termsEntries[0]?.terms, terms)
    assert.deepEqual(await store.configure(`g-${randomUUID()}`, terms), { status: 'NOT_LOADED' })
  })

  test('waits for the write-behind to apply every ledger entry written so far', async () => {
    const own = createStockStore(redis, { prefix: `${prefix}_barrier`, holdMs: HOLD_MS, retentionMs: 60_000 })
    try {
      await waitUntilLedgerApplied(redis, own.keys.ledgers, { timeoutMs: 50 })
      const { goodsId } = await openSale(own, { stock: 5 })
      await own.reserve({ reservationId: 'barrier-1', goodsId, userId: 'u', quantity: 1 })
      // Every shard's stream is waited for, so the goods' shard holds the wait up.
      await assert.rejects(waitUntilLedgerApplied(redis, own.keys.ledgers, { timeoutMs: 100 }), /has not applied entry/)
      const stream = own.keys.shardOf(goodsId).ledger

      await redis.xgroup('CREATE', stream, LEDGER_GROUP, '0')
      const read = async () =>
        (
          (await redis.call('XREADGROUP', 'GROUP', LEDGER_GROUP, 'w', 'STREAMS', stream, '>')) as
            | [string, [string, string[]][]][]
            | null
        )?.[0]?.[1] ?? []
      const [delivered] = await read()
      assert.ok(delivered)
      await assert.rejects(waitUntilLedgerApplied(redis, stream, { timeoutMs: 100 }), /has not applied entry/)
      const waiting = waitUntilLedgerApplied(redis, own.keys.ledgers, { timeoutMs: 5_000 })
      await redis.xack(stream, LEDGER_GROUP, delivered[0])
      await waiting
    } finally {
      await deleteRedisKeys(redis, `${prefix}_barrier`)
    }
  })

  test('reports the sale state from the Redis clock and the live stock', async () => {
    const upcoming = await openSale(store, { stock: 1, opensIn: 60_000 })
    const open = await openSale(store, { stock: 1 })
    const closed = await openSale(store, { stock: 1, opensIn: -10_000, lastsMs: 5_000 })
    assert.equal((await store.read(upcoming.goodsId))?.state, 'UPCOMING')
    assert.equal((await store.read(open.goodsId))?.state, 'OPEN')
    assert.equal((await store.read(closed.goodsId))?.state, 'CLOSED')
    await reserve(open.goodsId, 'last-unit-buyer')
    assert.equal((await store.read(open.goodsId))?.state, 'SOLD_OUT')
    assert.equal(await store.read(`g-${randomUUID()}`), undefined)
    const refused = await reserve(`g-${randomUUID()}`, 'lost-buyer')
    assert.equal(refused.ok ? 'OK' : refused.refusal, 'NOT_LOADED')
  })
})
