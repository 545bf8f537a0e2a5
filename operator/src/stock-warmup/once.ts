/**
 * One StockWarmup reconciled to the end without Kubernetes, for `timedeal-operator apply`: the
 * same controller, fed the status it returned each time instead of a stored one. Sources come
 * from the operator's own settings (a Secret named by the resource cannot be read here).
 */
import type { Logger } from '@timedeal/platform'
import { kubeTime } from '../conditions.ts'
import { createStockWarmupController } from './controller.ts'
import type { WarmupSettings } from './settings.ts'
import type { StockWarmup, StockWarmupStatus } from './types.ts'

export interface OnceOptions {
  /** Wait for a warm-up whose time has not come instead of returning it Scheduled. */
  readonly wait: boolean
  readonly logger: Logger
  readonly progress: (line: string) => void
  readonly now?: () => number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function reconcileStockWarmupOnce(
  resource: StockWarmup,
  settings: WarmupSettings,
  options: OnceOptions,
): Promise<StockWarmupStatus> {
  const now = options.now ?? Date.now
  const controller = createStockWarmupController({ settings, logger: options.logger, progress: options.progress })
  if (resource.spec?.source?.secretRef || resource.spec?.target?.secretRef) {
    options.progress('Secrets are not read without Kubernetes: using the operator settings for MySQL and Redis')
  }
  let current: StockWarmup = {
    ...resource,
    metadata: { ...resource.metadata, generation: resource.metadata.generation ?? 1 },
  }
  try {
    for (;;) {
      const outcome = await controller.reconcile(current, {
        now,
        logger: options.logger,
        event: (type, reason, message) =>
          options.progress(`${type === 'Warning' ? 'warning: ' : ''}${reason}: ${message}`),
        peers: () => [current],
      })
      current = { ...current, status: outcome.status }
      const { phase } = outcome.status
      const wait = outcome.requeueAfterMs
      if (phase === 'Warming' && wait !== undefined) continue
      // Only the time is waited for: a failed attempt is reported, not retried, so apply ends.
      if (wait === undefined || !options.wait || phase !== 'Scheduled') return outcome.status
      options.progress(`waiting until ${kubeTime(now() + wait)}`)
      await sleep(wait)
    }
  } finally {
    await controller.close()
  }
}
