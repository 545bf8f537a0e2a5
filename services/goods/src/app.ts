import type { AppEnv, Logger, TokenVerifier } from '@timedeal/platform'
import { Hono } from 'hono'
import type { Catalog } from './adapters/catalog.ts'
import type { LiveStock } from './adapters/live-stock.ts'
import type { StockMetrics } from './adapters/metrics.ts'
import type { Wishlist } from './adapters/wishlist.ts'
import { catalogRoutes } from './routes/catalog.ts'
import { reservationRoutes } from './routes/reservations.ts'
import { wishlistRoutes } from './routes/wishlist.ts'

export interface GoodsRoutesDeps {
  readonly catalog: Catalog
  readonly wishlist: Wishlist
  readonly live: LiveStock
  readonly verifier: TokenVerifier
  readonly metrics: StockMetrics
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
