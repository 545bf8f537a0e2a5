// What a reconcile's outcome does on the real API server: status through the status subresource
// and only when it changed, finalizers without losing anyone else's, Events counted not repeated;
// and the manager end to end with a stand-in controller (no Kafka needed).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { eventually, testLogger } from '@timedeal/platform/testing'
import { Registry } from 'prom-client'
import { kubeTime } from '../../src/conditions.ts'
import {
  type AnyController,
  type AnyResource,
  FINALIZER,
  GROUP,
  type ReconcileOutcome,
  VERSION,
} from '../../src/runtime/controller.ts'
import { Manager, type ManagerSettings } from '../../src/runtime/manager.ts'
import { EventRecorder, ResourceWriter } from '../../src/runtime/status.ts'
import { adminKubeConfig, ensureCrds, freshNamespace } from './kube.ts'

let admin: KubeConfig
const plural = 'kafkatopics'
const namespaces: { drop(): Promise<void> }[] = []

before(async () => {
  await ensureCrds()
  admin = adminKubeConfig()
})

after(async () => {
  for (const namespace of namespaces) await namespace.drop()
})

async function namespaceFor(purpose: string): Promise<string> {
  const namespace = await freshNamespace(admin, purpose)
  namespaces.push(namespace)
  return namespace.name
}

const custom = () => admin.makeApiClient(CustomObjectsApi)

async function createTopic(namespace: string, name: string, finalizers?: string[]): Promise<AnyResource> {
  return (await custom().createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural,
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'KafkaTopic',
      metadata: { name, ...(finalizers ? { finalizers } : {}) },
      spec: { partitions: 1, deletionPolicy: 'Retain' },
    },
  })) as AnyResource
}

const read = async (namespace: string, name: string) =>
  (await custom().getNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name })) as AnyResource

const readyStatus = (generation: number, message = 'topic matches the spec') => ({
  observedGeneration: generation,
  conditions: [
    {
      type: 'Ready',
      status: 'True',
      reason: 'Reconciled',
      message,
      observedGeneration: generation,
      lastTransitionTime: kubeTime(Date.UTC(2026, 0, 1)),
    },
  ],
})

test('status is written through the subresource only when it changed, so a steady state writes nothing', async () => {
  const namespace = await namespaceFor('status')
  const writer = new ResourceWriter(admin, plural)
  const created = await createTopic(namespace, 'steady')

  const first = await writer.write(created, { status: readyStatus(1), finalizers: [FINALIZER] })
  assert.deepEqual(first, { statusWritten: true, finalizersWritten: true, gone: false })
  const stored = await read(namespace, 'steady')
  assert.deepEqual(stored.status, readyStatus(1))
  assert.deepEqual(stored.metadata.finalizers, [FINALIZER])
  assert.equal(stored.metadata.generation, 1, 'writing status does not bump the generation')

  // The same outcome again, its keys in another order: nothing is written.
  const reordered = { conditions: readyStatus(1).conditions, observedGeneration: 1 }
  const again = await writer.write(stored, { status: reordered, finalizers: [FINALIZER] })
  assert.deepEqual(again, { statusWritten: false, finalizersWritten: false, gone: false })
  assert.equal((await read(namespace, 'steady')).metadata.resourceVersion, stored.metadata.resourceVersion)

  // A field the new status no longer has is gone afterwards (not merged into the old one).
  const withWarning = await writer.write(stored, { status: { ...readyStatus(1), topicName: 'shop.orders' } })
  assert.equal(withWarning.statusWritten, true)
  const warned = await read(namespace, 'steady')
  assert.equal(warned.status.topicName, 'shop.orders')
  await writer.write(warned, { status: readyStatus(1) })
  assert.equal((await read(namespace, 'steady')).status.topicName, undefined)
})

test('a finalizer write never drops a finalizer someone else added meanwhile; the retry keeps both', async () => {
  const namespace = await namespaceFor('finalizers')
  const writer = new ResourceWriter(admin, plural)
  for (const [name, before] of [
    ['absent', undefined],
    ['present', ['example.com/first']],
  ] as const) {
    const stale = await createTopic(namespace, name, before ? [...before] : undefined)
    await custom().patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural,
        namespace,
        name,
        body: { metadata: { finalizers: [...(before ?? []), 'example.com/other'] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    const outcome: ReconcileOutcome<unknown> = { status: readyStatus(1), finalizers: [...(before ?? []), FINALIZER] }
    await assert.rejects(writer.write(stale, outcome), (error: unknown) => error instanceof ApiException)
    const fresh = await read(namespace, name)
    assert.deepEqual(fresh.metadata.finalizers, [...(before ?? []), 'example.com/other'], `${name}: nothing lost`)
    await writer.write(fresh, { ...outcome, finalizers: [...(fresh.metadata.finalizers ?? []), FINALIZER] })
    assert.deepEqual((await read(namespace, name)).metadata.finalizers, [
      ...(before ?? []),
      'example.com/other',
      FINALIZER,
    ])
  }
})

test('a repeated Event raises the count of the one posted instead of adding another', async () => {
  const namespace = await namespaceFor('events')
  const topic = await createTopic(namespace, 'noisy')
  const recorder = new EventRecorder({
    kubeConfig: admin,
    component: 'timedeal-operator',
    instance: 'test',
    logger: testLogger,
  })
  await recorder.record(topic, { type: 'Warning', reason: 'NotSupported', message: 'partitions cannot be lowered' })
  await recorder.record(topic, { type: 'Warning', reason: 'NotSupported', message: 'partitions cannot be lowered' })
  await recorder.record(topic, { type: 'Normal', reason: 'Created', message: 'topic created' })
  const events = (await admin.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace })).items
  const byReason = Object.fromEntries(events.map((event) => [event.reason, event]))
  assert.equal(events.length, 2)
  assert.equal(byReason.NotSupported?.count, 2)
  assert.equal(byReason.NotSupported?.type, 'Warning')
  assert.equal(byReason.NotSupported?.involvedObject.uid, topic.metadata.uid)
  assert.equal(byReason.Created?.count, 1)
})

const managerSettings = (namespace: string): ManagerSettings => ({
  WATCH_NAMESPACES: [namespace],
  LEADER_ELECTION_ENABLED: false,
  LEADER_ELECTION_LEASE_NAME: 'unused',
  LEADER_ELECTION_NAMESPACE: namespace,
  LEADER_ELECTION_LEASE_DURATION_MS: 4000,
  LEADER_ELECTION_RENEW_DEADLINE_MS: 3000,
  LEADER_ELECTION_RETRY_PERIOD_MS: 500,
  RECONCILE_CONCURRENCY: 4,
  RECONCILE_RETRY_BASE_MS: 50,
  RECONCILE_RETRY_MAX_MS: 500,
  RECONCILE_RATE_PER_SECOND: 100,
  RECONCILE_BURST: 100,
  RESYNC_PERIOD_MS: 100,
})

test('the manager reconciles a resource to a steady state that writes nothing, retries failures and lets go on deletion', {
  timeout: 60_000,
}, async () => {
  const namespace = await namespaceFor('manager')
  const seen: string[] = []
  let failuresLeft = 2
  const controller: AnyController = {
    kind: 'KafkaTopic',
    plural,
    async reconcile(resource, ctx) {
      seen.push(resource.metadata.name)
      assert.ok(ctx.peers().some((peer) => peer.metadata.name === resource.metadata.name))
      if (resource.metadata.name === 'flaky' && failuresLeft > 0) {
        failuresLeft -= 1
        throw new Error('the broker is unreachable')
      }
      if (resource.metadata.deletionTimestamp) {
        return {
          status: resource.status,
          finalizers: (resource.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
        }
      }
      const status = readyStatus(resource.metadata.generation ?? 0)
      if (JSON.stringify(resource.status) !== JSON.stringify(status)) ctx.event('Normal', 'Reconciled', 'ready')
      return { status, finalizers: [FINALIZER] }
    },
  }
  const metrics = new Registry()
  const manager = new Manager({
    kubeConfig: admin,
    controllers: [controller],
    settings: managerSettings(namespace),
    logger: testLogger,
    metrics,
    identity: 'test',
  })
  try {
    manager.start()
    await createTopic(namespace, 'steady')
    await createTopic(namespace, 'flaky')
    const steady = await eventually(
      async () => {
        const topic = await read(namespace, 'steady')
        return topic.status?.observedGeneration === 1 && topic.metadata.finalizers?.includes(FINALIZER)
          ? topic
          : undefined
      },
      15_000,
      'steady to be reconciled',
    )
    // The resync brings it back every 100 ms; none of those turns writes anything.
    const turns = seen.filter((name) => name === 'steady').length
    await eventually(
      async () => (seen.filter((name) => name === 'steady').length >= turns + 5 ? true : undefined),
      10_000,
      'resyncs',
    )
    assert.equal((await read(namespace, 'steady')).metadata.resourceVersion, steady.metadata.resourceVersion)
    const events = (await admin.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace })).items
    assert.equal(events.filter((event) => event.involvedObject.name === 'steady').length, 1)

    await eventually(
      async () => ((await read(namespace, 'flaky')).status?.observedGeneration === 1 ? true : undefined),
      15_000,
      'flaky after its retries',
    )
    const errors = await metrics.getSingleMetricAsString('operator_reconcile_errors_total')
    assert.match(errors, /operator_reconcile_errors_total\{kind="KafkaTopic"\} 2/)

    await custom().deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name: 'steady' })
    await eventually(
      async () => {
        const gone = await read(namespace, 'steady').then(
          () => false,
          (error: unknown) => error instanceof ApiException && error.code === 404,
        )
        return gone ? true : undefined
      },
      15_000,
      'steady to be let go',
    )
  } finally {
    await manager.stop()
  }
  const after = seen.length
  await sleep(300)
  assert.equal(seen.length, after, 'a stopped manager reconciles nothing more')
})
