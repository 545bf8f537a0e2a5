import { unitsReturnedChannel } from '@timedeal/contracts'
import type { Logger, Redis } from '@timedeal/platform'

/**
 * Publishes that units of `goodsId` (or of any goods, `ANY_GOODS`) came back to stock (a release,
 * an expiry, a reload from MySQL); never fails the caller. order-service clears its sold-out marks
 * then; pub/sub may lose a message, and those marks lapse on their own, so a lost one only delays
 * a buyer.
 */
export function unitsReturnedSignal(redis: Redis, stockPrefix: string, logger: Logger): (goodsId: string) => void {
  const channel = unitsReturnedChannel(stockPrefix)
  return (goodsId) => {
    redis.publish(channel, goodsId).catch((error: unknown) => {
      logger.debug({ err: error, goodsId }, 'could not say units came back; sold-out marks lapse on their own')
    })
  }
}
