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
