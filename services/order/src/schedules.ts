/**
 * Time-driven transitions: unpaid orders expire after the payment deadline, and (for demos) paid
 * orders ship and then arrive on their own. Each pass picks due orders and applies the command
 * through the state machine under the row lock, so several replicas running it do no harm: an
 * order another replica moved on is simply refused.
 */
import type { Logger } from '@timedeal/platform'
import type { OrderStore } from './adapters/order-store.ts'
import type { OrderCommandType, OrderState } from './domain/order-state.ts'
import type { Orders } from './orders.ts'

export interface ScheduleRule {
  readonly name: string
  readonly from: OrderState
  /** How long an order stays in `from` before the command is due. */
  readonly afterMs: number
  readonly command: Exclude<OrderCommandType, 'PAY' | 'FAIL' | 'RETURN'>
}

export interface SchedulesOptions {
  readonly rules: readonly ScheduleRule[]
  readonly intervalMs: number
  readonly orders: Orders
  readonly store: OrderStore
  readonly logger: Logger
  readonly batchSize?: number
  readonly clock?: () => Date
}

export interface Schedules {
  /** One pass over every rule; returns how many orders changed. For tests and tools. */
  runOnce(): Promise<number>
  stop(): Promise<void>
}

export function startSchedules(options: SchedulesOptions): Schedules {
  const clock = options.clock ?? (() => new Date())
  const limit = options.batchSize ?? 200
  let running = true
  let timer: NodeJS.Timeout | undefined
  let pass: Promise<unknown> = Promise.resolve()

  async function runOnce(): Promise<number> {
    let changed = 0
    for (const rule of options.rules) {
      const due = await options.store.idsInStateSince(rule.from, new Date(clock().getTime() - rule.afterMs), limit)
      if (due.length === 0) continue
      const applied = await options.orders.applyToEach(due, () => ({ type: rule.command, at: clock() }))
      if (applied > 0) options.logger.info({ rule: rule.name, applied }, 'scheduled transitions applied')
      changed += applied
    }
    return changed
  }

  const tick = () => {
    pass = runOnce()
      .catch((error: unknown) => options.logger.warn({ err: error }, 'scheduled transitions failed; next pass retries'))
      .finally(() => {
        if (running) timer = setTimeout(tick, options.intervalMs)
      })
  }
  if (options.rules.length > 0) timer = setTimeout(tick, options.intervalMs)

  return {
    runOnce,
    async stop() {
      running = false
      clearTimeout(timer)
      await pass
    },
  }
}
