/**
 * The write step of placement by group commit, against real MariaDB: placements that reach it
 * together share transactions, and one that is not its key's order gets its own outcome while
 * the others of its batch are placed.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TOPIC_ORDERS } from '@timedeal/contracts'
import { appendToOutbox, createLogger } from '@timedeal/platform'
import { createTestDatabase, type TestDatabase, uniqueName } from '@timedeal/platform/testing'
import { Counter, Registry } from 'prom-client'
import { migrations } from '../src/adapters/migrations.ts'
import { DuplicateOrderError, OrderStore } from '../src/adapters/order-store.ts'
import { PlacementStore } from '../src/adapters/placement-store.ts'
import {
  createPlacementWriter,
  LostClaimError,
  type PlacementWrite,
  type WritePlacement,
} from '../src/adapters/placement-writer.ts'
import { newOrderId } from '../src/domain/ids.ts'
import { placeOrder } from '../src/domain/order-state.ts'
import { newClaim } from '../src/domain/placement.ts'
import { toCloudEvents } from '../src/flows/orders.ts'
import { rows } from './support.ts'

const LEASE_MS = 30_000

describe('placement writes by group commit (real MariaDB)', () => {
  let database: TestDatabase
  let store: OrderStore
  let placements: PlacementStore
  let commits: Counter<'kind'>
  let write: WritePlacement

  before(async () => {
    database = await createTestDatabase('placement_writer', migrations)
    store = new OrderStore(database.sequelize)
    placements = new PlacementStore(database.sequelize)
    commits = new Counter({ name: 'commits', help: 'commits', labelNames: ['kind'], registers: [new Registry()] })
    write = createPlacementWriter({
      sequelize: database.sequelize,
      store,
      placements,
      writeEvents: (transaction, writes) =>
        appendToOutbox(
          database.sequelize,
          transaction,
          TOPIC_ORDERS,
          writes.flatMap(({ events }) => toCloudEvents(events)),
        ),
      // Long enough that every placement started together lands in the first batch.
      lingerMs: 50,
      maxBatch: 100,
      maxInFlight: 1,
      transactions: commits,
      logger: createLogger('placement-writer-test', 'warn'),
    })
  })

  after(async () => {
    await database?.drop()
  })

  /** A placement whose key is claimed, ready to be written. */
  async function claimedPlacement(buyerId = uniqueName('buyer')): Promise<PlacementWrite> {
    const now = new Date()
    const idempotencyKey = uniqueName('key')
    const claim = newClaim({ buyerId, idempotencyKey, goodsId: 'goods-1', quantity: 1 }, now, LEASE_MS)
    assert.equal(await placements.claim(claim), 'claimed')
    const { order, events } = placeOrder({
      id: newOrderId(now.getTime()),
      buyerId,
      sellerId: 'seller-1',
      goodsId: 'goods-1',
      reservationId: claim.reservationId,
      quantity: 1,
      unitPrice: 1_000,
      at: now,
      payBy: new Date(now.getTime() + 570_000),
    })
    return { order, idempotencyKey, claim, events }
  }

  const commitCount = async () => (await commits.get()).values.reduce((sum, { value }) => sum + value, 0)

  async function written(ids: readonly string[]) {
    const orders = await rows<{ id: string }>(database.sequelize, 'SELECT id FROM orders WHERE id IN (:ids)', {
      ids: [...ids],
    })
    const events = await rows<{ message_key: string }>(
      database.sequelize,
      'SELECT message_key FROM outbox WHERE message_key IN (:ids)',
      { ids: [...ids] },
    )
    return { orders: orders.map(({ id }) => id).sort(), events: events.map(({ message_key }) => message_key).sort() }
  }

  test('concurrent placements are written in fewer transactions than placements, each its own order', async () => {
    const writes = await Promise.all(Array.from({ length: 20 }, () => claimedPlacement()))
    const before = await commitCount()

    await Promise.all(writes.map((placement) => write(placement)))

    const ids = writes.map(({ order }) => order.id).sort()
    assert.ok((await commitCount()) - before < writes.length, 'some placements shared a transaction')
    assert.deepEqual(await written(ids), { orders: ids, events: ids })
    for (const { claim } of writes) {
      assert.equal(await placements.find(claim.buyerId, claim.idempotencyKey), undefined, 'the claim is settled')
    }
  })

  test('a placement whose key was taken over inside a batch is refused while the others are placed', async () => {
    const writes = await Promise.all(Array.from({ length: 10 }, () => claimedPlacement()))
    const lost = writes[3]
    assert.ok(lost)
    // Its lease ran out and a twin took the key over before the order was written.
    const twin = newClaim(lost.claim, new Date(), LEASE_MS)
    assert.ok(await placements.takeOver(lost.claim, twin))

    const outcomes = await Promise.allSettled(writes.map((placement) => write(placement)))

    outcomes.forEach((outcome, index) => {
      if (index === 3) {
        assert.equal(outcome.status, 'rejected')
        assert.ok(outcome.status === 'rejected' && outcome.reason instanceof LostClaimError)
      } else assert.equal(outcome.status, 'fulfilled', `placement ${index} is written`)
    })
    const placed = writes.filter((placement) => placement !== lost).map(({ order }) => order.id)
    assert.deepEqual(await written(writes.map(({ order }) => order.id)), {
      orders: placed.sort(),
      events: placed.sort(),
    })
    assert.equal((await placements.find(twin.buyerId, twin.idempotencyKey))?.token, twin.token, 'the twin holds it')
  })

  test('a placement whose key already has an order is refused while the others of its batch are placed', async () => {
    const writes = await Promise.all(Array.from({ length: 6 }, () => claimedPlacement()))
    const duplicate = writes[2]
    assert.ok(duplicate)
    const earlier = placeOrder({
      ...duplicate.order,
      id: newOrderId(Date.now() - 1),
      at: new Date(),
      payBy: new Date(),
    })
    await database.sequelize.transaction((transaction) =>
      store.insert(earlier.order, duplicate.idempotencyKey, transaction),
    )

    const outcomes = await Promise.allSettled(writes.map((placement) => write(placement)))

    outcomes.forEach((outcome, index) => {
      if (index === 2) assert.ok(outcome.status === 'rejected' && outcome.reason instanceof DuplicateOrderError)
      else assert.equal(outcome.status, 'fulfilled', `placement ${index} is written`)
    })
    const placed = writes.filter((placement) => placement !== duplicate).map(({ order }) => order.id)
    assert.deepEqual((await written(writes.map(({ order }) => order.id))).orders, placed.sort())
  })
})
