/**
 * Dead letters: the record a consumer gives up on, with headers saying where it came from and
 * why, and the replay that sends such records back to their topics once each.
 */
import type { TopicNamespace } from '@timedeal/contracts'
import type { Kafka, KafkaMessage, Message, Producer } from 'kafkajs'
import type { Logger } from './logger.ts'

/** Headers a dead-lettered record carries besides its own, to say where it came from and why. */
export const DEAD_LETTER_HEADERS = {
  error: 'dlq_error',
  errorType: 'dlq_error_type',
  originalTopic: 'dlq_original_topic',
  originalPartition: 'dlq_original_partition',
  originalOffset: 'dlq_original_offset',
  attempts: 'dlq_attempts',
  failedAt: 'dlq_failed_at',
} as const

export interface ReplayOptions {
  readonly deadLetterTopic: string
  /** Stop after this many records (default: all there are). */
  readonly limit?: number
  /** Stop once no record arrived for this long (default 3 s). */
  readonly idleMs?: number
}

/** Where a record was read: a catalog topic, a partition and an offset. */
export interface RecordPosition {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

/** The record as it goes to the dead-letter topic: the original, plus why and from where. */
export function deadLetterRecord(
  record: KafkaMessage,
  where: RecordPosition,
  failure: Error,
  attempts: number,
): Message {
  return {
    key: record.key,
    value: record.value,
    headers: {
      ...record.headers,
      [DEAD_LETTER_HEADERS.error]: failure.message.slice(0, 2000),
      [DEAD_LETTER_HEADERS.errorType]: failure.name,
      [DEAD_LETTER_HEADERS.originalTopic]: where.topic,
      [DEAD_LETTER_HEADERS.originalPartition]: String(where.partition),
      [DEAD_LETTER_HEADERS.originalOffset]: where.offset,
      [DEAD_LETTER_HEADERS.attempts]: String(attempts),
      [DEAD_LETTER_HEADERS.failedAt]: new Date().toISOString(),
    },
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The end offset of each partition right now: what is dead-lettered at the start of a replay. */
async function endOffsetsOf(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const ends = new Map<number, bigint>()
    for (const { partition, high } of await admin.fetchTopicOffsets(topic)) ends.set(partition, BigInt(high))
    return ends
  } finally {
    await admin.disconnect()
  }
}

/** The dead-lettered record as it first was: its own headers, without the dead-letter ones. */
function originalRecord(message: KafkaMessage): Message {
  const dlqHeaders = new Set<string>(Object.values(DEAD_LETTER_HEADERS))
  const headers = Object.fromEntries(Object.entries(message.headers ?? {}).filter(([name]) => !dlqHeaders.has(name)))
  return { key: message.key, value: message.value, headers }
}

/** Sends dead-lettered records back to the topics they came from, once each. */
export async function replayDeadLetters(
  kafka: Kafka,
  openProducer: () => Promise<Producer>,
  options: ReplayOptions,
  logger: Logger,
  names: TopicNamespace,
): Promise<{ replayed: number }> {
  const topic = names.topic(options.deadLetterTopic)
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  const idleMs = options.idleMs ?? 3_000
  // Replay only what is dead-lettered now: a record that fails again and comes back to the
  // topic waits for the next replay instead of looping.
  const endOffsets = await endOffsetsOf(kafka, topic)
  const producer = await openProducer()
  // One group per dead-letter topic: its committed offsets remember what was already replayed.
  const consumer = kafka.consumer({ groupId: `${topic}.replay`, allowAutoTopicCreation: false })
  const reachedEnd = new Set<number>()
  let replayed = 0
  let lastActivity = Date.now()
  const done = () =>
    replayed >= limit || [...endOffsets].every(([partition, end]) => end === 0n || reachedEnd.has(partition))
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: true,
      eachBatchAutoResolve: false,
      // Offsets are resolved one record at a time, so a limit or a stop leaves the rest unreplayed.
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const end = endOffsets.get(batch.partition) ?? 0n
        for (const message of batch.messages) {
          if (!isRunning() || isStale() || replayed >= limit) return
          if (BigInt(message.offset) >= end) {
            reachedEnd.add(batch.partition)
            return
          }
          lastActivity = Date.now()
          const original = message.headers?.[DEAD_LETTER_HEADERS.originalTopic]?.toString()
          if (original) {
            await producer.send({ topic: names.topic(original), acks: -1, messages: [originalRecord(message)] })
            replayed++
          } else {
            logger.warn({ offset: message.offset }, 'dead letter without its original topic; skipped')
          }
          resolveOffset(message.offset)
          if (BigInt(message.offset) + 1n >= end) reachedEnd.add(batch.partition)
          await heartbeat()
        }
      },
    })
    // Partitions whose committed offset is already at the end deliver nothing: the idle
    // timeout ends the wait for them.
    while (!done() && Date.now() - lastActivity < idleMs) await sleep(100)
  } finally {
    await consumer.disconnect()
    await producer.disconnect()
  }
  return { replayed }
}
