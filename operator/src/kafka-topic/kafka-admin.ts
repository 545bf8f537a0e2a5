/**
 * The KafkaTopic controller's view of Kafka: describe topics and apply the planned actions, with
 * calls from many resources batched (one metadata and one describeConfigs call per batch; one
 * createTopics, createPartitions, alterConfigs or deleteTopics call per batch of that action).
 */
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel'
import kafkajs, { type Admin, Kafka, logLevel } from 'kafkajs'
import { Counter, type Registry } from 'prom-client'

// A CommonJS export Node cannot name statically.
const { ConfigResourceTypes } = kafkajs

import { batcher, eachOnFailure } from './batcher.ts'
import type { TopicAction } from './plan.ts'
import type { ObservedTopic } from './types.ts'

export interface TopicAdminOptions {
  /** How long to wait for more calls before sending a batch. */
  lingerMs?: number
  maxBatch?: number
  /** How long the broker's auto.create.topics.enable is trusted before it is read again. */
  brokerConfigTtlMs?: number
  /** Where `operator_kafka_admin_requests_total` is counted. */
  metrics?: Registry
}

export interface KafkaTopicAdmin {
  describe(topic: string): Promise<ObservedTopic | undefined>
  /** Whether the broker creates topics on first use; undefined when it could not be read. */
  brokerAutoCreates(): Promise<boolean | undefined>
  /** Applies one resource's actions in order (each batched with other resources' actions). */
  apply(actions: readonly TopicAction[]): Promise<void>
  /** Admin requests sent to Kafka so far. */
  calls(): number
  close(): Promise<void>
}

class LeadersNotKnown extends Error {
  constructor(topics: readonly string[]) {
    super(`no leader known yet for ${topics.join(', ')}`)
  }
}

/** About ten seconds in all: as long as kafkajs waits for new topics' leaders. */
const leadersWait = retry(
  handleWhen(
    (error) =>
      error instanceof LeadersNotKnown || errorTypeIs(error, 'UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE'),
  ),
  { maxAttempts: 25, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }) },
)

/** Kafka's error type names carried on kafkajs errors (or their cause). */
const errorTypeIs = (error: unknown, ...types: string[]): boolean => {
  const { type, cause, errors } = error as { type?: string; cause?: { type?: string }; errors?: unknown[] }
  if (Array.isArray(errors) && errors.length > 0) return errors.every((inner) => errorTypeIs(inner, ...types))
  return types.includes(type ?? '') || types.includes(cause?.type ?? '')
}

/** `ConfigSource.TOPIC_CONFIG`: a config set on the topic itself, not a broker default. */
const TOPIC_CONFIG_SOURCE = 1

export function createKafkaTopicAdmin(admin: Admin, options: TopicAdminOptions = {}): KafkaTopicAdmin {
  const lingerMs = options.lingerMs ?? 20
  const maxBatch = options.maxBatch ?? 500
  const batchOptions = { lingerMs, maxBatch }
  let calls = 0
  const requests = options.metrics
    ? new Counter({
        name: 'operator_kafka_admin_requests_total',
        help: 'Admin requests the KafkaTopic controller sent to Kafka (batched across resources).',
        registers: [options.metrics],
      })
    : undefined
  const counted = <T>(call: Promise<T>): Promise<T> => {
    calls++
    requests?.inc()
    return call
  }

  const describe = batcher<string, ObservedTopic | undefined>(async (names) => {
    // Without topic names the metadata request lists every topic and never creates one.
    const { topics } = await counted(admin.fetchTopicMetadata())
    const partitionsOf = new Map(topics.map((topic) => [topic.name, topic.partitions]))
    const existing = [...new Set(names.filter((name) => partitionsOf.has(name)))]
    const configs = new Map<string, Record<string, string>>()
    if (existing.length > 0) {
      const described = await counted(
        admin.describeConfigs({
          includeSynonyms: false,
          resources: existing.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
        }),
      )
      for (const resource of described.resources) {
        const own = resource.configEntries.filter((entry) =>
          entry.configSource === undefined ? !entry.isDefault : entry.configSource === TOPIC_CONFIG_SOURCE,
        )
        configs.set(
          resource.resourceName,
          Object.fromEntries(own.map((entry) => [entry.configName, entry.configValue])),
        )
      }
    }
    return names.map((name) => {
      const partitions = partitionsOf.get(name)
      if (partitions === undefined) return undefined
      return {
        name,
        partitions: partitions.length,
        replicationFactor: Math.max(0, ...partitions.map((partition) => partition.replicas.length)),
        config: configs.get(name) ?? {},
      }
    })
  }, batchOptions)

  const create = batcher<Extract<TopicAction, { kind: 'create' }>, undefined>(
    (items) =>
      eachOnFailure(
        items,
        (group) =>
          counted(
            admin.createTopics({
              waitForLeaders: false,
              topics: group.map((item) => ({
                topic: item.topic,
                numPartitions: item.partitions,
                replicationFactor: item.replicationFactor,
                configEntries: Object.entries(item.config).map(([name, value]) => ({ name, value })),
              })),
            }),
          ).then(() => untilLeadersKnown(group.map((item) => item.topic))),
        (error) => errorTypeIs(error, 'TOPIC_ALREADY_EXISTS'),
      ),
    batchOptions,
  )

  /**
   * Right after a create, the broker answering metadata may not know the new topics yet
   * (UNKNOWN_TOPIC_OR_PARTITION) or their leaders. kafkajs's own wait (`waitForLeaders`) gives up
   * on the first of these and reports a topic it did create as failed, so the wait is done here.
   */
  async function untilLeadersKnown(topics: readonly string[]): Promise<void> {
    await leadersWait.execute(async () => {
      const { topics: known } = await counted(admin.fetchTopicMetadata({ topics: [...topics] }))
      const led = known.filter((topic) => topic.partitions.every((partition) => partition.leader >= 0))
      if (led.length < topics.length) throw new LeadersNotKnown(topics.filter((t) => !led.some((k) => k.name === t)))
    })
  }

  const createPartitions = batcher<Extract<TopicAction, { kind: 'createPartitions' }>, undefined>(
    (items) =>
      eachOnFailure(items, (group) =>
        counted(
          admin.createPartitions({ topicPartitions: group.map((item) => ({ topic: item.topic, count: item.count })) }),
        ),
      ),
    batchOptions,
  )

  const alterConfig = batcher<Extract<TopicAction, { kind: 'alterConfig' }>, undefined>(
    (items) =>
      eachOnFailure(items, (group) =>
        counted(
          admin.alterConfigs({
            validateOnly: false,
            resources: group.map((item) => ({
              type: ConfigResourceTypes.TOPIC,
              name: item.topic,
              configEntries: Object.entries(item.config).map(([name, value]) => ({ name, value })),
            })),
          }),
        ),
      ),
    batchOptions,
  )

  const remove = batcher<Extract<TopicAction, { kind: 'delete' }>, undefined>(
    (items) =>
      eachOnFailure(
        items,
        (group) => counted(admin.deleteTopics({ topics: group.map((item) => item.topic) })),
        // A topic already gone counts as deleted.
        (error) => errorTypeIs(error, 'UNKNOWN_TOPIC_OR_PARTITION'),
      ),
    batchOptions,
  )

  const brokerConfigTtlMs = options.brokerConfigTtlMs ?? 60_000
  let autoCreate: { value: boolean | undefined; readAt: number } | undefined
  async function readAutoCreate(): Promise<boolean | undefined> {
    try {
      const cluster = await counted(admin.describeCluster())
      const described = await counted(
        admin.describeConfigs({
          includeSynonyms: false,
          resources: [
            {
              type: ConfigResourceTypes.BROKER,
              name: String(cluster.controller ?? cluster.brokers[0]?.nodeId ?? 0),
              configNames: ['auto.create.topics.enable'],
            },
          ],
        }),
      )
      const entry = described.resources[0]?.configEntries.find(
        (config) => config.configName === 'auto.create.topics.enable',
      )
      return entry === undefined ? undefined : entry.configValue === 'true'
    } catch {
      return undefined
    }
  }

  return {
    describe: (topic) => describe.add(topic),
    async brokerAutoCreates() {
      if (autoCreate === undefined || Date.now() - autoCreate.readAt > brokerConfigTtlMs) {
        autoCreate = { value: await readAutoCreate(), readAt: Date.now() }
      }
      return autoCreate.value
    },
    async apply(actions) {
      for (const action of actions) {
        if (action.kind === 'create') await create.add(action)
        else if (action.kind === 'createPartitions') await createPartitions.add(action)
        else if (action.kind === 'alterConfig') await alterConfig.add(action)
        else await remove.add(action)
      }
    },
    calls: () => calls,
    close: () => admin.disconnect(),
  }
}

/** A connected admin client for the operator's brokers. */
export async function connectKafkaTopicAdmin(
  brokers: readonly string[],
  clientId: string,
  options: TopicAdminOptions = {},
): Promise<KafkaTopicAdmin> {
  const kafka = new Kafka({ clientId, brokers: [...brokers], logLevel: logLevel.NOTHING, retry: { retries: 5 } })
  const admin = kafka.admin()
  await admin.connect()
  return createKafkaTopicAdmin(admin, options)
}
