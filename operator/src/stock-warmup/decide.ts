/**
 * What a StockWarmup needs next, as plain functions of (resource, time, outcome of a warm-up) →
 * status and next step. No server is touched here: the controller and the CLI run the step
 * (`warm`) and hand its outcome back to {@link statusAfterWarm} or {@link statusAfterFailure}.
 *
 * Phases: `Scheduled` (its time has not come) → `Warming` (written before the work starts, so an
 * interrupted warm-up is visible and is resumed) → `Ready`, or `Failed`. A failure of MySQL or
 * Redis is retried with a growing wait; an invalid spec and a refused overwrite are final for
 * the resource's generation.
 */
import { type Condition, type ConditionUpdate, kubeTime, removeCondition, setCondition } from '../conditions.ts'
import { annotationIsTrue, FINALIZER, isBeingDeleted, PAUSED_ANNOTATION } from '../runtime/controller.ts'
import { planOf, type WarmupPlan } from './spec.ts'
import type { StockWarmup, StockWarmupStatus, WarmupConditionType } from './types.ts'

/** The longest single wait before looking at a scheduled warm-up again. */
const MAX_WAIT_MS = 6 * 3_600_000

export interface RetryTiming {
  /** The wait after the first failed attempt; it doubles with each further one. */
  readonly baseMs: number
  readonly maxMs: number
}

export type WarmupStep = { readonly kind: 'none' } | { readonly kind: 'warm'; readonly plan: WarmupPlan }

export interface WarmupDecision {
  readonly status: StockWarmupStatus
  readonly step: WarmupStep
  readonly requeueAfterMs?: number
  /** Set only while the resource is being deleted. */
  readonly finalizers?: string[]
}

/** What one warm-up did. */
export interface WarmupResult {
  /** Goods selected and found in MySQL. */
  readonly total: number
  readonly loaded: number
  /** Left as they were, `refused` included. */
  readonly skipped: number
  /** Overwrites refused because the goods' sale had opened. */
  readonly refused: number
  /** Requested goods ids MySQL does not have. */
  readonly missing: number
  readonly checksum: string
  /** The earliest sale opening among the goods read (epoch ms). */
  readonly earliestOpening?: number
}

export interface WarmupFailure {
  readonly kind: 'source' | 'redis'
  readonly message: string
}

const TERMINAL_REASONS = new Set(['InvalidSpec', 'OverwriteRefused'])
const TRANSIENT_REASONS = new Set(['SourceError', 'RedisError'])

const generationOf = (resource: StockWarmup) => resource.metadata.generation ?? 0
const readyOf = (status: StockWarmupStatus | undefined) => status?.conditions?.find((c) => c.type === 'Ready')

function conditions(
  previous: readonly Condition[] | undefined,
  generation: number,
  now: number,
  set: readonly Omit<ConditionUpdate, 'observedGeneration'>[],
  remove: readonly WarmupConditionType[] = [],
): Condition[] {
  let list = [...(previous ?? [])]
  for (const type of remove) list = removeCondition(list, type)
  for (const update of set) list = setCondition(list, { ...update, observedGeneration: generation }, now)
  return list
}

const ready = (status: 'True' | 'False', reason: string, message: string) =>
  ({ type: 'Ready', status, reason, message }) as const

/** The wait before attempt number `failures + 1`. */
export function retryDelay(failures: number, timing: RetryTiming): number {
  return Math.min(timing.maxMs, timing.baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)))
}

export function decideWarmup(resource: StockWarmup, now: number, timing: RetryTiming): WarmupDecision {
  const previous = resource.status ?? {}
  const generation = generationOf(resource)

  // Nothing is held for a warm-up (loaded stock is never deleted), so deletion only lets go.
  if (isBeingDeleted(resource)) {
    return {
      status: previous,
      step: { kind: 'none' },
      finalizers: (resource.metadata.finalizers ?? []).filter((name) => name !== FINALIZER),
    }
  }

  if (annotationIsTrue(resource, PAUSED_ANNOTATION)) {
    const message = `paused by the ${PAUSED_ANNOTATION} annotation; nothing is read or written`
    return {
      status: {
        ...previous,
        conditions: conditions(previous.conditions, generation, now, [ready('False', 'Paused', message)]),
      },
      step: { kind: 'none' },
    }
  }

  const planned = planOf(resource.spec)
  if (!planned.ok) {
    return {
      status: {
        ...previous,
        observedGeneration: generation,
        phase: 'Failed',
        conditions: conditions(previous.conditions, generation, now, [ready('False', 'InvalidSpec', planned.error)]),
      },
      step: { kind: 'none' },
    }
  }
  const { plan } = planned
  const sameGeneration = previous.observedGeneration === generation
  const readyCondition = readyOf(previous)

  if (sameGeneration && previous.phase === 'Ready') {
    if (readyCondition?.reason !== 'Paused') return { status: previous, step: { kind: 'none' } }
    // Unpaused after it was warmed: the warm-up stands.
    return {
      status: {
        ...previous,
        conditions: conditions(previous.conditions, generation, now, [
          ready('True', 'Warmed', warmedMessage(previous)),
        ]),
      },
      step: { kind: 'none' },
    }
  }
  if (sameGeneration && previous.phase === 'Failed' && TERMINAL_REASONS.has(readyCondition?.reason ?? '')) {
    return { status: previous, step: { kind: 'none' } }
  }

  if (plan.startAt !== undefined && now < plan.startAt) {
    const scheduledAt = kubeTime(plan.startAt)
    const status: StockWarmupStatus = {
      observedGeneration: generation,
      phase: 'Scheduled',
      scheduledAt,
      ...(plan.opensAt === undefined ? {} : { opensAt: kubeTime(plan.opensAt) }),
      conditions: conditions(
        previous.conditions,
        generation,
        now,
        [ready('False', 'Scheduled', `warms at ${scheduledAt}`)],
        ['DeadlinePassed', 'SourceError', 'RedisError', 'OverwriteRefused'],
      ),
    }
    return { status, step: { kind: 'none' }, requeueAfterMs: Math.min(plan.startAt - now, MAX_WAIT_MS) }
  }

  if (plan.mode === 'Overwrite' && plan.opensAt !== undefined && now >= plan.opensAt) {
    const message = `the sale opened at ${kubeTime(plan.opensAt)}: overwriting live stock is refused; nothing was written`
    return {
      status: {
        ...previous,
        observedGeneration: generation,
        phase: 'Failed',
        opensAt: kubeTime(plan.opensAt),
        conditions: conditions(previous.conditions, generation, now, [
          ready('False', 'OverwriteRefused', message),
          { type: 'OverwriteRefused', status: 'True', reason: 'SaleOpened', message },
        ]),
      },
      step: { kind: 'none' },
    }
  }

  if (sameGeneration && previous.phase === 'Failed' && TRANSIENT_REASONS.has(readyCondition?.reason ?? '')) {
    const lastAttempt = previous.lastAttemptAt ? Date.parse(previous.lastAttemptAt) : Number.NaN
    const due = lastAttempt + retryDelay(previous.failures ?? 1, timing)
    if (Number.isFinite(due) && now < due)
      return { status: previous, step: { kind: 'none' }, requeueAfterMs: due - now }
    // Retried straight away: the Failed status stays until the attempt ends.
    return { status: previous, step: { kind: 'warm', plan } }
  }

  if (sameGeneration && previous.phase === 'Warming') {
    // Written by an attempt that did not finish (the operator stopped): do it again.
    return { status: previous, step: { kind: 'warm', plan } }
  }

  // Its time has come: say so before the work starts, then warm on the next pass.
  const late = plan.opensAt !== undefined && now >= plan.opensAt
  const status: StockWarmupStatus = {
    observedGeneration: generation,
    phase: 'Warming',
    scheduledAt: kubeTime(plan.startAt ?? now),
    ...(plan.opensAt === undefined ? {} : { opensAt: kubeTime(plan.opensAt) }),
    conditions: conditions(
      previous.conditions,
      generation,
      now,
      [
        ready('False', 'Warming', 'reading the stock from MySQL and loading it into Redis'),
        ...(late
          ? [
              {
                type: 'DeadlinePassed',
                status: 'True',
                reason: 'StartedAfterOpening',
                message: `the sale opened at ${kubeTime(plan.opensAt ?? now)}, before the warm-up started`,
              } as const,
            ]
          : []),
      ],
      ['SourceError', 'RedisError', 'OverwriteRefused', ...(late ? [] : (['DeadlinePassed'] as const))],
    ),
  }
  return { status, step: { kind: 'none' }, requeueAfterMs: 1 }
}

function warmedMessage(status: StockWarmupStatus): string {
  const parts = [`${status.loaded ?? 0} loaded`, `${status.skipped ?? 0} already in Redis`]
  if (status.missing) parts.push(`${status.missing} not in MySQL`)
  return `${parts.join(', ')} of ${status.total ?? 0} goods`
}

export function statusAfterWarm(
  resource: StockWarmup,
  plan: WarmupPlan,
  result: WarmupResult,
  now: number,
): StockWarmupStatus {
  const previous = resource.status ?? {}
  const generation = generationOf(resource)
  const deadline = plan.opensAt ?? result.earliestOpening
  const counts = {
    total: result.total,
    loaded: result.loaded,
    skipped: result.skipped,
    refused: result.refused,
    missing: result.missing,
  }
  const base: StockWarmupStatus = {
    observedGeneration: generation,
    ...(previous.scheduledAt ? { scheduledAt: previous.scheduledAt } : {}),
    ...(plan.opensAt === undefined ? {} : { opensAt: kubeTime(plan.opensAt) }),
    ...counts,
    checksum: result.checksum,
    warmedAt: kubeTime(now),
    failures: 0,
  }
  const deadlineCondition: Omit<ConditionUpdate, 'observedGeneration'> =
    deadline !== undefined && now >= deadline
      ? {
          type: 'DeadlinePassed',
          status: 'True',
          reason: 'WarmedAfterOpening',
          message: `a sale opened at ${kubeTime(deadline)}, before the warm-up finished; only absent stock was loaded`,
        }
      : {
          type: 'DeadlinePassed',
          status: 'False',
          reason: 'WarmedInTime',
          message:
            deadline === undefined ? 'no sale of these goods has a known opening' : `done before ${kubeTime(deadline)}`,
        }
  if (result.refused > 0) {
    const message = `${result.refused} goods had opened sales: their live stock was left as it was; ${warmedMessage(counts)}`
    return {
      ...base,
      phase: 'Failed',
      conditions: conditions(
        previous.conditions,
        generation,
        now,
        [
          ready('False', 'OverwriteRefused', message),
          { type: 'OverwriteRefused', status: 'True', reason: 'SaleOpened', message },
          deadlineCondition,
        ],
        ['SourceError', 'RedisError'],
      ),
    }
  }
  return {
    ...base,
    phase: 'Ready',
    conditions: conditions(
      previous.conditions,
      generation,
      now,
      [ready('True', 'Warmed', warmedMessage(counts)), deadlineCondition],
      ['SourceError', 'RedisError', 'OverwriteRefused'],
    ),
  }
}

export function statusAfterFailure(
  resource: StockWarmup,
  failure: WarmupFailure,
  now: number,
  timing: RetryTiming,
): { status: StockWarmupStatus; requeueAfterMs: number } {
  const previous = resource.status ?? {}
  const generation = generationOf(resource)
  const failures = (previous.observedGeneration === generation ? (previous.failures ?? 0) : 0) + 1
  const type = failure.kind === 'source' ? 'SourceError' : 'RedisError'
  const other = failure.kind === 'source' ? 'RedisError' : 'SourceError'
  const requeueAfterMs = retryDelay(failures, timing)
  const message = `${failure.message} (attempt ${failures}; next in ${Math.ceil(requeueAfterMs / 1000)} s)`
  return {
    status: {
      ...previous,
      observedGeneration: generation,
      phase: 'Failed',
      lastAttemptAt: kubeTime(now),
      failures,
      conditions: conditions(
        previous.conditions,
        generation,
        now,
        [
          ready('False', type, message),
          {
            type,
            status: 'True',
            reason: failure.kind === 'source' ? 'MysqlFailed' : 'RedisFailed',
            message: failure.message,
          },
        ],
        [other],
      ),
    },
    requeueAfterMs,
  }
}

export interface WarmupEvent {
  readonly type: 'Normal' | 'Warning'
  readonly reason: string
  readonly message: string
}

/** Events for what changed between two statuses: a new phase, or a condition that became true. */
export function eventsBetween(before: StockWarmupStatus | undefined, after: StockWarmupStatus): WarmupEvent[] {
  const events: WarmupEvent[] = []
  const readyAfter = readyOf(after)
  const readyBefore = readyOf(before)
  if (readyAfter && (readyAfter.reason !== readyBefore?.reason || readyAfter.status !== readyBefore?.status)) {
    const warning = after.phase === 'Failed'
    events.push({ type: warning ? 'Warning' : 'Normal', reason: readyAfter.reason, message: readyAfter.message })
  }
  for (const type of ['DeadlinePassed'] as const) {
    const now = after.conditions?.find((c) => c.type === type)
    const was = before?.conditions?.find((c) => c.type === type)
    if (now?.status === 'True' && was?.status !== 'True')
      events.push({ type: 'Warning', reason: now.reason, message: now.message })
  }
  return events
}
