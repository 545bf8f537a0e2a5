// KafkaTopic end to end: resources on the real API server, `timedeal-operator run` as a process,
// topics on the real broker under a prefix of the test's own. What kubectl asks for is what Kafka
// ends up with; what Kafka cannot do is reported in status; deletion honours deletionPolicy.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, rawKafka, testKafkaNames, uniqueName } from '@timedeal/platform/testing'
import type { Admin } from 'kafkajs'
import { type Condition, findCondition } from '../src/conditions.ts'
import type { KafkaTopic, KafkaTopicSpec } from '../src/kafka-topic/types.ts'
import { FINALIZER, GROUP, VERSION } from '../src/runtime/controller.ts'
import {
  adminKubeConfig,
  ensureCrds,
  freshNamespace,
  type OperatorProcess,
  spawnOperator,
  topicOnBroker,
  waitReady,
} from './runtime/kube.ts'

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
const prefix = testKafkaNames.topic(`${uniqueName('ktk')}.`)
const kc = adminKubeConfig()
const custom = kc.makeApiClient(CustomObjectsApi)
let namespace: Awaited<ReturnType<typeof freshNamespace>>
let operator: OperatorProcess | undefined
let raw: Admin

before(async () => {
  await ensureCrds()
  namespace = await freshNamespace(kc, 'topics')
  raw = rawKafka('kafka-topic-kube-test').admin()
  await raw.connect()
  operator = await spawnOperator({
    WATCH_NAMESPACES: namespace.name,
    LEADER_ELECTION_NAMESPACE: namespace.name,
    KAFKA_TOPIC_PREFIX: prefix,
    LOG_LEVEL: 'info',
  })
  await waitReady(operator)
})

after(async () => {
  await operator?.stop()
  await namespace?.drop()
  const mine = (await raw.listTopics()).filter((topic) => topic.startsWith(prefix))
  if (mine.length > 0) await raw.deleteTopics({ topics: mine, timeout: 30_000 })
  await raw.disconnect()
})

const kinds = () => ({ group: GROUP, version: VERSION, plural: 'kafkatopics', namespace: namespace.name })
const api = (name: string) => ({ ...kinds(), name })

const create = (name: string, spec: KafkaTopicSpec, annotations?: Record<string, string>) =>
  custom.createNamespacedCustomObject({
    ...kinds(),
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'KafkaTopic',
      metadata: { name, ...(annotations ? { annotations } : {}) },
      spec,
    },
  })

const patch = (name: string, body: object) => custom.patchNamespacedCustomObject({ ...api(name), body }, mergePatch)

const read = async (name: string) => (await custom.getNamespacedCustomObject(api(name))) as KafkaTopic

/** Waits until the operator has reconciled the current generation and the Ready condition satisfies `check`. */
async function readyWhen(name: string, check: (ready: Condition) => boolean, what: string): Promise<KafkaTopic> {
  return eventually(
    async () => {
      const topic = await read(name)
      const ready = findCondition(topic.status?.conditions, 'Ready')
      const current = topic.status?.observedGeneration === topic.metadata.generation
      return current && ready && check(ready) ? topic : undefined
    },
    30_000,
    `${name}: ${what}`,
  )
}

const onBroker = (topic: string) => topicOnBroker(raw, topic)

const exists = async (topic: string) => (await raw.listTopics()).includes(topic)

test('creates, raises, reconfigures, refuses to lower and deletes a topic as the resource changes', {
  timeout: 180_000,
}, async () => {
  const topic = `${prefix}orders`
  await create('orders', {
    partitions: 2,
    config: { 'retention.ms': '3600000', 'cleanup.policy': 'compact' },
    deletionPolicy: 'Delete',
  })
  const created = await readyWhen('orders', (ready) => ready.status === 'True', 'Ready')
  assert.deepEqual(created.metadata.finalizers, [FINALIZER])
  assert.equal(created.status?.topicName, topic)
  await eventually(
    async () => ((await onBroker(topic)).partitions === 2 ? true : undefined),
    10_000,
    'the topic on the broker',
  )
  assert.equal((await onBroker(topic)).config['cleanup.policy'], 'compact')

  await patch('orders', { spec: { partitions: 4, config: { 'retention.ms': '7200000', 'cleanup.policy': null } } })
  const raised = await readyWhen('orders', (ready) => ready.status === 'True', 'Ready at generation 2')
  assert.equal(raised.status?.partitions, 4)
  const broker = await onBroker(topic)
  assert.equal(broker.partitions, 4)
  assert.equal(broker.config['retention.ms'], '7200000')
  assert.equal(broker.config['cleanup.policy'], 'delete', 'the removed key is back at the broker default')

  await patch('orders', { spec: { partitions: 1 } })
  const lowered = await readyWhen('orders', (ready) => ready.reason === 'NotSupported', 'NotSupported')
  assert.equal(findCondition(lowered.status?.conditions, 'Ready')?.status, 'False')
  assert.equal((await onBroker(topic)).partitions, 4)

  await custom.deleteNamespacedCustomObject(api('orders'))
  await eventually(
    async () =>
      (await read('orders').catch(() => undefined)) === undefined && !(await exists(topic)) ? true : undefined,
    30_000,
    'the resource and its topic gone',
  )
})

test('a second resource naming a topic gets ResourceConflict and its deletion leaves the topic to the first', {
  timeout: 120_000,
}, async () => {
  const topic = `${prefix}shared`
  await create('first', { topicName: 'shared', partitions: 1, deletionPolicy: 'Delete' })
  await readyWhen('first', (ready) => ready.status === 'True', 'Ready')
  await create('second', { topicName: 'shared', partitions: 3, deletionPolicy: 'Delete' })
  const second = await readyWhen('second', (ready) => ready.reason === 'ResourceConflict', 'ResourceConflict')
  assert.ok(!second.metadata.finalizers?.includes(FINALIZER))
  await custom.deleteNamespacedCustomObject(api('second'))
  await eventually(
    async () => ((await read('second').catch(() => undefined)) === undefined ? true : undefined),
    20_000,
    'second gone',
  )
  assert.ok(await exists(topic), 'the first resource keeps its topic')
  assert.equal((await onBroker(topic)).partitions, 1)
})

test('a paused resource is reported Paused and nothing is created; a Retain resource is deleted without touching its topic', {
  timeout: 120_000,
}, async () => {
  await create('quiet', { partitions: 1 }, { 'timedeal.io/paused': 'true' })
  await readyWhen('quiet', (ready) => ready.reason === 'Paused', 'Paused')
  assert.ok(!(await exists(`${prefix}quiet`)))
  await patch('quiet', { metadata: { annotations: { 'timedeal.io/paused': null } } })
  await readyWhen('quiet', (ready) => ready.status === 'True', 'Ready once unpaused')
  const kept = await read('quiet')
  assert.equal(kept.metadata.finalizers, undefined, 'no finalizer is held for deletionPolicy Retain')
  await custom.deleteNamespacedCustomObject(api('quiet'))
  await eventually(
    async () => ((await read('quiet').catch(() => undefined)) === undefined ? true : undefined),
    20_000,
    'quiet gone',
  )
  assert.ok(await exists(`${prefix}quiet`), 'Retain keeps the topic')
})
