import { events, TOPIC_CHAT_MESSAGES, TOPIC_ORDERS, TOPIC_PAYMENTS } from './events.ts'

/** A topic of the platform: how it is partitioned, what keys it, which events it carries. */
export interface TopicSpec {
  readonly name: string
  readonly partitions: number
  readonly replicationFactor: number
  readonly key: string
  readonly config: Readonly<Record<string, string>>
  readonly events: readonly string[]
}

const eventsOn = (topic: string): string[] =>
  Object.values(events)
    .filter((definition) => definition.topic === topic)
    .map((definition) => definition.type)

const WEEK_MS = String(7 * 24 * 3600 * 1000)

export const topics: readonly TopicSpec[] = [
  {
    name: TOPIC_ORDERS,
    partitions: 6,
    replicationFactor: 1,
    key: 'orderId',
    config: { 'retention.ms': WEEK_MS, 'min.insync.replicas': '1' },
    events: eventsOn(TOPIC_ORDERS),
  },
  {
    name: TOPIC_PAYMENTS,
    partitions: 6,
    replicationFactor: 1,
    key: 'orderId',
    config: { 'retention.ms': WEEK_MS, 'min.insync.replicas': '1' },
    events: eventsOn(TOPIC_PAYMENTS),
  },
  {
    name: TOPIC_CHAT_MESSAGES,
    partitions: 6,
    replicationFactor: 1,
    key: 'roomId',
    config: { 'retention.ms': WEEK_MS },
    events: eventsOn(TOPIC_CHAT_MESSAGES),
  },
]

/** Poison messages of a topic end up here after bounded retries. */
export const deadLetterTopicOf = (topic: string): string => `${topic}.dlq`

/** The catalog plus one dead-letter topic per topic. */
export function allTopics(): TopicSpec[] {
  return topics.flatMap((topic) => [
    topic,
    { ...topic, name: deadLetterTopicOf(topic.name), partitions: 1, events: topic.events },
  ])
}

/** What a topic-name prefix may hold: Kafka allows letters, digits, `.`, `_` and `-` in names. */
export const TOPIC_PREFIX_PATTERN = /^[A-Za-z0-9._-]{0,100}$/

/**
 * The names one environment uses on a broker that several share (a test run beside `make dev`):
 * the catalog's topics and the consumer groups, each behind the same prefix. Services keep
 * speaking the catalog's names; only the client that talks to Kafka applies the namespace.
 */
export interface TopicNamespace {
  readonly prefix: string
  /** The name on the broker of a catalog topic. */
  topic(name: string): string
  /** The catalog name of a topic on the broker (the reverse of `topic`). */
  catalogName(brokerTopic: string): string
  /** Whether a topic on the broker belongs to this namespace. */
  owns(brokerTopic: string): boolean
  /** The id on the broker of a consumer group. */
  group(groupId: string): string
}

export function topicNamespace(prefix = ''): TopicNamespace {
  if (!TOPIC_PREFIX_PATTERN.test(prefix)) {
    throw new Error(`invalid topic prefix ${JSON.stringify(prefix)}: expected letters, digits, '.', '_' and '-'`)
  }
  return {
    prefix,
    topic: (name) => `${prefix}${name}`,
    catalogName: (brokerTopic) => (brokerTopic.startsWith(prefix) ? brokerTopic.slice(prefix.length) : brokerTopic),
    owns: (brokerTopic) => brokerTopic.startsWith(prefix),
    group: (groupId) => `${prefix}${groupId}`,
  }
}
