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
import { Counter, type Registry } from 'prom-client'
import { classifyFailure, type FailureKind } from './failures.ts'
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
  /** Where consumers count their retries and dead letters (`consumer_retries_total`, …). */
  readonly metrics?: Registry
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
  /**
   * Called once per event, in order per partition. A rejection means "deliver it again": how
   * often depends on why it failed (see {@link classifyFailure}); throw a
   * {@link PermanentEventError} for an event that can never succeed.
   */
  readonly handle: (delivery: DeliveredEvent) => Promise<void>
  /** Called for a record that is not a valid catalog event; it then goes to the dead-letter topic. */
  readonly onInvalid?: (
    error: InvalidEventError,
    raw: { topic: string; partition: number; offset: string },
  ) => Promise<void>
  /**
   * Attempts of an event that failed permanently before it is dead-lettered (default 5).
   * Infrastructure failures and unclassified ones are retried without limit instead.
   */
  readonly maxAttempts?: number
  /** Delay before the second attempt, doubled each time up to {@link maxRetryBackoffMs} (default 200 ms). */
  readonly retryBackoffMs?: number
  /** The longest delay between two attempts (default 10 s). */
  readonly maxRetryBackoffMs?: number
  /**
   * Judges a handler's failure before the platform does, for errors only the service knows
   * (say, its payment provider being down); `undefined` leaves it to {@link classifyFailure}.
   */
  readonly classifyFailure?: (error: unknown) => FailureKind | undefined
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
  const metrics = options.metrics ? consumerMetrics(options.metrics) : undefined

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
        // A partition resumed after a retry's backoff is fetched again with the next request, so
        // an idle long poll is kept short: a retry waits its backoff, not the poll's 5 s default.
        maxWaitTimeInMs: 500,
      })
      return kafkaSubscription(consumer, subscribe, options.logger, () => createProducer(kafka), names, metrics)
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

interface ConsumerMetrics {
  readonly retries: Counter<'topic' | 'group' | 'kind'>
  readonly deadLetters: Counter<'topic' | 'group'>
}

/** The consumers' counters, registered once per registry however many buses or groups use it. */
function consumerMetrics(registry: Registry): ConsumerMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: L[]): Counter<L> =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  return {
    retries: counter(
      'consumer_retries_total',
      'Event deliveries that failed and will be attempted again, by why (infrastructure, permanent, unclassified, dead-letter).',
      ['topic', 'group', 'kind'],
    ),
    deadLetters: counter('consumer_dead_letters_total', 'Events sent to the dead-letter topic.', ['topic', 'group']),
  }
}

/** What became of one delivery: handled (or dead-lettered), to try again later, or left for the next owner. */
type Outcome =
  | { readonly next: 'done' }
  | { readonly next: 'retry'; readonly afterMs: number }
  | { readonly next: 'stop' }

const DONE: Outcome = { next: 'done' }
const STOP: Outcome = { next: 'stop' }

/**
 * Delivers records one at a time per partition. A failed event is not retried in place: its
 * partition is paused and rewound to it, and resumed after the backoff, so the consumer keeps
 * heartbeating and the other partitions keep flowing however long an outage lasts.
 */
async function kafkaSubscription(
  consumer: Consumer,
  options: SubscribeOptions,
  logger: Logger,
  openProducer: () => Promise<Producer>,
  names: TopicNamespace,
  metrics: ConsumerMetrics | undefined,
): Promise<EventSubscription> {
  const maxAttempts = options.maxAttempts ?? 5
  const firstBackoff = options.retryBackoffMs ?? 200
  const maxBackoff = Math.max(firstBackoff, options.maxRetryBackoffMs ?? 10_000)
  const group = options.groupId
  // Failed attempts of the record each partition is stuck on; reset by a success or another record.
  const failures = new Map<string, { offset: string; attempts: number }>()
  const resumeTimers = new Set<NodeJS.Timeout>()
  let closing = false
  let deadLetters: Promise<Producer> | undefined
  let markJoined: () => void = () => {}
  const joined = new Promise<void>((resolve) => {
    markJoined = resolve
  })

  const backoff = (attempts: number) => Math.min(firstBackoff * 2 ** Math.min(attempts - 1, 30), maxBackoff)

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
    metrics?.deadLetters.inc({ topic: where.topic, group })
    logger.error({ err: failure, ...where, attempts }, 'event dead-lettered')
  }

  /** Dead-letters the record; if even that fails, it is tried again later like any other failure. */
  const deadLetterOrRetry = async (
    record: KafkaMessage,
    where: RecordPosition,
    error: unknown,
    attempts: number,
  ): Promise<Outcome> => {
    try {
      await deadLetter(record, where, error, attempts)
      return DONE
    } catch {
      metrics?.retries.inc({ topic: where.topic, group, kind: 'dead-letter' })
      return { next: 'retry', afterMs: maxBackoff }
    }
  }

  const classify = (error: unknown): FailureKind => options.classifyFailure?.(error) ?? classifyFailure(error)

  const deliver = async (record: KafkaMessage, where: RecordPosition): Promise<Outcome> => {
    let event: CloudEvent
    try {
      event = validateEvent(fromKafkaRecord({ headers: record.headers, value: record.value }))
    } catch (error) {
      if (!(error instanceof InvalidEventError)) throw error
      await options.onInvalid?.(error, where)
      return deadLetterOrRetry(record, where, error, 0)
    }
    const stuck = `${where.topic}:${where.partition}`
    const previous = failures.get(stuck)
    const attempt = previous?.offset === where.offset ? previous.attempts + 1 : 1
    try {
      await options.handle({ event, ...where, key: record.key?.toString() ?? null })
      failures.delete(stuck)
      return DONE
    } catch (error) {
      // Shutting down: leave the offset uncommitted so the next owner delivers it again.
      if (closing) return STOP
      const kind = classify(error)
      if (kind === 'permanent' && attempt >= maxAttempts) {
        failures.delete(stuck)
        return deadLetterOrRetry(record, where, error, attempt)
      }
      failures.set(stuck, { offset: where.offset, attempts: attempt })
      const afterMs = backoff(attempt)
      metrics?.retries.inc({ topic: where.topic, group, kind })
      const line = {
        err: error,
        ...where,
        group,
        eventId: event.id,
        eventType: event.type,
        attempt,
        kind,
        retryInMs: afterMs,
      }
      // An error nobody classified may be a bug holding the partition: say it loudly.
      if (kind === 'unclassified') logger.error(line, 'event handling failed; retrying')
      else logger.warn(line, 'event handling failed; retrying')
      return { next: 'retry', afterMs }
    }
  }

  /** Stops fetching the partition, rewinds it to the failed record and resumes it after `afterMs`. */
  const retryLater = (topic: string, where: RecordPosition, afterMs: number) => {
    const partitions = [{ topic, partitions: [where.partition] }]
    consumer.pause(partitions)
    consumer.seek({ topic, partition: where.partition, offset: where.offset })
    const timer = setTimeout(() => {
      resumeTimers.delete(timer)
      if (!closing) consumer.resume(partitions)
    }, afterMs)
    resumeTimers.add(timer)
  }

  consumer.on(consumer.events.GROUP_JOIN, () => markJoined())
  await consumer.connect()
  await consumer.subscribe({ topics: options.topics.map(names.topic), fromBeginning: options.fromBeginning ?? false })
  await consumer.run({
    autoCommit: true,
    // Offsets are resolved one record at a time, only once that record is done with.
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: options.partitionsConcurrently ?? 1,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      for (const message of batch.messages) {
        if (closing || !isRunning() || isStale()) return
        const where = { topic: names.catalogName(batch.topic), partition: batch.partition, offset: message.offset }
        const outcome = await deliver(message, where)
        if (outcome.next === 'stop') return
        if (outcome.next === 'retry') {
          retryLater(batch.topic, where, outcome.afterMs)
          return
        }
        resolveOffset(message.offset)
        await commitOffsetsIfNecessary()
        await heartbeat()
      }
    },
  })
  return {
    joined,
    close: async () => {
      closing = true
      for (const timer of resumeTimers) clearTimeout(timer)
      resumeTimers.clear()
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
