import type { AppEnv, Logger, TokenVerifier } from '@timedeal/platform'
import { Hono } from 'hono'
import type { Catalog } from '../adapters/catalog.ts'
import type { Wishlist } from '../adapters/wishlist.ts'
import type { LiveStock } from '../flows/live-stock.ts'
import type { GoodsMetrics } from '../metrics.ts'
import { catalogRoutes } from './catalog.ts'
import { reservationRoutes } from './reservations.ts'
import { wishlistRoutes } from './wishlist.ts'

export interface GoodsRoutesDeps {
  readonly catalog: Catalog
  readonly wishlist: Wishlist
  readonly live: LiveStock
  readonly verifier: TokenVerifier
  readonly metrics: GoodsMetrics
  readonly internalSecret: string
  readonly logger: Logger
}

/**
 * The routes of goods-service. Health, readiness and metrics come from the platform app this
 * is mounted on.
 */
export const goodsRoutes = (deps: GoodsRoutesDeps): Hono<AppEnv> =>
  new Hono<AppEnv>().route('/api/goods', catalogRoutes(deps)).route('/api/wishlist', wishlistRoutes(deps))

/** The routes order-service calls, for the internal listener only (mounted under `/internal`). */
export const goodsInternalRoutes = (deps: GoodsRoutesDeps): Hono<AppEnv> =>
  new Hono<AppEnv>().route('/reservations', reservationRoutes(deps))
