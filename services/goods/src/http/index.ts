import { createRoutes, type Routes, type TokenVerifier } from '@timedeal/platform'
import { etag } from 'hono/etag'
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
}

/**
 * The routes of goods-service. Health, readiness, metrics and `/openapi.json` come from the
 * platform app this is mounted on.
 */
export function goodsRoutes(deps: GoodsRoutesDeps): Routes {
  const routes = createRoutes()
  // Browsers poll the catalog and the live stock: an unchanged answer is a 304 without a body.
  routes.use('/api/goods', etag())
  routes.use('/api/goods/*', etag())
  routes.route('/api/goods', catalogRoutes(deps))
  routes.route('/api/wishlist', wishlistRoutes(deps))
  return routes
}

/** The routes order-service calls, for the internal listener only (mounted under `/internal`). */
export function goodsInternalRoutes(deps: GoodsRoutesDeps): Routes {
  const routes = createRoutes()
  routes.route('/reservations', reservationRoutes(deps))
  return routes
}
