/**
 * The one module every producer and consumer goes through. Services see events, topics and
 * groups; kafkajs stays behind this file (and the subscription, dead-letter and topic-admin
 * files beside it) so the client could be swapped without touching them.
 */
import { type CloudEvent, type TopicNamespace, toKafkaRecord, topicNamespace } from '@timedeal/contracts'
import { Kafka, type logCreator, logLevel, Partitioners, type Producer, type RecordMetadata } from 'kafkajs'
import type { Registry } from 'prom-client'
import { type ReplayOptions, replayDeadLetters } from './dead-letters.ts'
import type { Logger } from './logger.ts'
import { consumerMetrics, type EventSubscription, kafkaSubscription, type SubscribeOptions } from './subscription.ts'
import { kafkaTopicAdmin, type TopicAdmin } from './topic-admin.ts'

export { DEAD_LETTER_HEADERS, type ReplayOptions } from './dead-letters.ts'
export type { DeliveredEvent, EventSubscription, SubscribeOptions } from './subscription.ts'
export type { TopicAdmin } from './topic-admin.ts'

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

/** Events bound for one topic, in the order they must keep. */
export interface TopicEvents {
  readonly topic: string
  readonly events: readonly CloudEvent[]
}

export interface EventPublisher {
  /** Resolves once every event is acknowledged by all in-sync replicas (acks=all). */
  publish(topic: string, events: readonly CloudEvent[]): Promise<PublishReceipt[]>
  /**
   * The same for events of several topics, sent together (one request per broker instead of
   * one per topic). Optional, so a decorator that only knows `publish` still works: callers
   * fall back to one `publish` per topic.
   */
  publishAll?(batches: readonly TopicEvents[]): Promise<PublishReceipt[]>
  close(): Promise<void>
}

export interface EventBus {
  publisher(): Promise<EventPublisher>
  subscribe(options: SubscribeOptions): Promise<EventSubscription>
  admin(): Promise<TopicAdmin>
  /** Sends dead-lettered records back to the topics they came from, once each. */
  replayDeadLetters(options: ReplayOptions): Promise<{ replayed: number }>
}

/** What `kafkaSettings()` parses to. */
export interface KafkaSettings {
  readonly KAFKA_BROKERS: readonly string[]
  readonly KAFKA_TOPIC_PREFIX: string
}

/** The bus of a script whose settings include `kafkaSettings()`: their brokers, behind their topic prefix. */
export function eventBusFromSettings(settings: KafkaSettings, clientId: string, logger: Logger): EventBus {
  return createEventBus({ brokers: settings.KAFKA_BROKERS, clientId, logger, topicPrefix: settings.KAFKA_TOPIC_PREFIX })
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
  const openProducer = () => createProducer(kafka)

  return {
    async publisher() {
      return kafkaPublisher(await openProducer(), names)
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
      return kafkaSubscription(consumer, subscribe, options.logger, openProducer, names, metrics)
    },
    async admin() {
      const admin = kafka.admin()
      await admin.connect()
      return kafkaTopicAdmin(admin, names)
    },
    replayDeadLetters: (replay) => replayDeadLetters(kafka, openProducer, replay, options.logger, names),
  }
}

async function createProducer(kafka: Kafka): Promise<Producer> {
  // Idempotent: the broker drops retried duplicates; one request in flight keeps key order.
  // No compression: events are a few hundred bytes on loopback or a LAN, where compressing
  // costs more CPU than the bytes it saves. kafkajs has no linger of its own; the outbox relay
  // batches instead (one send per relay cycle, several topics at once).
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
  const receipts = (results: RecordMetadata[]): PublishReceipt[] =>
    results.map((result) => ({
      topic: names.catalogName(result.topicName),
      partition: result.partition,
      offset: result.baseOffset ?? result.offset ?? '',
    }))
  return {
    async publish(topic, events) {
      if (events.length === 0) return []
      const results = await producer.send({
        topic: names.topic(topic),
        acks: -1,
        messages: events.map((event) => toKafkaRecord(event)),
      })
      return receipts(results)
    },
    async publishAll(batches) {
      const topicMessages = batches
        .filter((batch) => batch.events.length > 0)
        .map((batch) => ({
          topic: names.topic(batch.topic),
          messages: batch.events.map((event) => toKafkaRecord(event)),
        }))
      if (topicMessages.length === 0) return []
      return receipts(await producer.sendBatch({ acks: -1, topicMessages }))
    },
    close: () => producer.disconnect(),
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
