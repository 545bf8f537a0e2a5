/**
 * The one module every producer and consumer goes through. Services see events, topics and
 * groups; kafkajs stays behind this file so the client could be swapped without touching them.
 */
import {
  type CloudEvent,
  fromKafkaRecord,
  InvalidEventError,
  type TopicSpec,
  toKafkaRecord,
  validateEvent,
} from '@timedeal/contracts'
import { type Admin, type Consumer, Kafka, type logCreator, logLevel, Partitioners, type Producer } from 'kafkajs'
import type { Logger } from './logger.ts'

export interface EventBusOptions {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly logger: Logger
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
  /** Called for a record that is not a valid catalog event; the record is then skipped. */
  readonly onInvalid?: (
    error: InvalidEventError,
    raw: { topic: string; partition: number; offset: string },
  ) => Promise<void>
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

  return {
    async publisher() {
      // Idempotent: the broker drops retried duplicates; one request in flight keeps key order.
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
      })
      await producer.connect()
      return kafkaPublisher(producer)
    },
    async subscribe(subscribe) {
      const consumer = kafka.consumer({
        groupId: subscribe.groupId,
        allowAutoTopicCreation: false,
        sessionTimeout: 30_000,
        heartbeatInterval: 3_000,
      })
      return kafkaSubscription(consumer, subscribe, options.logger)
    },
    async admin() {
      const admin = kafka.admin()
      await admin.connect()
      return kafkaTopicAdmin(admin)
    },
  }
}

function kafkaPublisher(producer: Producer): EventPublisher {
  return {
    async publish(topic, events) {
      if (events.length === 0) return []
      const results = await producer.send({
        topic,
        acks: -1,
        messages: events.map((event) => toKafkaRecord(event)),
      })
      return results.map((result) => ({
        topic: result.topicName,
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
): Promise<EventSubscription> {
  let markJoined: () => void = () => {}
  const joined = new Promise<void>((resolve) => {
    markJoined = resolve
  })
  consumer.on(consumer.events.GROUP_JOIN, () => markJoined())
  await consumer.connect()
  await consumer.subscribe({ topics: [...options.topics], fromBeginning: options.fromBeginning ?? false })
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ topic, partition, message }) => {
      let event: CloudEvent
      try {
        event = validateEvent(fromKafkaRecord({ headers: message.headers, value: message.value }))
      } catch (error) {
        if (!(error instanceof InvalidEventError)) throw error
        const raw = { topic, partition, offset: message.offset }
        logger.error({ err: error, ...raw }, 'skipping a record that is not a valid event')
        await options.onInvalid?.(error, raw)
        return
      }
      await options.handle({
        event,
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
      })
    },
  })
  return { joined, close: () => consumer.disconnect() }
}

function kafkaTopicAdmin(admin: Admin): TopicAdmin {
  return {
    async ensureTopics(specs) {
      const existing = new Set(await admin.listTopics())
      const missing = specs.filter((spec) => !existing.has(spec.name))
      if (missing.length === 0) return []
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
        })),
      })
      return missing.map((spec) => spec.name)
    },
    listTopics: () => admin.listTopics(),
    deleteTopics: (names) => admin.deleteTopics({ topics: [...names] }),
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
