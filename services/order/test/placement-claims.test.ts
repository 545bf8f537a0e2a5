/**
 * The claim step of placement, grouped, against real MariaDB: claims that arrive together share
 * one statement, and each still gets the outcome it would have had alone.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createLogger } from '@timedeal/platform'
import { createTestDatabase, type TestDatabase, uniqueName } from '@timedeal/platform/testing'
import { Counter, Registry } from 'prom-client'
import { migrations } from '../src/adapters/migrations.ts'
import { OrderStore } from '../src/adapters/order-store.ts'
import { type ClaimPlacement, createPlacementClaims } from '../src/adapters/placement-claims.ts'
import { PlacementStore } from '../src/adapters/placement-store.ts'
import { newOrderId } from '../src/domain/ids.ts'
import { placeOrder } from '../src/domain/order-state.ts'
import { newClaim, type PlacementClaim } from '../src/domain/placement.ts'

const LEASE_MS = 30_000

describe('grouped claims of Idempotency-Keys (real MariaDB)', () => {
  let database: TestDatabase
  let store: OrderStore
  let placements: PlacementStore
  let statements: Counter<'kind'>
  let claim: ClaimPlacement

  before(async () => {
    database = await createTestDatabase('placement_claims', migrations)
    store = new OrderStore(database.sequelize)
    placements = new PlacementStore(database.sequelize)
    statements = new Counter({ name: 'claims', help: 'claims', labelNames: ['kind'], registers: [new Registry()] })
    claim = createPlacementClaims({
      placements,
      maxBatch: 100,
      maxInFlight: 1,
      // Long enough that every claim started together lands in the first group.
      lingerMs: 50,
      statements,
      logger: createLogger('placement-claims-test', 'warn'),
    })
  })

  after(async () => {
    await database?.drop()
  })

  const claimFor = (buyerId = uniqueName('buyer'), idempotencyKey = uniqueName('key')) =>
    newClaim({ buyerId, idempotencyKey, goodsId: 'goods-1', quantity: 1 }, new Date(), LEASE_MS)

  const count = async (kind: string) =>
    (await statements.get()).values.find(({ labels }) => labels.kind === kind)?.value ?? 0

  /** The order of `claim`'s key, written as its holder would. */
  async function placeOrderOf(holder: PlacementClaim) {
    const now = new Date()
    const { order } = placeOrder({
      id: newOrderId(now.getTime()),
      buyerId: holder.buyerId,
      sellerId: 'seller-1',
      goodsId: holder.goodsId,
      reservationId: holder.reservationId,
      quantity: holder.quantity,
      unitPrice: 1_000,
      at: now,
      payBy: new Date(now.getTime() + 570_000),
    })
    await database.sequelize.transaction((transaction) => store.insert(order, holder.idempotencyKey, transaction))
  }

  test('claims arriving together share one statement, each holding its own key', async () => {
    const claims = Array.from({ length: 20 }, () => claimFor())
    const [batchesBefore, singlesBefore] = [await count('batch'), await count('single')]

    const outcomes = await Promise.all(claims.map((each) => claim(each)))

    assert.deepEqual(
      outcomes,
      claims.map(() => 'claimed'),
    )
    assert.equal((await count('batch')) - batchesBefore, 1, 'one statement for the group')
    assert.equal((await count('single')) - singlesBefore, 0, 'none claimed alone')
    for (const each of claims) {
      const held = await placements.find(each.buyerId, each.idempotencyKey)
      assert.equal(held?.token, each.token, 'the key is held by its own claim')
      assert.equal(held?.reservationId, each.reservationId)
      assert.equal(held?.until.getTime(), each.until.getTime(), 'the lease keeps its milliseconds')
    }
  })

  test('in a group, a placed key answers placed, a held key taken, and the others are claimed', async () => {
    const fresh = Array.from({ length: 5 }, () => claimFor())
    const placed = claimFor()
    await placeOrderOf(placed)
    const holder = claimFor()
    assert.equal(await placements.claim(holder), 'claimed')
    const twinOfHolder = claimFor(holder.buyerId, holder.idempotencyKey)

    const outcomes = await Promise.all([...fresh, placed, twinOfHolder].map((each) => claim(each)))

    assert.deepEqual(outcomes, [...fresh.map(() => 'claimed'), 'placed', 'taken'])
    assert.equal((await placements.find(holder.buyerId, holder.idempotencyKey))?.token, holder.token)
    assert.equal(await placements.find(placed.buyerId, placed.idempotencyKey), undefined, 'no claim for a placed key')
  })

  test('twins in one group: one holds the key, the other finds it taken', async () => {
    const first = claimFor()
    const twin = claimFor(first.buyerId, first.idempotencyKey)
    const others = Array.from({ length: 3 }, () => claimFor())

    const outcomes = await Promise.all([first, twin, ...others].map((each) => claim(each)))

    assert.deepEqual(
      outcomes.slice(2),
      others.map(() => 'claimed'),
    )
    assert.deepEqual(outcomes.slice(0, 2).sort(), ['claimed', 'taken'])
    const holder = outcomes[0] === 'claimed' ? first : twin
    assert.equal((await placements.find(first.buyerId, first.idempotencyKey))?.token, holder.token)
  })

  test('a buyer id too long for its column is never cut to fit someone else’s key', async () => {
    const buyerId = 'b'.repeat(64)
    const holder = claimFor(buyerId)
    assert.equal(await placements.claim(holder), 'claimed')
    const longer = claimFor(`${buyerId}x`, holder.idempotencyKey)

    assert.deepEqual(await placements.claimTogether([longer, claimFor()]), [false, true])
    assert.equal((await placements.find(buyerId, holder.idempotencyKey))?.token, holder.token)
  })

  test('groups racing over the same keys leave each key exactly one holder', async () => {
    // Several rounds, so the race goes more than one way.
    for (let round = 0; round < 5; round += 1) {
      const keys = Array.from({ length: 10 }, () => claimFor())
      const rivals = keys.map((each) => claimFor(each.buyerId, each.idempotencyKey))
      const outcomes = await Promise.all([...keys, ...rivals].map((each) => claim(each)))
      for (const [i, each] of keys.entries()) {
        const pair = [outcomes[i], outcomes[i + keys.length]].sort()
        assert.deepEqual(pair, ['claimed', 'taken'], `round ${round}, key ${i}`)
        const held = await placements.find(each.buyerId, each.idempotencyKey)
        const winner = outcomes[i] === 'claimed' ? each : rivals[i]
        assert.equal(held?.token, winner?.token)
      }
    }
  })
})
