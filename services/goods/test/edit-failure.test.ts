import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { connectTestMysql, eventually, type TestIssuer } from '@timedeal/platform/testing'
import { QueryTypes } from 'sequelize'
import { createCatalog } from '../src/adapters/catalog.ts'
import {
  call,
  type GoodsUnderTest,
  onHandOf,
  saleDraft,
  startGoodsUnderTest,
  type TestDatabase,
  type TestGoods,
} from './support.ts'

const REFUSED = 'refused by the database'

describe('a seller edit that fails in MySQL (real MariaDB and Redis)', () => {
  let fixture: GoodsUnderTest
  let database: TestDatabase
  let issuer: TestIssuer
  let goods: TestGoods
  let seller: string

  before(async () => {
    fixture = await startGoodsUnderTest({
      // The database refuses any edit with this description, as a failing constraint would.
      prepare: (database) =>
        database.sequelize.query(`
      CREATE TRIGGER goods_refuse_marked_edit BEFORE UPDATE ON goods FOR EACH ROW
      BEGIN
        IF NEW.description = '${REFUSED}' THEN
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this edit is refused';
        END IF;
      END`),
    })
    ;({ database, issuer, goods } = fixture)
    seller = await issuer.sign({ sub: `seller-${randomUUID()}`, role: 'SELLER' })
  })

  after(() => fixture?.stop())

  const store = () => goods.service.live.store

  /** MySQL's row and Redis's live stock tell the same story once the write-behind has caught up. */
  async function assertAgree(goodsId: string, expected: { initialStock: number; available: number }) {
    await eventually(async () => ((await goods.service.writer.lag()).entries === 0 ? true : undefined), 10_000)
    const row = await goods.service.catalog.find(goodsId)
    const live = await store().read(goodsId)
    assert.ok(row && live)
    assert.deepEqual(live.terms, {
      startsAt: row.saleStartsAt.getTime(),
      endsAt: row.saleEndsAt.getTime(),
      purchaseLimit: row.purchaseLimit,
      initialStock: row.initialStock,
      version: row.version,
    })
    assert.equal(row.initialStock, expected.initialStock)
    assert.equal(live.available, expected.available)
    assert.equal(await onHandOf(database.sequelize, goodsId), live.available)
  }

  test('an edit the database refuses leaves the live window, limit and stock as they were', async () => {
    const now = await store().now()
    const created = await call(goods.app, 'POST', '/api/goods', {
      token: seller,
      body: saleDraft(now, { stock: 10, opensIn: 3_600_000, limit: 2 }),
    })
    assert.equal(created.status, 201)
    const id = String(created.body.id)

    const refused = await call(goods.app, 'PATCH', `/api/goods/${id}`, {
      token: seller,
      body: {
        description: REFUSED,
        initialStock: 25,
        purchaseLimit: 5,
        saleStartsAt: new Date(now - 60_000).toISOString(),
        saleEndsAt: new Date(now + 60_000).toISOString(),
      },
    })
    assert.ok(refused.status >= 500, `the refused edit answered ${refused.status}`)
    // Buyers still see the sale as the catalog has it: not open yet.
    const reserve = await call(goods.app, 'POST', '/internal/reservations', {
      internal: true,
      body: { reservationId: randomUUID(), goodsId: id, userId: 'early-bird', quantity: 1 },
    })
    assert.deepEqual([reserve.status, reserve.body.code], [422, 'SALE_NOT_OPEN'])
    await assertAgree(id, { initialStock: 10, available: 10 })

    // The next edit goes through as usual.
    const accepted = await call(goods.app, 'PATCH', `/api/goods/${id}`, {
      token: seller,
      body: { initialStock: 12, purchaseLimit: 3 },
    })
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body))
    await assertAgree(id, { initialStock: 12, available: 12 })
  })

  test('sale terms live stock took reach MySQL even when the edit transaction is lost', async () => {
    const now = await store().now()
    const created = await call(goods.app, 'POST', '/api/goods', {
      token: seller,
      body: saleDraft(now, { stock: 10, opensIn: 3_600_000 }),
    })
    const id = String(created.body.id)
    // A client of one connection, so the connection the edit runs on is known.
    const single = connectTestMysql(database.name, 1)
    try {
      const [connection] = await single.query<{ id: number }>('SELECT CONNECTION_ID() AS id', {
        type: QueryTypes.SELECT,
      })
      const lost = createCatalog(single).edit(
        id,
        async (current) => ({ ...current, initialStock: 30, version: current.version + 1, updatedAt: new Date() }),
        async (next) => {
          assert.equal((await store().configure(id, termsOf(next))).status, 'OK')
          // The connection dies after live stock took the edit and before the commit.
          await database.sequelize.query(`KILL CONNECTION ${Number(connection?.id)}`)
        },
      )
      await assert.rejects(lost)
    } finally {
      await single.close()
    }
    await assertAgree(id, { initialStock: 30, available: 30 })
  })
})

function termsOf(goods: {
  saleStartsAt: Date
  saleEndsAt: Date
  purchaseLimit: number | null
  initialStock: number
  version: number
}) {
  return {
    startsAt: goods.saleStartsAt.getTime(),
    endsAt: goods.saleEndsAt.getTime(),
    purchaseLimit: goods.purchaseLimit,
    initialStock: goods.initialStock,
    version: goods.version,
  }
}
