import type { Logger, Redis } from '@timedeal/platform'

/**
 * Where goods-service says units came back to stock (a release, an expiry, a reload from MySQL):
 * order-service clears its sold-out mark of the goods named, or every mark for `*`. Pub/sub may
 * lose a message; order-service's marks lapse on their own, so a lost one only delays a buyer.
 */
export const unitsReturnedChannel = (stockPrefix: string) => `${stockPrefix}:units-returned`

/** Publishes that units of `goodsId` (or of any goods, `*`) came back; never fails the caller. */
export function unitsReturnedSignal(redis: Redis, stockPrefix: string, logger: Logger): (goodsId: string) => void {
  const channel = unitsReturnedChannel(stockPrefix)
  return (goodsId) => {
    redis.publish(channel, goodsId).catch((error: unknown) => {
      logger.debug({ err: error, goodsId }, 'could not say units came back; sold-out marks lapse on their own')
    })
  }
}
