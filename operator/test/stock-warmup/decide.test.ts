// The warm-up's decisions as plain functions: no server, a fixed clock.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { findCondition } from '../../src/conditions.ts'
import {
  decideWarmup,
  eventsBetween,
  retryDelay,
  statusAfterFailure,
  statusAfterWarm,
  type WarmupResult,
} from '../../src/stock-warmup/decide.ts'
import { parseDuration, planOf, type WarmupPlan } from '../../src/stock-warmup/spec.ts'
import type { StockWarmup, StockWarmupSpec, StockWarmupStatus } from '../../src/stock-warmup/types.ts'

const T0 = Date.parse('2030-06-01T11:00:00Z')
const OPENS = '2030-06-01T12:00:00Z'
const timing = { baseMs: 1_000, maxMs: 60_000 }
const MINUTE = 60_000

function warmup(
  spec: Partial<StockWarmupSpec> = {},
  status?: StockWarmupStatus,
  extra: Partial<StockWarmup['metadata']> = {},
): StockWarmup {
  return {
    apiVersion: 'timedeal.io/v1alpha1',
    kind: 'StockWarmup',
    metadata: { name: 'noon', namespace: 'shop', generation: 1, ...extra },
    spec: { goods: { goodsIds: ['g-1', 'g-2'] }, schedule: { opensAt: OPENS, leadTime: '10m' }, ...spec },
    ...(status ? { status } : {}),
  }
}

const result = (overrides: Partial<WarmupResult> = {}): WarmupResult => ({
  total: 2,
  loaded: 2,
  skipped: 0,
  refused: 0,
  missing: 0,
  checksum: 'sha256:abc',
  ...overrides,
})

const planFor = (resource: StockWarmup): WarmupPlan => {
  const planned = planOf(resource.spec)
  assert.ok(planned.ok)
  return planned.plan
}

/** Feeds each decision's status back as the stored one, as the API server would. */
function stored(resource: StockWarmup, status: StockWarmupStatus): StockWarmup {
  return { ...resource, status }
}

describe('stock warm-up decisions', () => {
  test('a warm-up whose time has not come is Scheduled and asks to be looked at again when it comes', () => {
    const decision = decideWarmup(warmup(), T0, timing)
    assert.equal(decision.status.phase, 'Scheduled')
    assert.equal(decision.step.kind, 'none')
    assert.equal(decision.status.scheduledAt, '2030-06-01T11:50:00Z')
    assert.equal(decision.requeueAfterMs, 50 * MINUTE)
    assert.equal(findCondition(decision.status.conditions, 'Ready')?.reason, 'Scheduled')
  })

  test('a steady Scheduled warm-up yields exactly the stored status, so nothing is written', () => {
    const first = decideWarmup(warmup(), T0, timing)
    const again = decideWarmup(stored(warmup(), first.status), T0 + MINUTE, timing)
    assert.deepEqual(again.status, first.status)
  })

  test('says Warming before any work, then warms on the next pass; a goods list without opensAt warms at once', () => {
    const resource = warmup({ schedule: {} })
    const first = decideWarmup(resource, T0, timing)
    assert.equal(first.status.phase, 'Warming')
    assert.equal(first.step.kind, 'none')
    assert.ok(first.requeueAfterMs !== undefined && first.requeueAfterMs < 100)
    const second = decideWarmup(stored(resource, first.status), T0 + 5, timing)
    assert.equal(second.step.kind, 'warm')
  })

  test('a warm-up done for its generation is never repeated; a new generation warms again', () => {
    const resource = warmup({ schedule: {} })
    const warming = decideWarmup(resource, T0, timing).status
    const ready = statusAfterWarm(stored(resource, warming), planFor(resource), result(), T0 + 1_000)
    assert.equal(ready.phase, 'Ready')
    const later = decideWarmup(stored(resource, ready), T0 + 3_600_000, timing)
    assert.deepEqual(later.status, ready)
    assert.equal(later.step.kind, 'none')
    const edited = { ...stored(resource, ready), metadata: { ...resource.metadata, generation: 2 } }
    assert.equal(decideWarmup(edited, T0 + 3_600_000, timing).status.phase, 'Warming')
  })

  test('refuses an Overwrite once the sale has opened, with OverwriteRefused, and writes nothing', () => {
    const resource = warmup({ policy: { mode: 'Overwrite' } })
    const decision = decideWarmup(resource, Date.parse(OPENS) + 1, timing)
    assert.equal(decision.step.kind, 'none')
    assert.equal(decision.status.phase, 'Failed')
    assert.equal(findCondition(decision.status.conditions, 'OverwriteRefused')?.status, 'True')
    assert.equal(findCondition(decision.status.conditions, 'Ready')?.reason, 'OverwriteRefused')
    // Final for this generation: asked again later, it stays refused and still does nothing.
    const again = decideWarmup(stored(resource, decision.status), Date.parse(OPENS) + MINUTE, timing)
    assert.deepEqual(again.status, decision.status)
    assert.equal(again.step.kind, 'none')
  })

  test('an Overwrite that found opened sales among its goods is Failed with OverwriteRefused', () => {
    const resource = warmup({ policy: { mode: 'Overwrite' }, schedule: {} })
    const status = statusAfterWarm(resource, planFor(resource), result({ loaded: 1, skipped: 1, refused: 1 }), T0)
    assert.equal(status.phase, 'Failed')
    assert.equal(status.refused, 1)
    assert.match(findCondition(status.conditions, 'OverwriteRefused')?.message ?? '', /1 goods had opened sales/)
  })

  test('a warm-up that starts or finishes after the sale opened says DeadlinePassed', () => {
    const resource = warmup()
    const late = Date.parse(OPENS) + MINUTE
    const starting = decideWarmup(resource, late, timing)
    assert.equal(starting.status.phase, 'Warming')
    assert.equal(findCondition(starting.status.conditions, 'DeadlinePassed')?.status, 'True')
    const done = statusAfterWarm(stored(resource, starting.status), planFor(resource), result(), late + 1_000)
    assert.equal(done.phase, 'Ready')
    assert.equal(findCondition(done.conditions, 'DeadlinePassed')?.reason, 'WarmedAfterOpening')
    const inTime = statusAfterWarm(resource, planFor(resource), result(), Date.parse(OPENS) - MINUTE)
    assert.equal(findCondition(inTime.conditions, 'DeadlinePassed')?.status, 'False')
  })

  test('without opensAt, the deadline is the earliest sale opening among the goods read', () => {
    const resource = warmup({ schedule: {} })
    const status = statusAfterWarm(resource, planFor(resource), result({ earliestOpening: T0 - 1 }), T0)
    assert.equal(findCondition(status.conditions, 'DeadlinePassed')?.status, 'True')
  })

  test('a window selection is scheduled by its start minus the lead time', () => {
    const resource = warmup({
      goods: { opensBetween: { from: OPENS, to: '2030-06-01T13:00:00Z' } },
      schedule: { leadTime: '1h30m' },
    })
    const decision = decideWarmup(resource, T0 - 3_600_000, timing)
    assert.equal(decision.status.phase, 'Scheduled')
    assert.equal(decision.status.scheduledAt, '2030-06-01T10:30:00Z')
  })

  test('a failed attempt is retried only after a wait that doubles with each failure', () => {
    const resource = warmup({ schedule: {} })
    const first = statusAfterFailure(resource, { kind: 'source', message: 'MySQL: connection refused' }, T0, timing)
    assert.equal(first.status.phase, 'Failed')
    assert.equal(first.requeueAfterMs, 1_000)
    assert.equal(findCondition(first.status.conditions, 'SourceError')?.status, 'True')
    const early = decideWarmup(stored(resource, first.status), T0 + 500, timing)
    assert.equal(early.step.kind, 'none')
    assert.deepEqual(early.status, first.status)
    assert.equal(decideWarmup(stored(resource, first.status), T0 + 1_000, timing).step.kind, 'warm')
    const second = statusAfterFailure(
      stored(resource, first.status),
      { kind: 'redis', message: 'Redis: down' },
      T0 + 1_000,
      timing,
    )
    assert.equal(second.requeueAfterMs, 2_000)
    assert.equal(findCondition(second.status.conditions, 'SourceError'), undefined)
    assert.equal(findCondition(second.status.conditions, 'RedisError')?.status, 'True')
    assert.equal(retryDelay(40, timing), 60_000)
    const recovered = statusAfterWarm(stored(resource, second.status), planFor(resource), result(), T0 + 3_000)
    assert.equal(recovered.failures, 0)
    assert.equal(findCondition(recovered.conditions, 'RedisError'), undefined)
  })

  test('an interrupted warm-up (Warming stored for this generation) is done again', () => {
    const resource = warmup({ schedule: {} })
    const warming = decideWarmup(resource, T0, timing).status
    assert.equal(decideWarmup(stored(resource, warming), T0 + 60 * MINUTE, timing).step.kind, 'warm')
  })

  test('paused: nothing is done and the status says Paused; unpaused after it was warmed, Ready again', () => {
    const resource = warmup({ schedule: {} })
    const ready = statusAfterWarm(resource, planFor(resource), result(), T0)
    const paused = {
      ...stored(resource, ready),
      metadata: { ...resource.metadata, annotations: { 'timedeal.io/paused': 'true' } },
    }
    const decision = decideWarmup(paused, T0 + MINUTE, timing)
    assert.equal(decision.step.kind, 'none')
    assert.equal(findCondition(decision.status.conditions, 'Ready')?.reason, 'Paused')
    const unpaused = decideWarmup(stored(resource, decision.status), T0 + 2 * MINUTE, timing)
    assert.equal(unpaused.step.kind, 'none')
    assert.equal(findCondition(unpaused.status.conditions, 'Ready')?.status, 'True')
  })

  test('an invalid spec is Failed with InvalidSpec and a message naming the field', () => {
    const cases: [StockWarmupSpec, RegExp][] = [
      [{ goods: { goodsIds: ['a'], opensBetween: { from: OPENS, to: OPENS } } }, /exactly one/],
      [{ goods: { opensBetween: { from: OPENS, to: '2030-06-01T11:00:00Z' } } }, /before/],
      [{ goods: { goodsIds: ['a b'] } }, /spec\.goods\.goodsIds\[0\]/],
      [{ goods: { goodsIds: ['a', 'a'] } }, /repeat/],
      [{ goods: { goodsIds: ['a'] }, schedule: { leadTime: 'ten minutes' } }, /spec\.schedule\.leadTime/],
      [{ goods: { goodsIds: ['a'] }, policy: { chunkSize: 0 } }, /spec\.policy\.chunkSize/],
      [{ goods: { goodsIds: ['a'] }, policy: { mode: 'Replace' as never } }, /spec\.policy\.mode/],
      [{ goods: { goodsIds: ['a'] }, target: { shards: 0 } }, /spec\.target\.shards/],
    ]
    for (const [spec, message] of cases) {
      const decision = decideWarmup({ ...warmup(), spec }, T0, timing)
      assert.equal(decision.status.phase, 'Failed', JSON.stringify(spec))
      const ready = findCondition(decision.status.conditions, 'Ready')
      assert.equal(ready?.reason, 'InvalidSpec')
      assert.match(ready?.message ?? '', message)
    }
  })

  test('deletion lets go of the finalizer and touches nothing', () => {
    const resource = warmup({}, undefined, {
      deletionTimestamp: '2030-06-01T11:00:00Z',
      finalizers: ['timedeal.io/cleanup', 'other/keep'],
    })
    const decision = decideWarmup(resource, T0, timing)
    assert.deepEqual(decision.finalizers, ['other/keep'])
    assert.equal(decision.step.kind, 'none')
  })

  test('Events are raised for a change of phase, not for a steady state', () => {
    const first = decideWarmup(warmup(), T0, timing).status
    assert.deepEqual(
      eventsBetween(undefined, first).map((event) => event.reason),
      ['Scheduled'],
    )
    assert.deepEqual(eventsBetween(first, first), [])
    const failed = statusAfterFailure(warmup(), { kind: 'redis', message: 'down' }, T0, timing).status
    assert.equal(eventsBetween(first, failed)[0]?.type, 'Warning')
  })

  test('durations read like Go durations', () => {
    assert.equal(parseDuration('10m'), 600_000)
    assert.equal(parseDuration('1h30m'), 5_400_000)
    assert.equal(parseDuration('250ms'), 250)
    assert.equal(parseDuration('0s'), 0)
    assert.equal(parseDuration('10'), undefined)
    assert.equal(parseDuration('-1m'), undefined)
  })
})
