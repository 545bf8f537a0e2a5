/**
 * The consuming side of the event bus: one subscription delivers records one at a time per
 * partition, retries a failed event without blocking its consumer, and dead-letters an event
 * that can never succeed.
 */
import {
  type CloudEvent,
  deadLetterTopicOf,
  fromKafkaRecord,
  InvalidEventError,
  type TopicNamespace,
  validateEvent,
} from '@timedeal/contracts'
import type { Consumer, EachBatchPayload, KafkaMessage, Producer } from 'kafkajs'
import { Counter, type Registry } from 'prom-client'
import { deadLetterRecord, type RecordPosition } from './dead-letters.ts'
import { classifyFailure, type FailureKind } from './failures.ts'
import type { Logger } from './logger.ts'

export interface DeliveredEvent {
  readonly event: CloudEvent
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: string | null
}

interface SubscribeCommon {
  readonly groupId: string
  readonly topics: readonly string[]
  /** Where a new group starts; later it resumes from its committed offsets. */
  readonly fromBeginning?: boolean
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
  /**
   * Commit handled offsets to the group (default true). A group of one process that starts at
   * the end every time it starts has no use for them: false spares a request after every batch.
   */
  readonly commitOffsets?: boolean
  /**
   * With `handleBatch`, the most events handed over in one call (default: a whole polled
   * batch); a longer run is handed over in parts of this size, in order.
   */
  readonly maxBatchSize?: number
}

/** Events one at a time. */
interface HandleEach {
  /**
   * Called once per event, in order per partition. A rejection means "deliver it again": how
   * often depends on why it failed (see {@link classifyFailure}); throw a
   * {@link PermanentEventError} for an event that can never succeed.
   */
  readonly handle: (delivery: DeliveredEvent) => Promise<void>
  readonly handleBatch?: never
}

/** Events a polled batch at a time. */
interface HandleBatch {
  readonly handle?: never
  /**
   * Called with the valid events of one polled batch of one partition, in order (invalid
   * records between them are dead-lettered in their place). All or nothing: a rejection hands
   * the same events again, per why it failed; a permanent failure is narrowed down by handing
   * the events one at a time, so only the event that fails alone is dead-lettered. Offsets are
   * resolved once per handled batch.
   */
  readonly handleBatch: (deliveries: DeliveredEvent[]) => Promise<void>
}

export type SubscribeOptions = SubscribeCommon & (HandleEach | HandleBatch)

export interface EventSubscription {
  /** Resolves once the consumer has joined its group and has partitions assigned. */
  readonly joined: Promise<void>
  close(): Promise<void>
}

export interface ConsumerMetrics {
  readonly retries: Counter<'topic' | 'group' | 'kind'>
  readonly deadLetters: Counter<'topic' | 'group'>
}

/** The consumers' counters, registered once per registry however many buses or groups use it. */
export function consumerMetrics(registry: Registry): ConsumerMetrics {
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

/** What the functions of one subscription share. */
interface Subscription {
  readonly consumer: Consumer
  readonly options: SubscribeOptions
  readonly logger: Logger
  readonly names: TopicNamespace
  readonly metrics: ConsumerMetrics | undefined
  readonly maxAttempts: number
  readonly firstBackoff: number
  readonly maxBackoff: number
  readonly openProducer: () => Promise<Producer>
  /** Failed attempts of the record each partition is stuck on; reset by a success or another record. */
  readonly failures: Map<string, { offset: string; attempts: number }>
  /** Per partition, the last offset of a batch that failed permanently: up to it, events go one at a time. */
  readonly narrowedUntil: Map<string, bigint>
  readonly resumeTimers: Set<NodeJS.Timeout>
  closing: boolean
  deadLetters: Promise<Producer> | undefined
}

/** The wait before the attempt after `attempts` failed ones: doubling, up to the maximum. */
const backoff = (subscription: Subscription, attempts: number) =>
  Math.min(subscription.firstBackoff * 2 ** Math.min(attempts - 1, 30), subscription.maxBackoff)

async function deadLetter(
  subscription: Subscription,
  record: KafkaMessage,
  where: RecordPosition,
  error: unknown,
  attempts: number,
): Promise<void> {
  const { logger, names, metrics } = subscription
  subscription.deadLetters ??= subscription.openProducer()
  const producer = await subscription.deadLetters
  const failure = error instanceof Error ? error : new Error(String(error))
  const deadLetterTopic = deadLetterTopicOf(where.topic)
  await producer
    .send({
      topic: names.topic(deadLetterTopic),
      acks: -1,
      messages: [deadLetterRecord(record, where, failure, attempts)],
    })
    .catch((sendError: unknown) => {
      // The record stays uncommitted and is delivered again; say plainly why it is stuck.
      logger.error({ err: sendError, ...where, deadLetterTopic }, 'cannot dead-letter an event; is the topic missing?')
      throw sendError
    })
  metrics?.deadLetters.inc({ topic: where.topic, group: subscription.options.groupId })
  logger.error({ err: failure, ...where, attempts }, 'event dead-lettered')
}

/** Dead-letters the record; if even that fails, it is tried again later like any other failure. */
async function deadLetterOrRetry(
  subscription: Subscription,
  record: KafkaMessage,
  where: RecordPosition,
  error: unknown,
  attempts: number,
): Promise<Outcome> {
  try {
    await deadLetter(subscription, record, where, error, attempts)
    return DONE
  } catch {
    subscription.metrics?.retries.inc({ topic: where.topic, group: subscription.options.groupId, kind: 'dead-letter' })
    return { next: 'retry', afterMs: subscription.maxBackoff }
  }
}

/** After a failed attempt: dead-letter a hopeless event, or say when to try it again. */
function afterFailure(
  subscription: Subscription,
  record: KafkaMessage,
  where: RecordPosition,
  event: CloudEvent,
  error: unknown,
  attempt: number,
): Promise<Outcome> | Outcome {
  const { options, logger, failures, metrics } = subscription
  const group = options.groupId
  const stuck = `${where.topic}:${where.partition}`
  const kind = options.classifyFailure?.(error) ?? classifyFailure(error)
  if (kind === 'permanent' && attempt >= subscription.maxAttempts) {
    failures.delete(stuck)
    return deadLetterOrRetry(subscription, record, where, error, attempt)
  }
  failures.set(stuck, { offset: where.offset, attempts: attempt })
  const afterMs = backoff(subscription, attempt)
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

type HandleOne = (delivery: DeliveredEvent) => Promise<void>

/** The record's event, or the reason it is not a valid catalog event. */
function parse(record: KafkaMessage): CloudEvent | InvalidEventError {
  try {
    return validateEvent(fromKafkaRecord({ headers: record.headers, value: record.value }))
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error
    return error
  }
}

/** Tells the service about an invalid record, then dead-letters it. */
async function rejectInvalid(
  subscription: Subscription,
  record: KafkaMessage,
  where: RecordPosition,
  error: InvalidEventError,
): Promise<Outcome> {
  await subscription.options.onInvalid?.(error, where)
  return deadLetterOrRetry(subscription, record, where, error, 0)
}

const partitionKey = (where: RecordPosition) => `${where.topic}:${where.partition}`

/** The attempt this one is at the partition's current record (1 unless it failed there before). */
function attemptAt(subscription: Subscription, where: RecordPosition): number {
  const previous = subscription.failures.get(partitionKey(where))
  return previous?.offset === where.offset ? previous.attempts + 1 : 1
}

/** Validates one record and hands its event to the handler. */
async function deliver(
  subscription: Subscription,
  record: KafkaMessage,
  where: RecordPosition,
  handleOne: HandleOne,
): Promise<Outcome> {
  const { failures } = subscription
  const event = parse(record)
  if (event instanceof InvalidEventError) return rejectInvalid(subscription, record, where, event)
  const stuck = partitionKey(where)
  const attempt = attemptAt(subscription, where)
  try {
    await handleOne({ event, ...where, key: record.key?.toString() ?? null })
    failures.delete(stuck)
    return DONE
  } catch (error) {
    // Shutting down: leave the offset uncommitted so the next owner delivers it again.
    if (subscription.closing) return STOP
    return afterFailure(subscription, record, where, event, error, attempt)
  }
}

/** Stops fetching the partition, rewinds it to the failed record and resumes it after `afterMs`. */
function retryLater(subscription: Subscription, brokerTopic: string, where: RecordPosition, afterMs: number): void {
  const { consumer, resumeTimers } = subscription
  const partitions = [{ topic: brokerTopic, partitions: [where.partition] }]
  consumer.pause(partitions)
  consumer.seek({ topic: brokerTopic, partition: where.partition, offset: where.offset })
  const timer = setTimeout(() => {
    resumeTimers.delete(timer)
    if (!subscription.closing) consumer.resume(partitions)
  }, afterMs)
  resumeTimers.add(timer)
}

/** Delivers a batch's records in order, resolving each offset only once its record is done with. */
async function deliverEach(subscription: Subscription, payload: EachBatchPayload, handleOne: HandleOne): Promise<void> {
  const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload
  for (const message of batch.messages) {
    if (subscription.closing || !isRunning() || isStale()) return
    const where = {
      topic: subscription.names.catalogName(batch.topic),
      partition: batch.partition,
      offset: message.offset,
    }
    const outcome = await deliver(subscription, message, where, handleOne)
    if (outcome.next === 'stop') return
    if (outcome.next === 'retry') {
      retryLater(subscription, batch.topic, where, outcome.afterMs)
      return
    }
    resolveOffset(message.offset)
    await commitOffsetsIfNecessary()
    await heartbeat()
  }
}

/** Valid events of a batch waiting to be handled together, with their records. */
interface Run {
  readonly records: { readonly record: KafkaMessage; readonly where: RecordPosition }[]
  readonly deliveries: DeliveredEvent[]
}

/** What became of a run: an outcome at one of its records, or "narrow it down, one event at a time". */
type RunOutcome = { readonly outcome: Outcome; readonly at: RecordPosition } | { readonly narrow: true }

/**
 * Hands a run of valid events to `handleBatch` at once. A permanent failure of several events
 * is narrowed down: they are handed again one at a time (and so again after any retry, up to
 * the run's last offset), so only the event that fails alone is dead-lettered.
 */
async function handleRun(
  subscription: Subscription,
  run: Run,
  handleBatch: (deliveries: DeliveredEvent[]) => Promise<void>,
): Promise<RunOutcome> {
  const first = run.records[0]
  const last = run.records.at(-1)
  const event = run.deliveries[0]?.event
  if (!first || !last || !event) return { narrow: true }
  const attempt = attemptAt(subscription, first.where)
  try {
    await handleBatch(run.deliveries)
    subscription.failures.delete(partitionKey(first.where))
    return { outcome: DONE, at: last.where }
  } catch (error) {
    if (subscription.closing) return { outcome: STOP, at: first.where }
    const kind = subscription.options.classifyFailure?.(error) ?? classifyFailure(error)
    if (kind === 'permanent' && run.records.length > 1) {
      subscription.narrowedUntil.set(partitionKey(first.where), BigInt(last.where.offset))
      return { narrow: true }
    }
    return {
      outcome: await afterFailure(subscription, first.record, first.where, event, error, attempt),
      at: first.where,
    }
  }
}

/** Whether the partition is being narrowed down past a failed batch at this record. */
function isNarrowed(subscription: Subscription, where: RecordPosition): boolean {
  const key = partitionKey(where)
  const until = subscription.narrowedUntil.get(key)
  if (until === undefined) return false
  if (BigInt(where.offset) <= until) return true
  subscription.narrowedUntil.delete(key)
  return false
}

/**
 * Delivers a polled batch to `handleBatch`: its valid events together, each invalid record
 * dead-lettered in its place between them; offsets resolved once per handled run.
 */
async function deliverRuns(
  subscription: Subscription,
  payload: EachBatchPayload,
  handleBatch: (deliveries: DeliveredEvent[]) => Promise<void>,
): Promise<void> {
  const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload
  const one: HandleOne = (delivery) => handleBatch([delivery])
  const maxBatchSize = subscription.options.maxBatchSize ?? Number.POSITIVE_INFINITY
  let run: Run = { records: [], deliveries: [] }
  /** Handles what was collected; false when the partition stops here for now. */
  const flush = async (): Promise<boolean> => {
    if (run.records.length === 0) return true
    const collected = run
    run = { records: [], deliveries: [] }
    const result = await handleRun(subscription, collected, handleBatch)
    if ('outcome' in result) return settle(result.outcome, result.at)
    for (const { record, where } of collected.records) {
      if (!(await settle(await deliver(subscription, record, where, one), where))) return false
    }
    return true
  }
  const settle = async (outcome: Outcome, where: RecordPosition): Promise<boolean> => {
    if (outcome.next === 'stop') return false
    if (outcome.next === 'retry') {
      retryLater(subscription, batch.topic, where, outcome.afterMs)
      return false
    }
    resolveOffset(where.offset)
    return true
  }
  for (const message of batch.messages) {
    if (subscription.closing || !isRunning() || isStale()) return
    const where = {
      topic: subscription.names.catalogName(batch.topic),
      partition: batch.partition,
      offset: message.offset,
    }
    if (isNarrowed(subscription, where)) {
      if (!(await flush()) || !(await settle(await deliver(subscription, message, where, one), where))) return
      continue
    }
    const event = parse(message)
    if (event instanceof InvalidEventError) {
      if (!(await flush()) || !(await settle(await rejectInvalid(subscription, message, where, event), where))) return
      continue
    }
    run.records.push({ record: message, where })
    run.deliveries.push({ event, ...where, key: message.key?.toString() ?? null })
    if (run.records.length >= maxBatchSize && !(await flush())) return
  }
  if (subscription.closing || !isRunning() || isStale()) return
  if (await flush()) await heartbeat()
}

function deliverBatch(subscription: Subscription, payload: EachBatchPayload): Promise<void> {
  const { handle, handleBatch } = subscription.options
  if (handleBatch) return deliverRuns(subscription, payload, handleBatch)
  if (handle) return deliverEach(subscription, payload, handle)
  throw new Error('a subscription needs handle or handleBatch')
}

async function close(subscription: Subscription): Promise<void> {
  subscription.closing = true
  for (const timer of subscription.resumeTimers) clearTimeout(timer)
  subscription.resumeTimers.clear()
  await subscription.consumer.disconnect()
  if (subscription.deadLetters) await (await subscription.deadLetters).disconnect()
}

/**
 * Delivers records one at a time per partition. A failed event is not retried in place: its
 * partition is paused and rewound to it, and resumed after the backoff, so the consumer keeps
 * heartbeating and the other partitions keep flowing however long an outage lasts.
 */
export async function kafkaSubscription(
  consumer: Consumer,
  options: SubscribeOptions,
  logger: Logger,
  openProducer: () => Promise<Producer>,
  names: TopicNamespace,
  metrics: ConsumerMetrics | undefined,
): Promise<EventSubscription> {
  const firstBackoff = options.retryBackoffMs ?? 200
  const subscription: Subscription = {
    consumer,
    options,
    logger,
    names,
    metrics,
    maxAttempts: options.maxAttempts ?? 5,
    firstBackoff,
    maxBackoff: Math.max(firstBackoff, options.maxRetryBackoffMs ?? 10_000),
    openProducer,
    failures: new Map(),
    narrowedUntil: new Map(),
    resumeTimers: new Set(),
    closing: false,
    deadLetters: undefined,
  }
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
  await consumer.connect()
  await consumer.subscribe({ topics: options.topics.map(names.topic), fromBeginning: options.fromBeginning ?? false })
  await consumer.run({
    autoCommit: options.commitOffsets ?? true,
    // Offsets are resolved one record at a time, only once that record is done with.
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: options.partitionsConcurrently ?? 1,
    eachBatch: (payload) => deliverBatch(subscription, payload),
  })
  return { joined, close: () => close(subscription) }
}
