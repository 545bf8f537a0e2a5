/**
 * The one way a service consumes events: it names its group, its topics and its handler; the
 * platform subscribes with the service's consumer settings, handles as many partitions at once
 * as the catalog gives the topics, and, for a service with an inbox, hands the handler its
 * event's inbox transaction.
 */
import { type CloudEvent, topics as catalog } from '@timedeal/contracts'
import type { Transaction } from 'sequelize'
import type { FailureKind } from './failures.ts'
import type { Inbox } from './inbox.ts'
import type { DeliveredEvent, EventBus, EventSubscription } from './kafka.ts'

/** What `consumerSettings()` parses to, as far as a consumer reads it. */
export interface ConsumerSettings {
  readonly CONSUMER_MAX_ATTEMPTS: number
  readonly CONSUMER_RETRY_BACKOFF_MS: number
  readonly CONSUMER_RETRY_MAX_BACKOFF_MS: number
  readonly CONSUMER_FROM_BEGINNING: boolean
  /** The most events a batch consumer is handed in one call (default 200). */
  readonly CONSUMER_BATCH_MAX?: number
}

/** How many events a batch consumer is handed at most when its settings do not say. */
export const DEFAULT_CONSUMER_BATCH_MAX = 200

/** A delivery to a consumer with an inbox. */
export interface InboxDelivery extends DeliveredEvent {
  /**
   * Runs `effect` in the transaction that records this event as handled by the consumer;
   * false (and nothing run) when it was handled before. Work outside any transaction (a call
   * to another service, say) goes before it; everything the event changes goes inside.
   */
  once(effect: (transaction: Transaction) => Promise<void>): Promise<boolean>
}

/** A polled batch of one partition, handed to a consumer with an inbox. */
export interface InboxBatch {
  /** The batch's events, in order. */
  readonly deliveries: readonly DeliveredEvent[]
  /**
   * Runs `effect` with the deliveries not handled before, in the one transaction that records
   * every one of them as handled; answers those it ran for (none, and nothing run, when all were
   * handled before). Work outside any transaction goes before it; everything the events change
   * goes inside. A failure rolls the whole batch back.
   */
  onceEach(
    effect: (fresh: readonly DeliveredEvent[], transaction: Transaction) => Promise<void>,
  ): Promise<DeliveredEvent[]>
}

interface ConsumeOptions {
  readonly bus: EventBus
  /** The consumer group; two deployments sharing a broker keep apart through the topic prefix. */
  readonly group: string
  /** Catalog topics (packages/contracts); their partitions set how many are handled at once. */
  readonly topics: readonly string[]
  readonly settings: ConsumerSettings
  /** Judges a handler's failure first, for errors only the service knows (see `SubscribeOptions`). */
  readonly classifyFailure?: (error: unknown) => FailureKind | undefined
}

export interface InboxConsumeOptions extends ConsumeOptions {
  /** The service's inbox (see `eventInbox`); its after-commit hook wakes the outbox relay. */
  readonly inbox: Inbox
  readonly handle: (delivery: InboxDelivery) => Promise<void>
}

export interface PlainConsumeOptions extends ConsumeOptions {
  /** The handler is idempotent by itself (say, by the state it changes), so no inbox. */
  readonly inbox?: undefined
  readonly handle: (delivery: DeliveredEvent) => Promise<void>
}

/**
 * A polled batch at a time (at most `CONSUMER_BATCH_MAX` events), all or nothing: a rejection
 * hands the batch again after an outage, and narrows a permanent failure down to the one event
 * that fails alone, which is dead-lettered (see `handleBatch` of `SubscribeOptions`).
 */
export interface InboxBatchConsumeOptions extends ConsumeOptions {
  readonly inbox: Inbox
  readonly handleBatch: (batch: InboxBatch) => Promise<void>
}

/** A polled batch at a time, for a handler idempotent by itself (or one that uses its inbox itself). */
export interface PlainBatchConsumeOptions extends ConsumeOptions {
  readonly inbox?: undefined
  readonly handleBatch: (deliveries: readonly DeliveredEvent[]) => Promise<void>
}

type AnyConsumeOptions = InboxConsumeOptions | PlainConsumeOptions | InboxBatchConsumeOptions | PlainBatchConsumeOptions

/**
 * How many partitions of `topics` are handled at the same time: all the catalog gives them.
 * Order within a partition, and so within one aggregate, holds either way.
 */
export function catalogConcurrency(topics: readonly string[]): number {
  const partitions = topics.map((name) => catalog.find((topic) => topic.name === name)?.partitions ?? 1)
  return Math.max(
    1,
    partitions.reduce((sum, count) => sum + count, 0),
  )
}

/** Subscribes a service's handler to its topics; see the module comment. */
export function consumeEvents(options: InboxConsumeOptions): Promise<EventSubscription>
export function consumeEvents(options: PlainConsumeOptions): Promise<EventSubscription>
export function consumeEvents(options: InboxBatchConsumeOptions): Promise<EventSubscription>
export function consumeEvents(options: PlainBatchConsumeOptions): Promise<EventSubscription>
export function consumeEvents(options: AnyConsumeOptions): Promise<EventSubscription> {
  const { settings } = options
  const common = {
    groupId: options.group,
    topics: options.topics,
    partitionsConcurrently: catalogConcurrency(options.topics),
    fromBeginning: settings.CONSUMER_FROM_BEGINNING,
    maxAttempts: settings.CONSUMER_MAX_ATTEMPTS,
    retryBackoffMs: settings.CONSUMER_RETRY_BACKOFF_MS,
    maxRetryBackoffMs: settings.CONSUMER_RETRY_MAX_BACKOFF_MS,
    ...(options.classifyFailure ? { classifyFailure: options.classifyFailure } : {}),
  }
  if ('handleBatch' in options) {
    return options.bus.subscribe({
      ...common,
      maxBatchSize: settings.CONSUMER_BATCH_MAX ?? DEFAULT_CONSUMER_BATCH_MAX,
      handleBatch: batchWithInbox(options),
    })
  }
  return options.bus.subscribe({ ...common, handle: withInbox(options) })
}

function withInbox(options: InboxConsumeOptions | PlainConsumeOptions): (delivery: DeliveredEvent) => Promise<void> {
  if (!options.inbox) return options.handle
  const { inbox, handle } = options
  return (delivery) => handle({ ...delivery, once: (effect) => inbox.once(delivery.event, effect) })
}

function batchWithInbox(
  options: InboxBatchConsumeOptions | PlainBatchConsumeOptions,
): (deliveries: DeliveredEvent[]) => Promise<void> {
  if (!options.inbox) return options.handleBatch
  const { inbox, handleBatch } = options
  return (deliveries) =>
    handleBatch({
      deliveries,
      onceEach: async (effect) => {
        const byEvent = new Map(deliveries.map((delivery) => [delivery.event, delivery]))
        const fresh = await inbox.onceEach(
          deliveries.map((delivery) => delivery.event),
          (events, transaction) => effect(deliveriesOf(events, byEvent), transaction),
        )
        return deliveriesOf(fresh, byEvent)
      },
    })
}

const deliveriesOf = (events: readonly CloudEvent[], byEvent: ReadonlyMap<CloudEvent, DeliveredEvent>) =>
  events.flatMap((event) => {
    const delivery = byEvent.get(event)
    return delivery ? [delivery] : []
  })
