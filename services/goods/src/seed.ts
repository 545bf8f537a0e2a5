import type { Logger } from '@timedeal/platform'
import type { Catalog } from './adapters/catalog.ts'
import { type Goods, stockSourceOf } from './domain/goods.ts'
import type { LiveStock } from './flows/live-stock.ts'

const MINUTE = 60_000

interface DemoGoods {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly price: number
  readonly initialStock: number
  /** Units left when first written: a sold-out or closed sale starts with its stock gone. */
  readonly onHand: number
  readonly startsIn: number
  readonly endsIn: number
  readonly purchaseLimit: number | null
}

/** Fixed ids, so running the seed again refreshes the same goods instead of adding more. */
const demoGoods: readonly DemoGoods[] = [
  {
    id: '01900000-0000-7000-8000-0000000de001',
    name: 'Noise-cancelling headphones (time deal)',
    description: 'On sale right now: 100 units, at most 2 per buyer.',
    price: 129_000,
    initialStock: 100,
    onHand: 100,
    startsIn: -5 * MINUTE,
    endsIn: 120 * MINUTE,
    purchaseLimit: 2,
  },
  {
    id: '01900000-0000-7000-8000-0000000de002',
    name: 'Mechanical keyboard (opens shortly)',
    description: 'The sale opens a few minutes after start-up: 50 units, one per buyer.',
    price: 89_000,
    initialStock: 50,
    onHand: 50,
    startsIn: 3 * MINUTE,
    endsIn: 90 * MINUTE,
    purchaseLimit: 1,
  },
  {
    id: '01900000-0000-7000-8000-0000000de003',
    name: 'Limited sneakers (sold out)',
    description: 'Every unit is gone while the sale is still open.',
    price: 159_000,
    initialStock: 30,
    onHand: 0,
    startsIn: -30 * MINUTE,
    endsIn: 60 * MINUTE,
    purchaseLimit: 1,
  },
  {
    id: '01900000-0000-7000-8000-0000000de004',
    name: 'Espresso machine (sale closed)',
    description: 'The sale ended an hour ago.',
    price: 349_000,
    initialStock: 20,
    onHand: 4,
    startsIn: -180 * MINUTE,
    endsIn: -60 * MINUTE,
    purchaseLimit: null,
  },
]

/**
 * Writes the demo goods of `make dev`, owned by the demo seller, with sale windows relative to
 * now: one open, one opening in a few minutes, one sold out, one closed. Running it again moves
 * the windows and leaves the stock as it is; live stock in Redis gets the new windows too.
 */
export async function seedDemoGoods(
  catalog: Catalog,
  live: LiveStock,
  sellerId: string,
  logger: Logger,
): Promise<Goods[]> {
  const now = await live.store.now()
  const seeded: Goods[] = []
  for (const demo of demoGoods) {
    const goods = await catalog.upsert({
      id: demo.id,
      sellerId,
      name: demo.name,
      description: demo.description,
      price: demo.price,
      initialStock: demo.initialStock,
      stockOnHand: demo.onHand,
      saleStartsAt: new Date(now + demo.startsIn),
      saleEndsAt: new Date(now + demo.endsIn),
      purchaseLimit: demo.purchaseLimit,
      version: 1,
      createdAt: new Date(now),
      updatedAt: new Date(now),
    })
    // Loads the stock if it is missing; either way the live terms take the new window.
    await live.ensureLoaded(goods.id)
    const outcome = await live.store.configure(goods.id, stockSourceOf(goods))
    if (outcome.status !== 'OK') {
      // Redis holds newer terms than this database (say, the database was recreated): say so.
      logger.warn({ goodsId: goods.id, outcome: outcome.status }, 'live stock kept its own sale terms')
    }
    seeded.push(goods)
  }
  return seeded
}
