import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findCondition } from '../../src/conditions.ts'
import { planKafkaTopic, type TopicWorld } from '../../src/kafka-topic/plan.ts'
import type { KafkaTopic, KafkaTopicSpec, ObservedTopic } from '../../src/kafka-topic/types.ts'
import { FINALIZER } from '../../src/runtime/controller.ts'

const now = Date.parse('2026-03-01T10:00:00Z')

const topic = (name: string, spec: KafkaTopicSpec, extra: Partial<KafkaTopic['metadata']> = {}): KafkaTopic => ({
  apiVersion: 'timedeal.io/v1alpha1',
  kind: 'KafkaTopic',
  metadata: { name, namespace: 'shop', generation: 1, creationTimestamp: '2026-03-01T09:00:00Z', ...extra },
  spec,
})

const world = (observed: ObservedTopic | undefined, extra: Partial<TopicWorld> = {}): TopicWorld => ({
  observed,
  peers: [],
  brokerAutoCreates: false,
  topicPrefix: 'p.',
  now,
  ...extra,
})

/** Applies a plan's outcome to the resource and the broker, as the controller and Kafka would. */
function settle(resource: KafkaTopic, observed: ObservedTopic | undefined, extra: Partial<TopicWorld> = {}) {
  const plan = planKafkaTopic(resource, world(observed, extra))
  let next = observed
  for (const action of plan.actions) {
    if (action.kind === 'create')
      next = {
        name: action.topic,
        partitions: action.partitions,
        replicationFactor: action.replicationFactor,
        config: action.config,
      }
    if (action.kind === 'createPartitions' && next) next = { ...next, partitions: action.count }
    if (action.kind === 'alterConfig' && next) next = { ...next, config: action.config }
    if (action.kind === 'delete') next = undefined
  }
  const updated = {
    ...resource,
    status: plan.status,
    metadata: { ...resource.metadata, finalizers: plan.finalizers ?? resource.metadata.finalizers },
  }
  return { plan, resource: updated, observed: next }
}

const ready = (resource: KafkaTopic) => findCondition(resource.status?.conditions, 'Ready')

test('creates a missing topic under the prefix, and a second reconcile does nothing and writes the same status', () => {
  const first = settle(topic('orders', { partitions: 3, config: { 'retention.ms': '1000' } }), undefined)
  assert.deepEqual(first.plan.actions, [
    { kind: 'create', topic: 'p.orders', partitions: 3, replicationFactor: 1, config: { 'retention.ms': '1000' } },
  ])
  assert.equal(ready(first.resource)?.status, 'True')
  const second = settle(first.resource, first.observed)
  assert.deepEqual(second.plan.actions, [])
  assert.deepEqual(second.plan.status, first.resource.status)
  assert.deepEqual(second.plan.events, [])
})

test('raises partitions and writes the whole config so a key removed from the spec goes back to the default', () => {
  const observed = {
    name: 'p.t',
    partitions: 2,
    replicationFactor: 1,
    config: { 'retention.ms': '1000', 'cleanup.policy': 'compact' },
  }
  const { plan } = settle(topic('t', { partitions: 4, config: { 'retention.ms': '2000' } }), observed)
  assert.deepEqual(plan.actions, [
    { kind: 'createPartitions', topic: 'p.t', count: 4 },
    { kind: 'alterConfig', topic: 'p.t', config: { 'retention.ms': '2000' } },
  ])
})

test('refuses to lower partitions or change the replication factor with NotSupported instead of acting', () => {
  const observed = { name: 'p.t', partitions: 6, replicationFactor: 1, config: {} }
  const { plan } = settle(topic('t', { partitions: 3, replicationFactor: 3 }), observed)
  assert.deepEqual(plan.actions, [])
  const condition = findCondition(plan.status.conditions, 'Ready')
  assert.equal(condition?.status, 'False')
  assert.equal(condition?.reason, 'NotSupported')
  assert.match(condition?.message ?? '', /lower partitions/)
  assert.match(condition?.message ?? '', /replication factor/)
  assert.ok(plan.events.some((event) => event.type === 'Warning' && event.reason === 'NotSupported'))
})

test('refuses a rename of a topic it already owns', () => {
  const owned = { ...topic('t', { partitions: 1, topicName: 'other' }), status: { topicName: 'p.t' } }
  const { plan } = settle(owned, { name: 'p.t', partitions: 1, replicationFactor: 1, config: {} })
  assert.deepEqual(plan.actions, [])
  assert.equal(findCondition(plan.status.conditions, 'Ready')?.reason, 'NotSupported')
})

test('lets the older of two resources naming one topic win and gives the younger ResourceConflict without a finalizer', () => {
  const older = topic(
    'a',
    { partitions: 1, topicName: 'shared', deletionPolicy: 'Delete' },
    { creationTimestamp: '2026-03-01T08:00:00Z' },
  )
  const younger = topic(
    'b',
    { partitions: 2, topicName: 'shared', deletionPolicy: 'Delete' },
    { finalizers: [FINALIZER] },
  )
  const peers = [older, younger]
  const loser = planKafkaTopic(younger, world(undefined, { peers }))
  assert.deepEqual(loser.actions, [])
  assert.equal(findCondition(loser.status.conditions, 'Ready')?.reason, 'ResourceConflict')
  assert.deepEqual(loser.finalizers, [])
  const winner = planKafkaTopic(older, world(undefined, { peers }))
  assert.equal(winner.actions[0]?.kind, 'create')
  assert.deepEqual(winner.finalizers, [FINALIZER])
})

test('holds a finalizer only for deletionPolicy Delete, and deleting removes the topic then the finalizer', () => {
  const retained = planKafkaTopic(topic('t', { partitions: 1 }), world(undefined))
  assert.equal(retained.finalizers, undefined)
  const deleting = topic(
    't',
    { partitions: 1, deletionPolicy: 'Delete' },
    { finalizers: [FINALIZER], deletionTimestamp: '2026-03-01T10:00:00Z' },
  )
  const plan = planKafkaTopic(deleting, world({ name: 'p.t', partitions: 1, replicationFactor: 1, config: {} }))
  assert.deepEqual(plan.actions, [{ kind: 'delete', topic: 'p.t' }])
  assert.deepEqual(plan.finalizers, [])
  const gone = planKafkaTopic(deleting, world(undefined))
  assert.deepEqual(gone.actions, [])
  assert.deepEqual(gone.finalizers, [])
})

test('paused reconciles nothing; unmanaged drops the finalizer and never deletes', () => {
  const paused = topic('t', { partitions: 9 }, { annotations: { 'timedeal.io/paused': 'true' } })
  const pausedPlan = planKafkaTopic(paused, world({ name: 'p.t', partitions: 1, replicationFactor: 1, config: {} }))
  assert.deepEqual(pausedPlan.actions, [])
  assert.equal(findCondition(pausedPlan.status.conditions, 'Ready')?.reason, 'Paused')
  const unmanaged = topic(
    't',
    { partitions: 1, deletionPolicy: 'Delete' },
    {
      annotations: { 'timedeal.io/unmanaged': 'true' },
      finalizers: [FINALIZER],
      deletionTimestamp: '2026-03-01T10:00:00Z',
    },
  )
  const plan = planKafkaTopic(unmanaged, world({ name: 'p.t', partitions: 1, replicationFactor: 1, config: {} }))
  assert.deepEqual(plan.actions, [])
  assert.deepEqual(plan.finalizers, [])
})

test('warns in status while the broker auto-creates topics and drops the warning when it stops', () => {
  const warned = settle(topic('t', { partitions: 1 }), undefined, { brokerAutoCreates: true })
  assert.equal(findCondition(warned.resource.status?.conditions, 'BrokerAutoCreatesTopics')?.status, 'True')
  const cleared = settle(warned.resource, warned.observed, { brokerAutoCreates: false })
  assert.equal(findCondition(cleared.resource.status?.conditions, 'BrokerAutoCreatesTopics'), undefined)
})

test('reports a spec the schema refuses as InvalidSpec instead of acting on it', () => {
  const plan = planKafkaTopic(topic('t', { partitions: 0 }), world(undefined))
  assert.deepEqual(plan.actions, [])
  assert.equal(findCondition(plan.status.conditions, 'Ready')?.reason, 'InvalidSpec')
})
