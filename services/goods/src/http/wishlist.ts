import {
  type AppEnv,
  authenticate,
  Problem,
  readJson,
  requireRole,
  type TokenVerifier,
  validate,
} from '@timedeal/platform'
import { Hono } from 'hono'
import { z } from 'zod'
import type { Catalog } from '../adapters/catalog.ts'
import type { Wishlist } from '../adapters/wishlist.ts'
import { goodsView } from '../domain/goods.ts'
import type { LiveStock } from '../flows/live-stock.ts'
import { goodsNotFound } from './catalog.ts'

export interface WishlistRoutesDeps {
  readonly wishlist: Wishlist
  readonly catalog: Catalog
  readonly live: LiveStock
  readonly verifier: TokenVerifier
}

/** A wishlist is meant to be glanced at; a cap keeps one listing one query. */
export const WISHLIST_CAPACITY = 200

const addition = z.strictObject({ goodsId: z.string().min(1).max(64) })

/** A buyer's wishlist: add goods, list them with their live sale state, remove them. */
export function wishlistRoutes({ wishlist, catalog, live, verifier }: WishlistRoutesDeps) {
  return new Hono<AppEnv>()
    .get('/', authenticate(verifier), requireRole('BUYER'), async (c) => {
      const entries = await wishlist.list(c.var.caller.id, WISHLIST_CAPACITY)
      const goods = new Map((await catalog.findMany(entries.map((entry) => entry.goodsId))).map((g) => [g.id, g]))
      const items = await Promise.all(
        entries.flatMap((entry) => {
          const one = goods.get(entry.goodsId)
          if (!one) return []
          return [live.snapshot(one).then((snapshot) => ({ goods: goodsView(one, snapshot), addedAt: entry.addedAt }))]
        }),
      )
      return c.json({ items })
    })
    .post('/', authenticate(verifier), requireRole('BUYER'), async (c) => {
      const { goodsId } = validate(addition, await readJson(c.req.raw), 'wishlist entry')
      const userId = c.var.caller.id
      if (!(await catalog.find(goodsId))) throw goodsNotFound(goodsId)
      if ((await wishlist.count(userId)) >= WISHLIST_CAPACITY) {
        throw new Problem({
          status: 422,
          code: 'WISHLIST_FULL',
          detail: `a wishlist holds at most ${WISHLIST_CAPACITY} goods`,
        })
      }
      const addedAt = new Date()
      const added = await wishlist.add(userId, goodsId, addedAt)
      return c.json({ goodsId, added }, added ? 201 : 200)
    })
    .delete('/:goodsId', authenticate(verifier), requireRole('BUYER'), async (c) => {
      await wishlist.remove(c.var.caller.id, c.req.param('goodsId'))
      return c.body(null, 204)
    })
}
