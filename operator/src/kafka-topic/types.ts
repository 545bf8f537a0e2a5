/**
 * The KafkaTopic resource (group timedeal.io, version v1alpha1, namespaced): one Kafka topic the
 * operator creates (or adopts) and keeps matching its spec. The CRD schema in
 * `crds/kafkatopics.timedeal.io.yaml` describes exactly these fields; the zod schema below checks
 * the same rules where no API server does (`timedeal-operator apply`).
 */
import { z } from 'zod'
import type { Condition } from '../conditions.ts'
import type { KubeResource } from '../runtime/controller.ts'

export const KAFKA_TOPIC_KIND = 'KafkaTopic'
export const KAFKA_TOPIC_PLURAL = 'kafkatopics'

export const DELETION_POLICIES = ['Retain', 'Delete'] as const
export type DeletionPolicy = (typeof DELETION_POLICIES)[number]

/** Kafka's own limit on topic names: letters, digits, `.`, `_`, `-`, at most 249 characters. */
export const TOPIC_NAME_PATTERN = /^[A-Za-z0-9._-]{1,249}$/
/** Config keys are dotted lower-case words (`retention.ms`, `cleanup.policy`). */
export const CONFIG_KEY_PATTERN = /^[a-z0-9]+([._-][a-z0-9]+)*$/

export const kafkaTopicSpecSchema = z.strictObject({
  topicName: z.string().regex(TOPIC_NAME_PATTERN, "expected letters, digits, '.', '_' or '-' (at most 249)").optional(),
  partitions: z.number().int().min(1).max(10_000),
  replicationFactor: z.number().int().min(1).max(32).default(1),
  config: z
    .record(z.string().regex(CONFIG_KEY_PATTERN, 'expected a Kafka topic config key such as retention.ms'), z.string())
    .default({}),
  deletionPolicy: z.enum(DELETION_POLICIES).default('Retain'),
})

export type KafkaTopicSpec = z.input<typeof kafkaTopicSpecSchema>
export type ValidKafkaTopicSpec = z.output<typeof kafkaTopicSpecSchema>

/**
 * Condition types: `Ready` (reasons in `TOPIC_READY_REASONS`) and `BrokerAutoCreatesTopics`
 * (present and `True` while the broker creates topics on first use, so a client can make this
 * topic with the broker's defaults before the operator does).
 */
export const TOPIC_READY_REASONS = [
  'Reconciled',
  'NotSupported',
  'ResourceConflict',
  'Paused',
  'Unmanaged',
  'Deleting',
  'InvalidSpec',
  'KafkaError',
] as const
export type TopicReadyReason = (typeof TOPIC_READY_REASONS)[number]
export const AUTO_CREATE_CONDITION = 'BrokerAutoCreatesTopics'

export interface KafkaTopicStatus {
  observedGeneration?: number
  /** The topic's name on the broker (with the operator's prefix), once the resource owns it. */
  topicName?: string
  /** As observed on the broker after the last reconcile. */
  partitions?: number
  replicationFactor?: number
  conditions?: Condition[]
}

export type KafkaTopic = KubeResource<KafkaTopicSpec, KafkaTopicStatus>

/** What the broker says about a topic: its partitions, replicas and the configs set on it. */
export interface ObservedTopic {
  name: string
  partitions: number
  replicationFactor: number
  /** Only the topic's own configs (not broker defaults). */
  config: Record<string, string>
}
