/**
 * Time-driven work: unpaid orders expire at their payment deadline, (for demos) paid orders ship
 * and then arrive on their own, and chores such as forgetting old placements run. Each pass
 * picks due orders and applies the command through the state machine under the row lock, so
 * several replicas running it do no harm: an order another replica moved on is simply refused.
 */
import type { Logger } from '@timedeal/platform'
import type { OrderCommandType } from '../domain/order-state.ts'
import type { Orders } from './orders.ts'

export interface ScheduleRule {
  readonly name: string
  /** Ids of the orders the command is due for at `now`, most overdue first. */
  readonly due: (now: Date, limit: number) => Promise<string[]>
  readonly command: Exclude<OrderCommandType, 'PAY' | 'FAIL' | 'RETURN'>
}

/** Housekeeping run on every pass; returns how many things it did. */
export interface ScheduleChore {
  readonly name: string
  readonly run: (now: Date) => Promise<number>
}

export interface SchedulesOptions {
  readonly rules: readonly ScheduleRule[]
  readonly chores?: readonly ScheduleChore[]
  readonly intervalMs: number
  readonly orders: Orders
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
  const chores = options.chores ?? []
  let running = true
  let timer: NodeJS.Timeout | undefined
  let pass: Promise<unknown> = Promise.resolve()

  async function runOnce(): Promise<number> {
    let changed = 0
    for (const rule of options.rules) {
      const due = await rule.due(clock(), limit)
      if (due.length === 0) continue
      const applied = await options.orders.applyToEach(due, () => ({ type: rule.command, at: clock() }))
      if (applied > 0) options.logger.info({ rule: rule.name, applied }, 'scheduled transitions applied')
      changed += applied
    }
    for (const chore of chores) {
      const done = await chore.run(clock())
      if (done > 0) options.logger.debug({ chore: chore.name, done }, 'scheduled chore done')
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
  if (options.rules.length + chores.length > 0) timer = setTimeout(tick, options.intervalMs)

  return {
    runOnce,
    async stop() {
      running = false
      clearTimeout(timer)
      await pass
    },
  }
}
