/**
 * The one module every producer and consumer goes through. Services see events, topics and
 * groups; kafkajs stays behind this file so the client could be swapped without touching them.
 */
import {
  allTopics,
  type CloudEvent,
  deadLetterTopicOf,
  fromKafkaRecord,
  InvalidEventError,
  type TopicNamespace,
  type TopicSpec,
  toKafkaRecord,
  topicNamespace,
  validateEvent,
} from '@timedeal/contracts'
import {
  type Admin,
  type Consumer,
  Kafka,
  type KafkaMessage,
  type logCreator,
  logLevel,
  Partitioners,
  type Producer,
} from 'kafkajs'
import type { Logger } from './logger.ts'

export interface EventBusOptions {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly logger: Logger
  /**
   * Put before every topic and consumer group on the broker (`KAFKA_TOPIC_PREFIX`). Callers
   * keep using the catalog's names: receipts, deliveries and dead letters carry those.
   */
  readonly topicPrefix?: string
}

export interface PublishReceipt {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

export interface EventPublisher {
  /** Resolves once every event is acknowledged by all in-sync replicas (acks=all). */
  publish(topic: string, events: readonly CloudEvent[]): Promise<PublishReceipt[]>
  close(): Promise<void>
}

export interface DeliveredEvent {
  readonly event: CloudEvent
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: string | null
}

export interface SubscribeOptions {
  readonly groupId: string
  readonly topics: readonly string[]
  /** Where a new group starts; later it resumes from its committed offsets. */
  readonly fromBeginning?: boolean
  /** Called once per event, in order per partition. A rejection means "deliver it again". */
  readonly handle: (delivery: DeliveredEvent) => Promise<void>
  /** Called for a record that is not a valid catalog event; it then goes to the dead-letter topic. */
  readonly onInvalid?: (
    error: InvalidEventError,
    raw: { topic: string; partition: number; offset: string },
  ) => Promise<void>
  /** Attempts per event before it is dead-lettered (default 5); the partition waits meanwhile. */
  readonly maxAttempts?: number
  /** Delay before the second attempt, doubled each time up to 5 s (default 200 ms). */
  readonly retryBackoffMs?: number
  /**
   * How many partitions are handled at the same time (default 1). Order within a partition,
   * and so within one aggregate, holds either way; handlers must then tolerate concurrency.
   */
  readonly partitionsConcurrently?: number
}

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

export interface EventSubscription {
  /** Resolves once the consumer has joined its group and has partitions assigned. */
  readonly joined: Promise<void>
  close(): Promise<void>
}

export interface TopicAdmin {
  /** Creates the topics that do not exist yet; returns the names it created. */
  ensureTopics(
    specs: readonly Pick<TopicSpec, 'name' | 'partitions' | 'replicationFactor' | 'config'>[],
  ): Promise<string[]>
  listTopics(): Promise<string[]>
  deleteTopics(names: readonly string[]): Promise<void>
  /** Throws when no broker answers. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface EventBus {
  publisher(): Promise<EventPublisher>
  subscribe(options: SubscribeOptions): Promise<EventSubscription>
  admin(): Promise<TopicAdmin>
  /** Sends dead-lettered records back to the topics they came from, once each. */
  replayDeadLetters(options: ReplayOptions): Promise<{ replayed: number }>
}

export function createEventBus(options: EventBusOptions): EventBus {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 5_000 },
    logLevel: logLevel.WARN,
    logCreator: pinoLogCreator(options.logger),
  })
  const names = topicNamespace(options.topicPrefix)

  return {
    async publisher() {
      return kafkaPublisher(await createProducer(kafka), names)
    },
    async subscribe(subscribe) {
      const consumer = kafka.consumer({
        groupId: names.group(subscribe.groupId),
        allowAutoTopicCreation: false,
        sessionTimeout: 30_000,
        heartbeatInterval: 3_000,
      })
      return kafkaSubscription(consumer, subscribe, options.logger, () => createProducer(kafka), names)
    },
    async admin() {
      const admin = kafka.admin()
      await admin.connect()
      return kafkaTopicAdmin(admin, names)
    },
    replayDeadLetters: (replay) => replayDeadLetters(kafka, replay, options.logger, names),
  }
}

async function createProducer(kafka: Kafka): Promise<Producer> {
  // Idempotent: the broker drops retried duplicates; one request in flight keeps key order.
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  return producer
}

function kafkaPublisher(producer: Producer, names: TopicNamespace): EventPublisher {
  return {
    async publish(topic, events) {
      if (events.length === 0) return []
      const results = await producer.send({
        topic: names.topic(topic),
        acks: -1,
        messages: events.map((event) => toKafkaRecord(event)),
      })
      return results.map((result) => ({
        topic: names.catalogName(result.topicName),
        partition: result.partition,
        offset: result.baseOffset ?? result.offset ?? '',
      }))
    },
    close: () => producer.disconnect(),
  }
}

async function kafkaSubscription(
  consumer: Consumer,
  options: SubscribeOptions,
  logger: Logger,
  openProducer: () => Promise<Producer>,
  names: TopicNamespace,
): Promise<EventSubscription> {
  const maxAttempts = options.maxAttempts ?? 5
  const firstBackoff = options.retryBackoffMs ?? 200
  let closing = false
  let deadLetters: Promise<Producer> | undefined
  let markJoined: () => void = () => {}
  const joined = new Promise<void>((resolve) => {
    markJoined = resolve
  })

  const deadLetter = async (record: KafkaMessage, where: RecordPosition, error: unknown, attempts: number) => {
    deadLetters ??= openProducer()
    const producer = await deadLetters
    const failure = error instanceof Error ? error : new Error(String(error))
    const deadLetterTopic = deadLetterTopicOf(where.topic)
    await producer
      .send({
        topic: names.topic(deadLetterTopic),
        acks: -1,
        messages: [
          {
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
          },
        ],
      })
      .catch((sendError: unknown) => {
        // The record stays uncommitted and is delivered again; say plainly why it is stuck.
        logger.error(
          { err: sendError, ...where, deadLetterTopic },
          'cannot dead-letter an event; is the topic missing?',
        )
        throw sendError
      })
    logger.error({ err: failure, ...where, attempts }, 'event dead-lettered')
  }

  consumer.on(consumer.events.GROUP_JOIN, () => markJoined())
  await consumer.connect()
  await consumer.subscribe({ topics: options.topics.map(names.topic), fromBeginning: options.fromBeginning ?? false })
  await consumer.run({
    autoCommit: true,
    partitionsConsumedConcurrently: options.partitionsConcurrently ?? 1,
    eachMessage: async ({ topic, partition, message }) => {
      const where = { topic: names.catalogName(topic), partition, offset: message.offset }
      let event: CloudEvent
      try {
        event = validateEvent(fromKafkaRecord({ headers: message.headers, value: message.value }))
      } catch (error) {
        if (!(error instanceof InvalidEventError)) throw error
        await options.onInvalid?.(error, where)
        await deadLetter(message, where, error, 0)
        return
      }
      const delivery = { event, ...where, key: message.key?.toString() ?? null }
      for (let attempt = 1; ; attempt++) {
        try {
          await options.handle(delivery)
          return
        } catch (error) {
          // Shutting down: leave the offset uncommitted so the next owner delivers it again.
          if (closing) throw error
          if (attempt >= maxAttempts) {
            await deadLetter(message, where, error, attempt)
            return
          }
          logger.warn({ err: error, ...where, eventId: event.id, attempt }, 'event handling failed; retrying')
          await sleep(Math.min(firstBackoff * 2 ** (attempt - 1), 5_000))
        }
      }
    },
  })
  return {
    joined,
    close: async () => {
      closing = true
      await consumer.disconnect()
      if (deadLetters) await (await deadLetters).disconnect()
    },
  }
}

interface RecordPosition {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function replayDeadLetters(
  kafka: Kafka,
  options: ReplayOptions,
  logger: Logger,
  names: TopicNamespace,
): Promise<{ replayed: number }> {
  const topic = names.topic(options.deadLetterTopic)
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  const idleMs = options.idleMs ?? 3_000
  // Replay only what is dead-lettered now: a record that fails again and comes back to the
  // topic waits for the next replay instead of looping.
  const admin = kafka.admin()
  await admin.connect()
  const endOffsets = new Map<number, bigint>()
  try {
    for (const { partition, high } of await admin.fetchTopicOffsets(topic)) endOffsets.set(partition, BigInt(high))
  } finally {
    await admin.disconnect()
  }
  const producer = await createProducer(kafka)
  // One group per dead-letter topic: its committed offsets remember what was already replayed.
  const consumer = kafka.consumer({ groupId: `${topic}.replay`, allowAutoTopicCreation: false })
  const reachedEnd = new Set<number>()
  let replayed = 0
  let lastActivity = Date.now()
  const dlqHeaders = new Set<string>(Object.values(DEAD_LETTER_HEADERS))
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
            const headers = Object.fromEntries(
              Object.entries(message.headers ?? {}).filter(([name]) => !dlqHeaders.has(name)),
            )
            await producer.send({
              topic: names.topic(original),
              acks: -1,
              messages: [{ key: message.key, value: message.value, headers }],
            })
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

function kafkaTopicAdmin(admin: Admin, names: TopicNamespace): TopicAdmin {
  return {
    async ensureTopics(specs) {
      const existing = new Set(await admin.listTopics())
      const missing = specs.filter((spec) => !existing.has(names.topic(spec.name)))
      if (missing.length === 0) return []
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: names.topic(spec.name),
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
        })),
      })
      return missing.map((spec) => spec.name)
    },
    listTopics: async () => (await admin.listTopics()).filter(names.owns).map(names.catalogName),
    deleteTopics: (topics) => admin.deleteTopics({ topics: topics.map(names.topic) }),
    async ping() {
      await admin.describeCluster()
    },
    close: () => admin.disconnect(),
  }
}

function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...fields } = log
      const child = { component: 'kafka', ...fields }
      if (level === logLevel.ERROR) logger.error(child, message)
      else if (level === logLevel.WARN) logger.warn(child, message)
      else if (level === logLevel.INFO) logger.info(child, message)
      else logger.debug(child, message)
    }
}

/**
 * Creates the contracts' topics and their dead-letter topics where missing: for local
 * development and tests (in Kubernetes the operator owns topics).
 */
export async function ensureCatalogTopics(bus: EventBus, logger: Logger): Promise<void> {
  const admin = await bus.admin()
  try {
    const created = await admin.ensureTopics(allTopics())
    if (created.length > 0) logger.info({ topics: created }, 'created Kafka topics')
  } finally {
    await admin.close()
  }
}
