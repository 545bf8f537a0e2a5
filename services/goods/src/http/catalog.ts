import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  notFound,
  PARAMETER_PROBLEMS,
  Problem,
  problemResponses,
  ROLE_PROBLEMS,
  type Routes,
  requireRole,
  type TokenVerifier,
} from '@timedeal/platform'
import { SALE_STATES, type SaleState, type StockStore } from '@timedeal/stock'
import type { MiddlewareHandler } from 'hono'
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

/** What the API shows of a goods (see `goodsView`). */
export const goodsViewSchema = z.object({
  id: z.string(),
  sellerId: z.string(),
  name: z.string(),
  description: z.string(),
  price: z.number().int(),
  initialStock: z.number().int(),
  stockAvailable: z.number().int(),
  saleState: z.enum(SALE_STATES),
  saleStartsAt: z.string(),
  saleEndsAt: z.string(),
  purchaseLimit: z.number().int().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
})

const goodsPage = z.object({ items: z.array(goodsViewSchema), nextCursor: z.string().nullable() })

const stockView = goodsViewSchema
  .pick({ stockAvailable: true, initialStock: true, saleState: true, saleStartsAt: true, saleEndsAt: true })
  .extend({ goodsId: z.string(), purchaseLimit: z.number().int().nullable() })

/** Any string: an id no goods could have is simply not found (404), not a bad request. */
const goodsIdPath = z.object({ id: z.string() })

export const GOODS_NOT_FOUND = { 404: ['GOODS_NOT_FOUND'] } as const
/** A goods' stock not in Redis is loaded from MySQL first, which may have to wait for the write-behind. */
export const STOCK_LOAD_PROBLEMS = { 503: ['STOCK_UNAVAILABLE'] } as const
const PAGE_PROBLEMS = { 400: ['VALIDATION_FAILED', 'INVALID_CURSOR'] } as const
const SELLER_PROBLEMS = [AUTH_PROBLEMS, ROLE_PROBLEMS] as const

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

const listGoods = createRoute({
  method: 'get',
  path: '/',
  summary: 'Goods, newest first, in cursor pages; `state` filters by sale state',
  request: { query: pageQuery },
  responses: {
    200: jsonResponse(goodsPage, 'one page of goods with their live stock and sale state'),
    ...problemResponses(PARAMETER_PROBLEMS, PAGE_PROBLEMS, STOCK_LOAD_PROBLEMS),
  },
})

const showGoods = createRoute({
  method: 'get',
  path: '/{id}',
  summary: 'One goods with its live stock and sale state',
  request: { params: goodsIdPath },
  responses: {
    200: jsonResponse(goodsViewSchema, 'the goods'),
    ...problemResponses(PARAMETER_PROBLEMS, GOODS_NOT_FOUND, STOCK_LOAD_PROBLEMS),
  },
})

const showStock = createRoute({
  method: 'get',
  path: '/{id}/stock',
  summary: 'Live stock, sale state and window only',
  request: { params: goodsIdPath },
  responses: {
    200: jsonResponse(stockView, 'the live stock of the goods'),
    ...problemResponses(PARAMETER_PROBLEMS, GOODS_NOT_FOUND, STOCK_LOAD_PROBLEMS),
  },
})

/** The catalog: anyone browses it, sellers add goods and edit their own. */
export function catalogRoutes({ catalog, live, verifier }: CatalogRoutesDeps): Routes<AuthedEnv> {
  const store: StockStore = live.store
  const seller: MiddlewareHandler<AuthedEnv>[] = [authenticate(verifier), requireRole('SELLER')]

  const myGoods = createRoute({
    method: 'get',
    path: '/mine',
    summary: "The calling seller's goods, paged and filtered like the catalog",
    middleware: seller,
    request: { query: pageQuery },
    responses: {
      200: jsonResponse(goodsPage, "one page of the seller's goods"),
      ...problemResponses(PARAMETER_PROBLEMS, PAGE_PROBLEMS, STOCK_LOAD_PROBLEMS, ...SELLER_PROBLEMS),
    },
  })

  const createGoods = createRoute({
    method: 'post',
    path: '/',
    summary: 'Create goods with their sale window and stock',
    middleware: seller,
    request: { body: jsonBody(goodsDraftSchema) },
    responses: {
      201: jsonResponse(goodsViewSchema, 'the goods, created; `Location` names them'),
      ...problemResponses(JSON_BODY_PROBLEMS, STOCK_LOAD_PROBLEMS, ...SELLER_PROBLEMS),
    },
  })

  const editGoods = createRoute({
    method: 'patch',
    path: '/{id}',
    summary: "Edit any of the goods' fields; the stock is locked while the sale is open",
    middleware: seller,
    request: { params: goodsIdPath, body: jsonBody(goodsPatchSchema) },
    responses: {
      200: jsonResponse(goodsViewSchema, 'the goods, edited'),
      ...problemResponses(JSON_BODY_PROBLEMS, PARAMETER_PROBLEMS, ...SELLER_PROBLEMS, GOODS_NOT_FOUND, {
        403: ['NOT_GOODS_OWNER'],
        409: ['EDIT_CONFLICT'],
        422: ['SALE_IN_PROGRESS', 'STOCK_BELOW_RESERVED'],
        503: ['STOCK_UNAVAILABLE'],
      }),
    },
  })

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

  return createRoutes<AuthedEnv>()
    .openapi(listGoods, async (c) => c.json(await page(c.req.valid('query')), 200))
    .openapi(myGoods, async (c) => c.json(await page(c.req.valid('query'), c.var.caller.id), 200))
    .openapi(createGoods, async (c) => {
      const goods = draftToGoods(c.req.valid('json'), c.var.caller.id, new Date())
      await catalog.insert(goods)
      // A new goods has no ledger entries anywhere, so its stock loads without waiting for any.
      await live.store.loadIfAbsent(stockSourceOf(goods))
      return c.json(goodsView(goods, await live.snapshot(goods)), 201, { location: `/api/goods/${goods.id}` })
    })
    .openapi(showGoods, async (c) => {
      const goods = await existing(c.req.valid('param').id)
      return c.json(goodsView(goods, await live.snapshot(goods)), 200)
    })
    .openapi(showStock, async (c) => {
      const goods = await existing(c.req.valid('param').id)
      const view = goodsView(goods, await live.snapshot(goods))
      return c.json(
        {
          goodsId: view.id,
          stockAvailable: view.stockAvailable,
          initialStock: view.initialStock,
          saleState: view.saleState,
          saleStartsAt: view.saleStartsAt,
          saleEndsAt: view.saleEndsAt,
          purchaseLimit: view.purchaseLimit,
        },
        200,
      )
    })
    .openapi(editGoods, async (c) => {
      const id = goodsIdParam(c.req.valid('param').id)
      const patch = c.req.valid('json')
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
      return c.json(goodsView(edited, await live.snapshot(edited)), 200)
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
