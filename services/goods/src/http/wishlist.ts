import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  emptyResponse,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  PARAMETER_PROBLEMS,
  Problem,
  problemResponses,
  ROLE_PROBLEMS,
  type Routes,
  requireRole,
  type TokenVerifier,
} from '@timedeal/platform'
import { z } from 'zod'
import type { Catalog } from '../adapters/catalog.ts'
import type { Wishlist } from '../adapters/wishlist.ts'
import { goodsView } from '../domain/goods.ts'
import type { LiveStock } from '../flows/live-stock.ts'
import { GOODS_NOT_FOUND, goodsNotFound, goodsViewSchema, STOCK_LOAD_PROBLEMS } from './catalog.ts'

export interface WishlistRoutesDeps {
  readonly wishlist: Wishlist
  readonly catalog: Catalog
  readonly live: LiveStock
  readonly verifier: TokenVerifier
}

/** A wishlist is meant to be glanced at; a cap keeps one listing one query. */
export const WISHLIST_CAPACITY = 200

const addition = z.strictObject({ goodsId: z.string().min(1).max(64) })

const BUYER_PROBLEMS = [AUTH_PROBLEMS, ROLE_PROBLEMS] as const

const listWishlist = createRoute({
  method: 'get',
  path: '/',
  summary: "The buyer's wishlist, newest first, with each goods' live state",
  responses: {
    200: jsonResponse(
      z.object({ items: z.array(z.object({ goods: goodsViewSchema, addedAt: z.string() })) }),
      'the wishlist',
    ),
    ...problemResponses(STOCK_LOAD_PROBLEMS, ...BUYER_PROBLEMS),
  },
})

const addToWishlist = createRoute({
  method: 'post',
  path: '/',
  summary: 'Add goods to the wishlist',
  request: { body: jsonBody(addition) },
  responses: {
    201: jsonResponse(z.object({ goodsId: z.string(), added: z.literal(true) }), 'added'),
    200: jsonResponse(z.object({ goodsId: z.string(), added: z.literal(false) }), 'it was there already'),
    ...problemResponses(JSON_BODY_PROBLEMS, ...BUYER_PROBLEMS, GOODS_NOT_FOUND, { 422: ['WISHLIST_FULL'] }),
  },
})

const removeFromWishlist = createRoute({
  method: 'delete',
  path: '/{goodsId}',
  summary: 'Remove goods from the wishlist (also when they were not there)',
  request: { params: z.object({ goodsId: z.string() }) },
  responses: {
    204: emptyResponse('removed'),
    ...problemResponses(PARAMETER_PROBLEMS, ...BUYER_PROBLEMS),
  },
})

/** A buyer's wishlist: add goods, list them with their live sale state, remove them. */
export function wishlistRoutes({ wishlist, catalog, live, verifier }: WishlistRoutesDeps): Routes<AuthedEnv> {
  const routes = createRoutes<AuthedEnv>()
  routes.use(authenticate(verifier), requireRole('BUYER'))
  return routes
    .openapi(listWishlist, async (c) => {
      const entries = await wishlist.list(c.var.caller.id, WISHLIST_CAPACITY)
      const goods = new Map((await catalog.findMany(entries.map((entry) => entry.goodsId))).map((g) => [g.id, g]))
      const items = await Promise.all(
        entries.flatMap((entry) => {
          const one = goods.get(entry.goodsId)
          if (!one) return []
          return [
            live
              .snapshot(one)
              .then((snapshot) => ({ goods: goodsView(one, snapshot), addedAt: entry.addedAt.toISOString() })),
          ]
        }),
      )
      return c.json({ items }, 200)
    })
    .openapi(addToWishlist, async (c) => {
      const { goodsId } = c.req.valid('json')
      const userId = c.var.caller.id
      if (!(await catalog.find(goodsId))) throw goodsNotFound(goodsId)
      if ((await wishlist.count(userId)) >= WISHLIST_CAPACITY) {
        throw new Problem({
          status: 422,
          code: 'WISHLIST_FULL',
          detail: `a wishlist holds at most ${WISHLIST_CAPACITY} goods`,
        })
      }
      const added = await wishlist.add(userId, goodsId, new Date())
      return added ? c.json({ goodsId, added: true as const }, 201) : c.json({ goodsId, added: false as const }, 200)
    })
    .openapi(removeFromWishlist, async (c) => {
      await wishlist.remove(c.var.caller.id, c.req.valid('param').goodsId)
      return c.body(null, 204)
    })
}
