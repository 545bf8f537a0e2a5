// The KafkaTopic reconcile against the real broker: what a resource asks for is what Kafka ends
// up with, what Kafka cannot do is refused in status, and admin calls are batched across resources.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { loadSettings } from '@timedeal/platform'
import { eventually, rawKafka, testKafkaNames, testLogger, uniqueName } from '@timedeal/platform/testing'
import type { Admin } from 'kafkajs'
import { applyCommand } from '../src/cli/apply.ts'
import { findCondition } from '../src/conditions.ts'
import { catalogManifestDir, catalogTopicManifests } from '../src/kafka-topic/catalog.ts'
import { reconcileKafkaTopic } from '../src/kafka-topic/controller.ts'
import { connectKafkaTopicAdmin, type KafkaTopicAdmin } from '../src/kafka-topic/kafka-admin.ts'
import type { KafkaTopic, KafkaTopicSpec } from '../src/kafka-topic/types.ts'
import { FINALIZER } from '../src/runtime/controller.ts'
import { checkSettings, settingsSchema } from '../src/settings.ts'
import { topicOnBroker } from './runtime/kube.ts'

const settings = checkSettings(loadSettings(settingsSchema))
let raw: Admin
let admin: KafkaTopicAdmin
/** Every topic of this file lives under its own prefix inside the run's. */
const prefix = testKafkaNames.topic(`${uniqueName('kt')}.`)

before(async () => {
  raw = rawKafka('kafka-topics-test').admin()
  await raw.connect()
  admin = await connectKafkaTopicAdmin(settings.KAFKA_BROKERS, 'kafka-topics-test', { lingerMs: 20 })
})

after(async () => {
  const mine = (await raw.listTopics()).filter((topic) => topic.startsWith(prefix))
  if (mine.length > 0) await raw.deleteTopics({ topics: mine, timeout: 30_000 })
  await admin.close()
  await raw.disconnect()
})

const resource = (name: string, spec: KafkaTopicSpec, extra: Partial<KafkaTopic['metadata']> = {}): KafkaTopic => ({
  apiVersion: 'timedeal.io/v1alpha1',
  kind: 'KafkaTopic',
  metadata: { name, namespace: 'shop', generation: 1, creationTimestamp: new Date().toISOString(), ...extra },
  spec,
})

const events: string[] = []
const ctx = (peers: KafkaTopic[] = []) => ({
  now: () => Date.now(),
  logger: testLogger,
  event: (_type: 'Normal' | 'Warning', reason: string) => void events.push(reason),
  peers: () => peers,
})

/** Reconciles like the runtime does: the returned status and finalizers are stored on the object. */
async function reconcile(topic: KafkaTopic, peers: KafkaTopic[] = []): Promise<KafkaTopic> {
  const outcome = await reconcileKafkaTopic(topic, ctx(peers), { admin, topicPrefix: prefix })
  return {
    ...topic,
    status: outcome.status,
    metadata: { ...topic.metadata, finalizers: outcome.finalizers ?? topic.metadata.finalizers },
  }
}

const onBroker = (topic: string) => topicOnBroker(raw, topic)

const ready = (topic: KafkaTopic) => findCondition(topic.status?.conditions, 'Ready')

test('creates, raises, reconfigures to exactly the spec (a removed key goes back to the default) and deletes a topic', async () => {
  const name = `${prefix}life`
  let topic = resource('life', {
    partitions: 2,
    config: { 'retention.ms': '3600000', 'cleanup.policy': 'compact' },
    deletionPolicy: 'Delete',
  })
  topic = await reconcile(topic)
  assert.equal(ready(topic)?.status, 'True', ready(topic)?.message)
  assert.deepEqual(topic.metadata.finalizers, [FINALIZER])
  let broker = await onBroker(name)
  assert.equal(broker.partitions, 2)
  assert.equal(broker.config['retention.ms'], '3600000')
  assert.equal(broker.config['cleanup.policy'], 'compact')

  topic = await reconcile({ ...topic, spec: { ...topic.spec, partitions: 5, config: { 'retention.ms': '7200000' } } })
  assert.equal(ready(topic)?.status, 'True', ready(topic)?.message)
  broker = await onBroker(name)
  assert.equal(broker.partitions, 5)
  assert.equal(broker.config['retention.ms'], '7200000')
  assert.equal(broker.config['cleanup.policy'], 'delete', 'a key removed from the spec is back at the broker default')

  const steady = await reconcile(topic)
  assert.deepEqual(steady.status, topic.status, 'a steady state changes nothing in status')

  const deleting = await reconcile({
    ...topic,
    metadata: { ...topic.metadata, deletionTimestamp: new Date().toISOString() },
  })
  assert.deepEqual(deleting.metadata.finalizers, [])
  assert.ok(!(await raw.listTopics()).includes(name), 'the topic is deleted')
  // Deleting again (the topic already gone) still lets go of the resource.
  const again = await reconcile({ ...deleting, metadata: { ...deleting.metadata, finalizers: [FINALIZER] } })
  assert.deepEqual(again.metadata.finalizers, [])
})

test('refuses lowering partitions and changing the replication factor with NotSupported and leaves the topic alone', async () => {
  const name = `${prefix}lower`
  let topic = await reconcile(resource('lower', { partitions: 4 }))
  topic = await reconcile({ ...topic, spec: { partitions: 2, replicationFactor: 3 } })
  assert.equal(ready(topic)?.status, 'False')
  assert.equal(ready(topic)?.reason, 'NotSupported')
  assert.equal((await onBroker(name)).partitions, 4)
  assert.equal(topic.status?.partitions, 4)
})

test('adopts an existing topic and gives a second resource naming it ResourceConflict', async () => {
  const name = `${prefix}shared`
  await raw.createTopics({ topics: [{ topic: name, numPartitions: 1 }] })
  const older = resource('a', { topicName: 'shared', partitions: 3 }, { creationTimestamp: '2026-01-01T00:00:00Z' })
  const younger = resource('b', { topicName: 'shared', partitions: 1, deletionPolicy: 'Delete' })
  const peers = [older, younger]
  const [adopted, refused] = await Promise.all([reconcile(older, peers), reconcile(younger, peers)])
  assert.equal(ready(adopted)?.status, 'True', ready(adopted)?.message)
  assert.equal(ready(refused)?.reason, 'ResourceConflict')
  assert.equal((await onBroker(name)).partitions, 3)
  assert.ok(events.includes('Adopted'))
})

test('a paused resource changes nothing on the broker', async () => {
  const name = `${prefix}paused`
  const topic = await reconcile(resource('paused', { partitions: 1 }))
  const paused = await reconcile({
    ...topic,
    metadata: { ...topic.metadata, annotations: { 'timedeal.io/paused': 'true' } },
    spec: { partitions: 3, config: { 'retention.ms': '1000' } },
  })
  assert.equal(ready(paused)?.reason, 'Paused')
  const broker = await onBroker(name)
  assert.equal(broker.partitions, 1)
  assert.notEqual(broker.config['retention.ms'], '1000')
})

test('describes and creates forty topics reconciled at once in a handful of admin calls, not one per topic', async () => {
  const before = admin.calls()
  const topics = Array.from({ length: 40 }, (_, index) => resource(`many-${index}`, { partitions: 1 }))
  const results = await Promise.all(topics.map((topic) => reconcile(topic)))
  assert.ok(results.every((topic) => ready(topic)?.status === 'True'))
  const calls = admin.calls() - before
  // One metadata listing, one createTopics, perhaps the broker's config: never forty of anything.
  assert.ok(calls <= 6, `${calls} admin calls for 40 topics`)
  await eventually(
    async () => {
      const onKafka = new Set(await raw.listTopics())
      return topics.every((topic) => onKafka.has(`${prefix}${topic.metadata.name}`)) || undefined
    },
    10_000,
    'the forty topics on the broker',
  )
})

test('one topic Kafka refuses in a batch gets KafkaError while the others of the batch are created', async () => {
  const good = Array.from({ length: 3 }, (_, index) => resource(`mixed-${index}`, { partitions: 1 }))
  const bad = resource('mixed-bad', { partitions: 1, config: { 'cleanup.policy': 'shred' } })
  const results = await Promise.all([...good, bad].map((topic) => reconcile(topic)))
  for (const topic of results.slice(0, 3)) assert.equal(ready(topic)?.status, 'True', ready(topic)?.message)
  const refused = results[3]
  assert.equal(ready(refused as KafkaTopic)?.reason, 'KafkaError')
  await eventually(
    async () => {
      const onKafka = new Set(await raw.listTopics())
      return good.every((topic) => onKafka.has(`${prefix}${topic.metadata.name}`)) || undefined
    },
    10_000,
    'the good topics of the batch',
  )
  assert.ok(!(await raw.listTopics()).includes(`${prefix}mixed-bad`))
})

test('reads whether the broker auto-creates topics (the local broker does not, so no warning is set)', async () => {
  assert.equal(await admin.brokerAutoCreates(), false)
  const topic = await reconcile(resource('no-warning', { partitions: 1 }))
  assert.equal(findCondition(topic.status?.conditions, 'BrokerAutoCreatesTopics'), undefined)
})

test('the generated topic manifests never drift from the contracts catalog', () => {
  const expected = catalogTopicManifests()
  const files = readdirSync(catalogManifestDir).filter((file) => file.endsWith('.yaml'))
  assert.deepEqual(files.sort(), [...expected.keys()].sort(), 'run hack/generate-topic-manifests.ts')
  for (const [file, text] of expected) {
    assert.equal(
      readFileSync(join(catalogManifestDir, file), 'utf8'),
      text,
      `${file}: run hack/generate-topic-manifests.ts`,
    )
  }
})

test('apply creates the catalog topics from the generated manifests under a prefix, and a second apply changes nothing and says they are unchanged, not adopted', async () => {
  const applyPrefix = `${prefix}apply.`
  const lines: string[] = []
  const print = (line: string) => void lines.push(line)
  const code = await applyCommand(
    { files: [catalogManifestDir], wait: false, topicPrefix: applyPrefix },
    settings,
    testLogger,
    print,
  )
  assert.equal(code, 0, lines.join('\n'))
  const expected = [...catalogTopicManifests().keys()].map((file) => `${applyPrefix}${file.replace(/\.yaml$/, '')}`)
  await eventually(
    async () => {
      const onKafka = new Set(await raw.listTopics())
      return expected.every((topic) => onKafka.has(topic)) || undefined
    },
    10_000,
    `the catalog topics under ${applyPrefix}`,
  )
  assert.equal((await onBroker(`${applyPrefix}timedeal.orders`)).partitions, 6)
  const second: string[] = []
  assert.equal(
    await applyCommand(
      { files: [catalogManifestDir], wait: false, topicPrefix: applyPrefix },
      settings,
      testLogger,
      (line) => void second.push(line),
    ),
    0,
  )
  assert.ok(!second.some((line) => /created|raised|set the config/.test(line)), second.join('\n'))
  // A topic already as the file says is reported unchanged, not adopted again on every run.
  const perTopic = second.filter((line) => line.startsWith('kafkatopic/'))
  assert.equal(perTopic.length, expected.length, second.join('\n'))
  assert.ok(
    perTopic.every((line) => /\(unchanged, in sync\)$/.test(line) && !/adopted/.test(line)),
    second.join('\n'),
  )
})

test('apply refuses a file with a resource it does not reconcile, naming the file', async () => {
  const lines: string[] = []
  const code = await applyCommand(
    { files: [join(import.meta.dirname, 'fixtures/sample-crd.yaml')], wait: false, topicPrefix: prefix },
    settings,
    testLogger,
    (line) => void lines.push(line),
  )
  assert.equal(code, 1)
  assert.match(lines.join('\n'), /sample-crd\.yaml.*is not reconciled here/)
})
