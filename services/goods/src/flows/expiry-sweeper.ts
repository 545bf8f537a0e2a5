import type { Logger } from '@timedeal/platform'
import type { LiveStock } from './live-stock.ts'

export interface ExpirySweeper {
  start(): void
  stop(): Promise<void>
}

/**
 * Gives back the stock of reservations whose hold ran out without a confirmation. Every instance
 * may sweep at once: the release script releases a reservation only once, whoever gets there first.
 */
export function createExpirySweeper(live: LiveStock, intervalMs: number, logger: Logger, batch = 500): ExpirySweeper {
  let timer: NodeJS.Timeout | undefined
  let sweeping: Promise<void> | undefined
  let stopped = true
  let lastFailure = ''

  async function sweep(): Promise<void> {
    try {
      let pass: { due: number; released: number }
      do {
        pass = await live.expireDue(batch)
        if (pass.released > 0) logger.info({ released: pass.released }, 'expired reservations gave their stock back')
        // Each shard gives up to `batch`: a pass that found that many may have left some behind.
      } while (pass.due >= batch && !stopped)
      lastFailure = ''
    } catch (error) {
      // One line per distinct failure, not one per interval while Redis is away.
      const message = error instanceof Error ? error.message : String(error)
      if (message !== lastFailure) logger.warn({ err: error }, 'the expiry sweep failed; the next one retries')
      lastFailure = message
    }
  }

  function schedule(): void {
    if (stopped) return
    timer = setTimeout(() => {
      sweeping = sweep().finally(schedule)
    }, intervalMs)
  }

  return {
    start() {
      if (!stopped) return
      stopped = false
      schedule()
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await sweeping
    },
  }
}
