/**
 * Redis pub/sub channels between goods-service and order-service, within one stock namespace
 * (goods-service's `STOCK_KEY_PREFIX`, so two namespaces never mix). Messages are goods ids.
 * Pub/sub delivers at most once: what listens treats a message as a hint that lapses, never as
 * the truth about stock.
 */

/** order-service instances share here that goods-service answered SOLD_OUT for a goods. */
export const soldOutChannel = (stockPrefix: string) => `${stockPrefix}:sold-out`

/** goods-service says here that units of a goods came back (a release, an expiry, a reload). */
export const unitsReturnedChannel = (stockPrefix: string) => `${stockPrefix}:units-returned`

/** The message on {@link unitsReturnedChannel} that says units of any goods may have come back. */
export const ANY_GOODS = '*'
