// Which changes the manager queues: the echo of a status write asks for no reconcile.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AnyResource } from '../../src/runtime/controller.ts'
import { onlyStatusChanged } from '../../src/runtime/manager.ts'

const base: AnyResource = {
  apiVersion: 'timedeal.io/v1alpha1',
  kind: 'KafkaTopic',
  metadata: {
    name: 'orders',
    namespace: 'shop',
    generation: 3,
    resourceVersion: '10',
    finalizers: ['timedeal.io/cleanup'],
    annotations: { a: '1' },
    labels: { team: 'shop' },
  },
  spec: { partitions: 3 },
  status: { observedGeneration: 2 },
}

const changed = (
  metadata: Partial<AnyResource['metadata']>,
  status: unknown = { observedGeneration: 3 },
): AnyResource => ({
  ...base,
  metadata: { ...base.metadata, resourceVersion: '11', ...metadata },
  status,
})

test('a change of status alone (the echo of our own write) is not queued again', () => {
  assert.equal(onlyStatusChanged(base, changed({})), true)
})

test('a new generation, annotation, label, finalizer or a deletion is queued', () => {
  assert.equal(onlyStatusChanged(base, changed({ generation: 4 })), false)
  assert.equal(onlyStatusChanged(base, changed({ annotations: { a: '1', 'timedeal.io/paused': 'true' } })), false)
  assert.equal(onlyStatusChanged(base, changed({ labels: {} })), false)
  assert.equal(onlyStatusChanged(base, changed({ finalizers: [] })), false)
  assert.equal(onlyStatusChanged(base, changed({ deletionTimestamp: '2026-12-02T00:00:00Z' })), false)
})
