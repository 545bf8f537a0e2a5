import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { assertEveryRouteDocumented, INTERNAL_OPENAPI_PATH, type Redis } from '@timedeal/platform'
import { eventually, type TestIssuer } from '@timedeal/platform/testing'
import {
  call,
  connectRedis,
  countBy,
  type GoodsUnderTest,
  ledgerRowsOf,
  onHandOf,
  saleDraft,
  startGoodsUnderTest,
  startTestGoods,
  type TestDatabase,
  type TestGoods,
} from './support.ts'

describe('goods-service API (real MariaDB and Redis)', () => {
  let fixture: GoodsUnderTest
  let prefix: string
  let database: TestDatabase
  let redis: Redis
  let issuer: TestIssuer
  let goods: TestGoods
  let seller: string
  let otherSeller: string
  let buyer: string
  const sellerId = `seller-${randomUUID()}`

  before(async () => {
    fixture = await startGoodsUnderTest({ settings: { LEDGER_CLAIM_IDLE_MS: '500' } })
    ;({ database, redis, prefix, issuer, goods } = fixture)
    seller = await issuer.sign({ sub: sellerId, role: 'SELLER' })
    otherSeller = await issuer.sign({ sub: `seller-${randomUUID()}`, role: 'SELLER' })
    buyer = await issuer.sign({ sub: `buyer-${randomUUID()}`, role: 'BUYER' })
  })

  after(() => fixture?.stop())

  const now = () => goods.service.live.store.now()
  /** Runs `use` beside a second instance whose reservations hold 300 ms and are swept every 50 ms. */
  const withShortHold = async (name: string, use: (shortHold: TestGoods) => Promise<void>) => {
    const shortHoldRedis = connectRedis(name)
    const shortHold = await startTestGoods({
      database,
      redis: shortHoldRedis,
      prefix,
      issuer,
      settings: { RESERVATION_HOLD_MS: '300', EXPIRY_SWEEP_INTERVAL_MS: '50', LEDGER_WORKER_ENABLED: 'false' },
    })
    try {
      await use(shortHold)
    } finally {
      await shortHold.stop()
      shortHoldRedis.disconnect()
    }
  }

  const createSale = async (shape: Parameters<typeof saleDraft>[1], token = seller) => {
    const created = await call(goods.app, 'POST', '/api/goods', { token, body: saleDraft(await now(), shape) })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    return created.body as { id: string; stockAvailable: number; saleState: string }
  }
  /** A sale whose goods is in the same stock shard as `beside` (`same`) or in another one. */
  const createSaleInShard = async (beside: string, same: boolean, shape: Parameters<typeof saleDraft>[1]) => {
    const shardOf = (goodsId: string) => goods.service.live.store.keys.shardOf(goodsId).index
    for (;;) {
      const sale = await createSale(shape)
      if ((shardOf(sale.id) === shardOf(beside)) === same) return sale
    }
  }
  const reserve = (goodsId: string, userId: string, quantity = 1, reservationId: string = randomUUID()) =>
    call(goods.app, 'POST', '/internal/reservations', {
      internal: true,
      body: { reservationId, goodsId, userId, quantity },
    })

  test('documents every route in /openapi.json with its request, responses and problem codes', async () => {
    await assertEveryRouteDocumented(goods.app)
    await assertEveryRouteDocumented(goods.internalApp, INTERNAL_OPENAPI_PATH)
  })

  test('a seller creates goods and anyone reads them with live stock and sale state', async () => {
    const created = await createSale({ stock: 7, limit: 2 })
    assert.equal(created.stockAvailable, 7)
    assert.equal(created.saleState, 'OPEN')
    const read = await call(goods.app, 'GET', `/api/goods/${created.id}`)
    assert.equal(read.status, 200)
    assert.equal(read.body.sellerId, sellerId)
    assert.equal(read.body.purchaseLimit, 2)
    const stock = await call(goods.app, 'GET', `/api/goods/${created.id}/stock`)
    assert.equal(stock.body.stockAvailable, 7)
    assert.equal(stock.body.saleState, 'OPEN')
    assert.equal((await call(goods.app, 'GET', '/api/goods/no-such-goods')).body.code, 'GOODS_NOT_FOUND')
  })

  test('only sellers create goods, and bad input is one 400 naming each field', async () => {
    const draft = saleDraft(await now(), { stock: 1 })
    assert.equal((await call(goods.app, 'POST', '/api/goods', { body: draft })).status, 401)
    assert.equal((await call(goods.app, 'POST', '/api/goods', { token: buyer, body: draft })).status, 403)
    const bad = await call(goods.app, 'POST', '/api/goods', {
      token: seller,
      body: { ...draft, price: -1, initialStock: 1.5, saleEndsAt: draft.saleStartsAt },
    })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.code, 'VALIDATION_FAILED')
    const fields = (bad.body.errors as { field: string }[]).map((error) => error.field).sort()
    assert.deepEqual(fields, ['initialStock', 'price'])
    const window = await call(goods.app, 'POST', '/api/goods', {
      token: seller,
      body: { ...draft, saleEndsAt: draft.saleStartsAt },
    })
    assert.equal(window.status, 400)
    assert.match(String(window.body.detail), /saleEndsAt must be after saleStartsAt/)
  })

  test('only the owning seller edits, and stock is locked while the sale is open', async () => {
    const upcoming = await createSale({ stock: 10, opensIn: 3_600_000 })
    const notMine = await call(goods.app, 'PATCH', `/api/goods/${upcoming.id}`, {
      token: otherSeller,
      body: { name: 'taken over' },
    })
    assert.equal(notMine.status, 403)
    assert.equal(notMine.body.code, 'NOT_GOODS_OWNER')

    const edited = await call(goods.app, 'PATCH', `/api/goods/${upcoming.id}`, {
      token: seller,
      body: { initialStock: 25, purchaseLimit: 1, name: 'Renamed' },
    })
    assert.equal(edited.status, 200, JSON.stringify(edited.body))
    assert.equal(edited.body.stockAvailable, 25)
    assert.equal(edited.body.name, 'Renamed')

    const open = await createSale({ stock: 10 })
    const locked = await call(goods.app, 'PATCH', `/api/goods/${open.id}`, {
      token: seller,
      body: { initialStock: 99 },
    })
    assert.equal(locked.status, 422)
    assert.equal(locked.body.code, 'SALE_IN_PROGRESS')
    // Other fields, and the window itself, may change during the sale.
    const closesSooner = new Date((await now()) + 60_000).toISOString()
    const renamed = await call(goods.app, 'PATCH', `/api/goods/${open.id}`, {
      token: seller,
      body: { description: 'now with a shorter sale', saleEndsAt: closesSooner },
    })
    assert.equal(renamed.status, 200)
    assert.equal(renamed.body.saleEndsAt, closesSooner)
    assert.equal(
      (await call(goods.app, 'PATCH', '/api/goods/no-such-goods', { token: seller, body: { name: 'x' } })).status,
      404,
    )

    // The stock edit reached MySQL through the ledger: the durable count follows live stock.
    await eventually(async () => ((await onHandOf(database.sequelize, upcoming.id)) === 25 ? true : undefined))
  })

  test('a new purchase limit applies to reservations at once', async () => {
    const sale = await createSale({ stock: 10 })
    await call(goods.app, 'PATCH', `/api/goods/${sale.id}`, { token: seller, body: { purchaseLimit: 1 } })
    assert.equal((await reserve(sale.id, 'limited-buyer')).status, 201)
    const second = await reserve(sale.id, 'limited-buyer')
    assert.equal(second.status, 422)
    assert.equal(second.body.code, 'PURCHASE_LIMIT_EXCEEDED')
  })

  test('lists goods newest first in cursor pages, filtered by sale state', async () => {
    const listSeller = `seller-${randomUUID()}`
    const token = await issuer.sign({ sub: listSeller, role: 'SELLER' })
    const made = {
      upcoming: await createSale({ stock: 3, opensIn: 3_600_000 }, token),
      open: await createSale({ stock: 3 }, token),
      soldOut: await createSale({ stock: 1 }, token),
      closed: await createSale({ stock: 3, opensIn: -7_200_000, lastsMs: 3_600_000 }, token),
      open2: await createSale({ stock: 5 }, token),
    }
    assert.equal((await reserve(made.soldOut.id, 'last-buyer')).status, 201)

    const seen: string[] = []
    let cursor: string | null = null
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2'
      const page = await call(goods.app, 'GET', `/api/goods/mine${query}`, { token })
      assert.equal(page.status, 200)
      const items = page.body.items as { id: string }[]
      assert.ok(items.length <= 2)
      seen.push(...items.map((item) => item.id))
      cursor = page.body.nextCursor as string | null
    } while (cursor)
    assert.deepEqual(seen, [made.open2.id, made.closed.id, made.soldOut.id, made.open.id, made.upcoming.id])

    const byState = async (state: string) => {
      const page = await call(goods.app, 'GET', `/api/goods/mine?state=${state}&limit=10`, { token })
      return (page.body.items as { id: string }[]).map((item) => item.id)
    }
    assert.deepEqual(await byState('OPEN'), [made.open2.id, made.open.id])
    assert.deepEqual(await byState('SOLD_OUT'), [made.soldOut.id])
    assert.deepEqual(await byState('UPCOMING'), [made.upcoming.id])
    assert.deepEqual(await byState('CLOSED'), [made.closed.id])

    // A filtered page is filled from as many rows as it takes.
    const firstOpen = await call(goods.app, 'GET', `/api/goods/mine?state=OPEN&limit=1`, { token })
    const next = await call(
      goods.app,
      'GET',
      `/api/goods/mine?state=OPEN&limit=1&cursor=${firstOpen.body.nextCursor}`,
      {
        token,
      },
    )
    assert.deepEqual(
      (next.body.items as { id: string }[]).map((item) => item.id),
      [made.open.id],
    )

    const everyone = await call(goods.app, 'GET', '/api/goods?limit=100')
    assert.ok((everyone.body.items as { id: string }[]).some((item) => item.id === made.open.id))
    assert.equal((await call(goods.app, 'GET', '/api/goods?state=GONE')).status, 400)
    assert.equal((await call(goods.app, 'GET', '/api/goods?cursor=%%%')).status, 400)
    assert.equal((await call(goods.app, 'GET', '/api/goods/mine', { token: buyer })).status, 403)
  })

  test('a buyer adds, lists and removes wishlist goods', async () => {
    const sale = await createSale({ stock: 4 })
    const later = await createSale({ stock: 4, opensIn: 600_000 })
    assert.equal(
      (await call(goods.app, 'POST', '/api/wishlist', { token: buyer, body: { goodsId: sale.id } })).status,
      201,
    )
    assert.equal(
      (await call(goods.app, 'POST', '/api/wishlist', { token: buyer, body: { goodsId: sale.id } })).status,
      200,
    )
    assert.equal(
      (await call(goods.app, 'POST', '/api/wishlist', { token: buyer, body: { goodsId: later.id } })).status,
      201,
    )
    const missing = await call(goods.app, 'POST', '/api/wishlist', { token: buyer, body: { goodsId: 'no-such-goods' } })
    assert.equal(missing.body.code, 'GOODS_NOT_FOUND')

    const listed = await call(goods.app, 'GET', '/api/wishlist', { token: buyer })
    const items = listed.body.items as { goods: { id: string; saleState: string } }[]
    assert.deepEqual(
      items.map((item) => [item.goods.id, item.goods.saleState]),
      [
        [later.id, 'UPCOMING'],
        [sale.id, 'OPEN'],
      ],
    )
    assert.equal((await call(goods.app, 'DELETE', `/api/wishlist/${later.id}`, { token: buyer })).status, 204)
    assert.equal((await call(goods.app, 'DELETE', `/api/wishlist/${later.id}`, { token: buyer })).status, 204)
    const after = await call(goods.app, 'GET', '/api/wishlist', { token: buyer })
    assert.deepEqual(
      (after.body.items as { goods: { id: string } }[]).map((item) => item.goods.id),
      [sale.id],
    )
    assert.equal((await call(goods.app, 'GET', '/api/wishlist')).status, 401)
  })

  test('reservations need the service credential and answer refusals with stable codes', async () => {
    const sale = await createSale({ stock: 2, limit: 5 })
    const body = { reservationId: randomUUID(), goodsId: sale.id, userId: 'someone', quantity: 1 }
    const anonymous = await call(goods.app, 'POST', '/internal/reservations', { body })
    assert.equal(anonymous.status, 401)
    assert.equal(anonymous.body.code, 'SERVICE_CREDENTIAL_REQUIRED')
    const userToken = await call(goods.app, 'POST', '/internal/reservations', { token: buyer, body })
    assert.equal(userToken.status, 401)

    const upcoming = await createSale({ stock: 2, opensIn: 600_000 })
    const closed = await createSale({ stock: 2, opensIn: -7_200_000, lastsMs: 3_600_000 })
    const expect = async (
      answer: Promise<{ status: number; body: { code?: string } }>,
      status: number,
      code: string,
    ) => {
      const { status: got, body: problem } = await answer
      assert.deepEqual([got, problem.code], [status, code])
    }
    await expect(reserve('no-such-goods', 'someone'), 404, 'GOODS_NOT_FOUND')
    await expect(reserve(upcoming.id, 'someone'), 422, 'SALE_NOT_OPEN')
    await expect(reserve(closed.id, 'someone'), 422, 'SALE_CLOSED')
    await expect(reserve(sale.id, 'someone', 3), 409, 'INSUFFICIENT_STOCK')
    await expect(reserve(sale.id, 'someone', 6), 422, 'PURCHASE_LIMIT_EXCEEDED')
    assert.equal((await reserve(sale.id, 'someone', 2)).status, 201)
    await expect(reserve(sale.id, 'someone-else'), 409, 'SOLD_OUT')
    await expect(reserve(sale.id, 'someone', 0), 400, 'VALIDATION_FAILED')
    const malformed = await call(goods.app, 'POST', '/internal/reservations', {
      internal: true,
      body: { goodsId: sale.id },
    })
    assert.equal(malformed.status, 400)
  })

  test('reserve, retry, confirm and release over HTTP: the stock goes back exactly once', async () => {
    const sale = await createSale({ stock: 5 })
    const id = randomUUID()
    const first = await reserve(sale.id, 'http-buyer', 2, id)
    const retried = await reserve(sale.id, 'http-buyer', 2, id)
    assert.equal(first.status, 201)
    assert.deepEqual(retried, first)
    assert.equal(first.body.state, 'RESERVED')
    const conflict = await reserve(sale.id, 'http-buyer', 1, id)
    assert.deepEqual([conflict.status, conflict.body.code], [409, 'RESERVATION_CONFLICT'])

    const confirmed = await call(goods.app, 'POST', `/internal/reservations/${id}/confirm`, { internal: true })
    assert.deepEqual(confirmed.body, { reservationId: id, state: 'CONFIRMED' })
    const record = await call(goods.app, 'GET', `/internal/reservations/${id}`, { internal: true })
    assert.equal(record.body.state, 'CONFIRMED')
    assert.equal((await call(goods.app, 'GET', `/api/goods/${sale.id}/stock`)).body.stockAvailable, 3)

    const releases = await Promise.all(
      Array.from({ length: 5 }, () =>
        call(goods.app, 'POST', `/internal/reservations/${id}/release`, {
          internal: true,
          body: { reason: 'order-cancelled' },
        }),
      ),
    )
    assert.deepEqual(countBy(releases.map((release) => `${release.status}:${release.body.released}`)), {
      '200:true': 1,
      '200:false': 4,
    })
    assert.equal((await call(goods.app, 'GET', `/api/goods/${sale.id}/stock`)).body.stockAvailable, 5)
    const late = await call(goods.app, 'POST', `/internal/reservations/${id}/confirm`, { internal: true })
    assert.deepEqual([late.status, late.body.code], [409, 'RESERVATION_RELEASED'])
    const unknown = await call(goods.app, 'POST', '/internal/reservations/nobody/release', { internal: true })
    assert.deepEqual([unknown.status, unknown.body.code], [404, 'RESERVATION_NOT_FOUND'])

    // The write-behind brings MySQL to the same count, each change once.
    await eventually(async () => ((await ledgerRowsOf(database.sequelize, sale.id)) === 2 ? true : undefined))
    assert.equal(await onHandOf(database.sequelize, sale.id), 5)
  })

  test('never holds stock for a reserve that arrives after its own release (the release came first)', async () => {
    const sale = await createSale({ stock: 2, limit: 1 })
    // A shard keeps a reservation id to one goods: other goods of the same shard refuse it.
    const other = await createSaleInShard(sale.id, true, { stock: 2 })
    const late = randomUUID()
    const release = (id: string, body: Record<string, unknown> | undefined) =>
      call(goods.app, 'POST', `/internal/reservations/${id}/release`, { internal: true, body })
    const stockOf = async (goodsId: string) =>
      (await call(goods.app, 'GET', `/api/goods/${goodsId}/stock`)).body.stockAvailable

    // order-service gave up on a reserve call that timed out and released its id; the reserve
    // itself reaches goods-service only afterwards.
    const released = await release(late, { goodsId: sale.id, reason: 'order-failed' })
    const reserved = await reserve(sale.id, 'timed-out-buyer', 1, late)
    assert.deepEqual([reserved.status, reserved.body.code], [409, 'RESERVATION_RELEASED'])
    assert.deepEqual(
      [released.status, released.body],
      [200, { reservationId: late, state: 'RELEASED', released: false }],
    )
    assert.equal(await stockOf(sale.id), 2)
    // The buyer's limit is untouched: another order of theirs still gets its unit.
    assert.equal((await reserve(sale.id, 'timed-out-buyer')).status, 201)

    // The marker is kept for the retention period, beside the goods' own keys.
    const marker = goods.service.live.store.keys.reservation(sale.id, late)
    const ttl = await redis.pttl(marker)
    assert.ok(ttl > 0 && ttl <= goods.settings.RESERVATION_RETENTION_MS, `marker ttl ${ttl}`)
    // Whatever comes next for that id changes nothing: retries, confirm, the id at other goods.
    assert.deepEqual((await release(late, { goodsId: sale.id })).body.released, false)
    assert.deepEqual((await release(late, undefined)).body.state, 'RELEASED')
    const confirmed = await call(goods.app, 'POST', `/internal/reservations/${late}/confirm`, { internal: true })
    assert.deepEqual([confirmed.status, confirmed.body.code], [409, 'RESERVATION_RELEASED'])
    const elsewhere = await reserve(other.id, 'timed-out-buyer', 1, late)
    assert.deepEqual([elsewhere.status, elsewhere.body.code], [409, 'RESERVATION_CONFLICT'])
    assert.equal(await stockOf(other.id), 2)
    assert.equal(await stockOf(sale.id), 1)

    // Without the goods id an unknown id cannot be marked: it stays not found.
    const unmarked = await release(randomUUID(), { reason: 'order-failed' })
    assert.deepEqual([unmarked.status, unmarked.body.code], [404, 'RESERVATION_NOT_FOUND'])
  })

  test('releases and confirms a known reservation with or without its goods id, and refuses the wrong goods', async () => {
    const sale = await createSale({ stock: 3 })
    // Goods of another shard, which has never seen the ids: the wrong goods is still refused.
    const other = await createSaleInShard(sale.id, false, { stock: 3 })
    const [paid, cancelled] = [randomUUID(), randomUUID()]
    assert.equal((await reserve(sale.id, 'known-buyer', 1, paid)).status, 201)
    assert.equal((await reserve(sale.id, 'known-buyer', 1, cancelled)).status, 201)

    const wrongGoods = await call(goods.app, 'POST', `/internal/reservations/${cancelled}/release`, {
      internal: true,
      body: { goodsId: other.id },
    })
    assert.deepEqual([wrongGoods.status, wrongGoods.body.code], [409, 'RESERVATION_CONFLICT'])
    const wrongConfirm = await call(goods.app, 'POST', `/internal/reservations/${paid}/confirm`, {
      internal: true,
      body: { goodsId: other.id },
    })
    assert.deepEqual([wrongConfirm.status, wrongConfirm.body.code], [409, 'RESERVATION_CONFLICT'])
    assert.equal((await call(goods.app, 'GET', `/api/goods/${sale.id}/stock`)).body.stockAvailable, 1)

    const confirmed = await call(goods.app, 'POST', `/internal/reservations/${paid}/confirm`, {
      internal: true,
      body: { goodsId: sale.id },
    })
    assert.deepEqual(confirmed.body, { reservationId: paid, state: 'CONFIRMED' })
    const byGoods = await call(goods.app, 'POST', `/internal/reservations/${cancelled}/release`, {
      internal: true,
      body: { goodsId: sale.id, reason: 'order-cancelled' },
    })
    assert.deepEqual(byGoods.body, { reservationId: cancelled, state: 'RELEASED', released: true })
    const byIdAlone = await call(goods.app, 'POST', `/internal/reservations/${paid}/release`, {
      internal: true,
      body: { reason: 'order-returned' },
    })
    assert.deepEqual(byIdAlone.body, { reservationId: paid, state: 'RELEASED', released: true })
    assert.equal((await call(goods.app, 'GET', `/api/goods/${sale.id}/stock`)).body.stockAvailable, 3)
    assert.equal((await call(goods.app, 'GET', `/api/goods/${other.id}/stock`)).body.stockAvailable, 3)
    const badGoods = await call(goods.app, 'POST', `/internal/reservations/${paid}/release`, {
      internal: true,
      body: { goodsId: 'not a goods id' },
    })
    assert.deepEqual([badGoods.status, badGoods.body.code], [400, 'VALIDATION_FAILED'])
  })

  test('loads stock missing from Redis from MySQL exactly once, however many requests find it missing', async () => {
    const sale = await createSale({ stock: 40 })
    assert.equal((await reserve(sale.id, 'before-the-loss', 4)).status, 201)
    // The stock and terms vanish from Redis (say, a flushed cache and no warm-up yet) while the
    // reservation's ledger entry may still be on its way to MySQL: the load must wait for it.
    const keys = goods.service.live.store.keys
    await redis.del(keys.available(sale.id), keys.sale(sale.id))

    // A second instance of the service races the first one for the load.
    const secondRedis = connectRedis('goods-test-second')
    const second = await startTestGoods({
      database,
      redis: secondRedis,
      prefix,
      issuer,
      settings: { LEDGER_WORKER_ENABLED: 'false' },
    })
    try {
      const coldLoads = async (instance: TestGoods) => {
        const metric = await instance.metrics.getSingleMetric('stock_cold_loads_total')?.get()
        return metric?.values[0]?.value ?? 0
      }
      const before = (await coldLoads(goods)) + (await coldLoads(second))
      const answers = await Promise.all(
        Array.from({ length: 120 }, (_, index) =>
          call(index % 2 === 0 ? goods.app : second.app, 'POST', '/internal/reservations', {
            internal: true,
            body: { reservationId: randomUUID(), goodsId: sale.id, userId: `cold-${index}`, quantity: 1 },
          }),
        ),
      )
      assert.deepEqual(countBy(answers.map((answer) => answer.body.code ?? answer.status)), { 201: 36, SOLD_OUT: 84 })
      assert.equal((await coldLoads(goods)) + (await coldLoads(second)) - before, 1)
      assert.equal((await call(goods.app, 'GET', `/api/goods/${sale.id}/stock`)).body.stockAvailable, 0)
      await eventually(async () => ((await onHandOf(database.sequelize, sale.id)) === 0 ? true : undefined))
    } finally {
      await second.stop()
      secondRedis.disconnect()
    }
  })

  test('the sweeper gives back the expired reservations of every shard, not only of one', async () => {
    await withShortHold('goods-test-sweep-shards', async (shortHold) => {
      // One goods in each shard of the namespace.
      const keys = goods.service.live.store.keys
      const goodsOfShard = new Map<number, string>()
      while (goodsOfShard.size < keys.shards.length) {
        const sale = await createSale({ stock: 2 })
        if (!goodsOfShard.has(keys.shardOf(sale.id).index)) goodsOfShard.set(keys.shardOf(sale.id).index, sale.id)
      }
      const held = await Promise.all(
        [...goodsOfShard.values()].map(async (goodsId) => {
          const reservationId = randomUUID()
          const answer = await call(shortHold.app, 'POST', '/internal/reservations', {
            internal: true,
            body: { reservationId, goodsId, userId: 'slow-payer', quantity: 1 },
          })
          assert.equal(answer.status, 201)
          return { goodsId, reservationId }
        }),
      )
      await eventually(async () => {
        for (const { reservationId } of held) {
          const record = await call(goods.app, 'GET', `/internal/reservations/${reservationId}`, { internal: true })
          if (record.body.state !== 'RELEASED') return undefined
          assert.equal(record.body.releaseReason, 'expired')
        }
        return true
      }, 10_000)
      for (const { goodsId } of held) {
        assert.equal((await call(goods.app, 'GET', `/api/goods/${goodsId}/stock`)).body.stockAvailable, 2)
      }
    })
  })

  test('an unconfirmed reservation expires after the configured hold and its stock returns', async () => {
    await withShortHold('goods-test-short-hold', async (shortHold) => {
      const sale = await createSale({ stock: 3 })
      const id = randomUUID()
      const held = await call(shortHold.app, 'POST', '/internal/reservations', {
        internal: true,
        body: { reservationId: id, goodsId: sale.id, userId: 'slow-payer', quantity: 2 },
      })
      assert.equal(held.status, 201)
      assert.equal((await call(goods.app, 'GET', `/api/goods/${sale.id}/stock`)).body.stockAvailable, 1)
      await eventually(async () => {
        const stock = await call(goods.app, 'GET', `/api/goods/${sale.id}/stock`)
        return stock.body.stockAvailable === 3 ? true : undefined
      }, 5_000)
      const late = await call(goods.app, 'POST', `/internal/reservations/${id}/confirm`, { internal: true })
      assert.deepEqual([late.status, late.body.code], [409, 'RESERVATION_EXPIRED'])
      const record = await call(goods.app, 'GET', `/internal/reservations/${id}`, { internal: true })
      assert.deepEqual([record.body.state, record.body.releaseReason], ['RELEASED', 'expired'])
    })
  })

  test('exposes the write-behind lag and reservation outcomes as metrics', async () => {
    const text = await (await goods.app.request('/metrics')).text()
    assert.match(text, /^stock_ledger_lag_entries\{service="goods-test"\} \d+$/m)
    assert.match(text, /^stock_ledger_oldest_unapplied_seconds\{service="goods-test"\} [\d.e-]+$/m)
    assert.match(text, /^stock_reservations_total\{outcome="RESERVED",service="goods-test"\} \d+$/m)
    assert.match(text, /^stock_reservations_total\{outcome="SOLD_OUT",service="goods-test"\} \d+$/m)
  })
})
