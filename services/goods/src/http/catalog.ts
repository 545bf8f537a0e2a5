import {
  type AppEnv,
  authenticate,
  notFound,
  Problem,
  readJson,
  requireRole,
  type TokenVerifier,
  validate,
} from '@timedeal/platform'
import type { SaleState, StockStore } from '@timedeal/stock'
import { Hono } from 'hono'
import { z } from 'zod'
import type { Catalog, WindowPosition } from '../adapters/catalog.ts'
import {
  applyPatch,
  draftToGoods,
  type Goods,
  type GoodsView,
  goodsDraftSchema,
  goodsPatchSchema,
  goodsView,
  saleStateSchema,
  stockSourceOf,
} from '../domain/goods.ts'
import type { LiveStock } from '../flows/live-stock.ts'

export interface CatalogRoutesDeps {
  readonly catalog: Catalog
  readonly live: LiveStock
  readonly verifier: TokenVerifier
}

const pageQuery = z.object({
  state: saleStateSchema.optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
})

const windowOf: Record<SaleState, WindowPosition> = {
  UPCOMING: 'UPCOMING',
  OPEN: 'IN_WINDOW',
  SOLD_OUT: 'IN_WINDOW',
  CLOSED: 'CLOSED',
}

// A cursor is the last goods id a page showed, opaque to clients.
const encodeCursor = (id: string) => Buffer.from(id).toString('base64url')
function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  const id = Buffer.from(cursor, 'base64url').toString()
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(id))
    throw new Problem({ status: 400, code: 'INVALID_CURSOR', detail: 'the cursor is not one this API gave' })
  return id
}

export const goodsNotFound = (id: string) => notFound('GOODS_NOT_FOUND', `no goods with id ${id}`)

/** The goods id of a path; one that no goods could have is simply not found. */
function goodsIdParam(id: string): string {
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(id)) throw goodsNotFound(id)
  return id
}

/** The catalog: anyone browses it, sellers add goods and edit their own. */
export function catalogRoutes({ catalog, live, verifier }: CatalogRoutesDeps) {
  const store: StockStore = live.store

  const views = (goods: readonly Goods[]) =>
    Promise.all(goods.map(async (one) => goodsView(one, await live.snapshot(one))))

  /**
   * One page, newest first. The catalog narrows by window; the live stock decides OPEN versus
   * SOLD_OUT, so a page is filled from as many rows as it takes (within a bound).
   */
  async function page(query: z.infer<typeof pageQuery>, sellerId?: string) {
    const now = new Date(await store.now())
    const items: GoodsView[] = []
    let before = decodeCursor(query.cursor)
    let more = true
    for (let round = 0; round < 10 && more && items.length < query.limit; round += 1) {
      const rows = await catalog.page({
        ...(sellerId === undefined ? {} : { sellerId }),
        ...(query.state ? { window: windowOf[query.state] } : {}),
        now,
        ...(before === undefined ? {} : { before }),
        limit: query.limit,
      })
      more = rows.length === query.limit
      for (const [index, view] of (await views(rows)).entries()) {
        before = view.id
        if (!query.state || view.saleState === query.state) items.push(view)
        if (items.length === query.limit) {
          more ||= index < rows.length - 1
          break
        }
      }
    }
    return { items, nextCursor: more && before !== undefined ? encodeCursor(before) : null }
  }

  async function existing(id: string): Promise<Goods> {
    const goods = await catalog.find(goodsIdParam(id))
    if (!goods) throw goodsNotFound(id)
    return goods
  }

  return new Hono<AppEnv>()
    .get('/', async (c) => c.json(await page(validate(pageQuery, c.req.query(), 'query'))))
    .get('/mine', authenticate(verifier), requireRole('SELLER'), async (c) =>
      c.json(await page(validate(pageQuery, c.req.query(), 'query'), c.var.caller.id)),
    )
    .post('/', authenticate(verifier), requireRole('SELLER'), async (c) => {
      const draft = validate(goodsDraftSchema, await readJson(c.req.raw), 'goods')
      const goods = draftToGoods(draft, c.var.caller.id, new Date())
      await catalog.insert(goods)
      // A new goods has no ledger entries anywhere, so its stock loads without waiting for any.
      await live.store.loadIfAbsent(stockSourceOf(goods))
      return c.json(goodsView(goods, await live.snapshot(goods)), 201, { location: `/api/goods/${goods.id}` })
    })
    .get('/:id', async (c) => {
      const goods = await existing(c.req.param('id'))
      return c.json(goodsView(goods, await live.snapshot(goods)))
    })
    .get('/:id/stock', async (c) => {
      const goods = await existing(c.req.param('id'))
      const view = goodsView(goods, await live.snapshot(goods))
      return c.json({
        goodsId: view.id,
        stockAvailable: view.stockAvailable,
        initialStock: view.initialStock,
        saleState: view.saleState,
        saleStartsAt: view.saleStartsAt,
        saleEndsAt: view.saleEndsAt,
        purchaseLimit: view.purchaseLimit,
      })
    })
    .patch('/:id', authenticate(verifier), requireRole('SELLER'), async (c) => {
      const id = goodsIdParam(c.req.param('id'))
      const patch = validate(goodsPatchSchema, await readJson(c.req.raw), 'goods edit')
      const sellerId = c.var.caller.id
      // Loaded before the row lock is taken: a load may wait for the write-behind, which needs that lock.
      if (!(await live.ensureLoaded(id))) throw goodsNotFound(id)
      const edited = await catalog.edit(
        id,
        async (current) => {
          if (current.sellerId !== sellerId) {
            throw new Problem({
              status: 403,
              code: 'NOT_GOODS_OWNER',
              detail: 'only the seller who owns these goods may edit them',
            })
          }
          const next = applyPatch(current, patch, await store.now())
          if (next === 'WINDOW_OUT_OF_ORDER') {
            throw new Problem({
              status: 400,
              code: 'VALIDATION_FAILED',
              detail: 'invalid goods edit: saleEndsAt must be after saleStartsAt',
            })
          }
          if (next === 'SALE_IN_PROGRESS') throw saleInProgress()
          return { ...next, updatedAt: new Date() }
        },
        // Live stock takes the edit only once MySQL has accepted the row.
        (next) => configureLiveStock(live.store, next),
      )
      if (!edited) throw goodsNotFound(id)
      return c.json(goodsView(edited, await live.snapshot(edited)))
    })
}

const saleInProgress = () =>
  new Problem({ status: 422, code: 'SALE_IN_PROGRESS', detail: 'the stock cannot be changed while the sale is open' })

/** Carries an edit to the live stock, inside the catalog row's lock, after the row is written. */
async function configureLiveStock(store: StockStore, next: Goods): Promise<void> {
  const outcome = await store.configure(next.id, {
    startsAt: next.saleStartsAt.getTime(),
    endsAt: next.saleEndsAt.getTime(),
    purchaseLimit: next.purchaseLimit,
    initialStock: next.initialStock,
    version: next.version,
  })
  switch (outcome.status) {
    case 'OK':
      return
    case 'SALE_IN_PROGRESS':
      throw saleInProgress()
    case 'STOCK_BELOW_RESERVED':
      throw new Problem({
        status: 422,
        code: 'STOCK_BELOW_RESERVED',
        detail: `the stock cannot drop below what buyers already hold; at most ${outcome.available} fewer units`,
        extensions: { available: outcome.available },
      })
    case 'STALE':
      // Live stock holds this version or a newer one already, with other terms: an edit whose
      // transaction failed after live stock took it, on its way to MySQL through the ledger.
      throw new Problem({
        status: 409,
        code: 'EDIT_CONFLICT',
        detail: 'a newer edit of these goods was applied first; reload and retry',
      })
    case 'NOT_LOADED':
      throw new Problem({
        status: 503,
        code: 'STOCK_UNAVAILABLE',
        detail: 'the live stock went missing during the edit; try again',
      })
  }
}
