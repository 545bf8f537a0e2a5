/**
 * The one way a service consumes events: it names its group, its topics and its handler; the
 * platform subscribes with the service's consumer settings, handles as many partitions at once
 * as the catalog gives the topics, and, for a service with an inbox, hands the handler its
 * event's inbox transaction.
 */
import { topics as catalog } from '@timedeal/contracts'
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
}

/** A delivery to a consumer with an inbox. */
export interface InboxDelivery extends DeliveredEvent {
  /**
   * Runs `effect` in the transaction that records this event as handled by the consumer;
   * false (and nothing run) when it was handled before. Work outside any transaction (a call
   * to another service, say) goes before it; everything the event changes goes inside.
   */
  once(effect: (transaction: Transaction) => Promise<void>): Promise<boolean>
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
export function consumeEvents(options: InboxConsumeOptions | PlainConsumeOptions): Promise<EventSubscription> {
  const { settings } = options
  return options.bus.subscribe({
    groupId: options.group,
    topics: options.topics,
    partitionsConcurrently: catalogConcurrency(options.topics),
    fromBeginning: settings.CONSUMER_FROM_BEGINNING,
    maxAttempts: settings.CONSUMER_MAX_ATTEMPTS,
    retryBackoffMs: settings.CONSUMER_RETRY_BACKOFF_MS,
    maxRetryBackoffMs: settings.CONSUMER_RETRY_MAX_BACKOFF_MS,
    ...(options.classifyFailure ? { classifyFailure: options.classifyFailure } : {}),
    handle: withInbox(options),
  })
}

function withInbox(options: InboxConsumeOptions | PlainConsumeOptions): (delivery: DeliveredEvent) => Promise<void> {
  if (!options.inbox) return options.handle
  const { inbox, handle } = options
  return (delivery) => handle({ ...delivery, once: (effect) => inbox.once(delivery.event, effect) })
}
