import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { GoodsClient, GoodsSummary } from '../src/adapters/goods-client.ts'
import { rememberingGoods } from '../src/adapters/goods-memory.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A goods-service stand-in that answers lookups after a moment and counts them. */
function countingClient(price: () => number) {
  const asked: string[] = []
  const client: Pick<GoodsClient, 'goods' | 'reserve'> = {
    async goods(goodsId) {
      asked.push(goodsId)
      await sleep(20)
      return goodsId === 'missing' ? undefined : ({ id: goodsId, sellerId: 'seller-1', price: price() } as GoodsSummary)
    },
    reserve: async () => ({ state: 'RESERVED', expiresAt: new Date() }),
  }
  return { client, asked }
}

describe('the price and seller remembered between placements', () => {
  test('a burst of lookups of one goods asks goods-service once', async () => {
    const { client, asked } = countingClient(() => 1_000)
    const goods = rememberingGoods(client, { ttlMs: 10_000, maxGoods: 100 })
    const answers = await Promise.all(Array.from({ length: 50 }, () => goods.goods('goods-1')))
    assert.deepEqual(new Set(answers.map((answer) => answer?.price)), new Set([1_000]))
    assert.deepEqual(asked, ['goods-1'])
    await goods.goods('goods-1')
    assert.equal(asked.length, 1)
  })

  test('a price change is seen once the remembered price is older than its bound', async () => {
    let price = 1_000
    const { client } = countingClient(() => price)
    const goods = rememberingGoods(client, { ttlMs: 100, maxGoods: 100 })
    assert.equal((await goods.goods('goods-1'))?.price, 1_000)
    price = 2_000
    await sleep(150)
    assert.equal((await goods.goods('goods-1'))?.price, 2_000)
  })

  test('a goods goods-service does not know is asked again next time', async () => {
    const { client, asked } = countingClient(() => 1_000)
    const goods = rememberingGoods(client, { ttlMs: 10_000, maxGoods: 100 })
    assert.equal(await goods.goods('missing'), undefined)
    assert.equal(await goods.goods('missing'), undefined)
    assert.equal(asked.length, 2)
  })

  test('keeps at most its bound of goods', async () => {
    const { client, asked } = countingClient(() => 1_000)
    const goods = rememberingGoods(client, { ttlMs: 10_000, maxGoods: 2 })
    for (const id of ['a', 'b', 'c', 'a']) await goods.goods(id)
    assert.deepEqual(asked, ['a', 'b', 'c', 'a'])
  })
})
