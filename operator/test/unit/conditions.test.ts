import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setCondition } from '../../src/conditions.ts'

const t0 = Date.parse('2026-01-01T00:00:00Z')
const t1 = t0 + 60_000

test('keeps lastTransitionTime when only the reason or message changes, so a steady state writes nothing', () => {
  const first = setCondition([], { type: 'Ready', status: 'True', reason: 'Created', message: 'a' }, t0)
  const second = setCondition(first, { type: 'Ready', status: 'True', reason: 'UpToDate', message: 'b' }, t1)
  assert.equal(second[0]?.lastTransitionTime, '2026-01-01T00:00:00Z')
  assert.equal(second[0]?.reason, 'UpToDate')
  const again = setCondition(second, { type: 'Ready', status: 'True', reason: 'UpToDate', message: 'b' }, t1 + 1)
  assert.deepEqual(again, second)
})

test('moves lastTransitionTime when the status flips and leaves other conditions alone', () => {
  const start = setCondition(
    setCondition([], { type: 'Ready', status: 'True', reason: 'Created', message: '' }, t0),
    { type: 'AutoCreateTopics', status: 'True', reason: 'BrokerAutoCreates', message: '' },
    t0,
  )
  const flipped = setCondition(start, { type: 'Ready', status: 'False', reason: 'NotSupported', message: 'x' }, t1)
  assert.equal(flipped[0]?.lastTransitionTime, '2026-01-01T00:01:00Z')
  assert.deepEqual(flipped[1], start[1])
  assert.equal(flipped.length, 2)
})
