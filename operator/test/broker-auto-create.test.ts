// A broker with auto.create.topics.enable=true (a private one: the shared broker has it off) makes
// a topic with the broker's defaults for any client that names it first. The operator says so in
// status and `apply` warns; the topic itself is still created as the spec says.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  createPrivateKafka,
  type PrivateKafka,
  privateKafkaAvailable,
  testLogger,
  uniqueName,
} from '@timedeal/platform/testing'
import { applyTopicResources } from '../src/cli/apply.ts'
import { findCondition } from '../src/conditions.ts'
import { catalogTopicResource } from '../src/kafka-topic/catalog.ts'
import { reconcileKafkaTopic } from '../src/kafka-topic/controller.ts'
import { connectKafkaTopicAdmin, type KafkaTopicAdmin } from '../src/kafka-topic/kafka-admin.ts'
import { AUTO_CREATE_CONDITION, type KafkaTopic } from '../src/kafka-topic/types.ts'

describe('a broker that auto-creates topics (a private broker with auto.create.topics.enable=true)', {
  skip: privateKafkaAvailable() ? false : 'the Kafka jars are not installed (hack/infra.sh up kafka installs them)',
}, () => {
  let kafka: PrivateKafka
  let admin: KafkaTopicAdmin

  before(async () => {
    kafka = await createPrivateKafka({ autoCreateTopics: true })
    await kafka.start()
    admin = await connectKafkaTopicAdmin(kafka.brokers, 'auto-create-test', { lingerMs: 20 })
  })

  after(async () => {
    await admin?.close()
    await kafka?.destroy()
  })

  test('a KafkaTopic gets BrokerAutoCreatesTopics=True beside Ready, and apply prints the warning', async () => {
    assert.equal(await admin.brokerAutoCreates(), true)
    const resource: KafkaTopic = {
      ...catalogTopicResource({ name: uniqueName('auto'), partitions: 3, replicationFactor: 1, config: {} }),
      metadata: { name: 'auto-created', namespace: 'shop', generation: 1, creationTimestamp: new Date().toISOString() },
    }
    const outcome = await reconcileKafkaTopic(
      resource,
      { now: () => Date.now(), logger: testLogger, event: () => undefined, peers: () => [resource] },
      { admin, topicPrefix: '' },
    )
    assert.equal(findCondition(outcome.status.conditions, 'Ready')?.status, 'True')
    const warning = findCondition(outcome.status.conditions, AUTO_CREATE_CONDITION)
    assert.equal(warning?.status, 'True', JSON.stringify(outcome.status.conditions))
    assert.match(warning?.message ?? '', /auto\.create\.topics\.enable/)

    const lines: string[] = []
    const target = { brokers: kafka.brokers, clientId: 'auto-create-test', topicPrefix: '' }
    const notReady = await applyTopicResources([resource], target, (line) => lines.push(line))
    assert.equal(notReady, 0, lines.join('\n'))
    assert.ok(
      lines.some((line) => /^warning: .*auto\.create\.topics\.enable=true/.test(line)),
      lines.join('\n'),
    )
  })
})
