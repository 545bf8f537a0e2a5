import { randomUUID } from 'node:crypto'
import { type CloudEvent, createEvent, isEvent, TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import {
  allFulfilled,
  createBatcher,
  type EventBus,
  type EventPublisher,
  type EventSubscription,
  type TopicAdmin,
} from '@timedeal/platform'
import type { ChatMessage } from './message-store.ts'

const SOURCE = 'chat-service'

/** How many messages one Kafka request carries at most. */
const MAX_PUBLISH_BATCH = 500

/**
 * The chat topic as the message flow uses it: one record per message, keyed by its room.
 * Publishes are gathered: while one request is on its way, the messages sent meanwhile wait
 * and leave together in the next one, so a busy instance makes few large requests rather than
 * one per message; each caller still learns when its own message is durable.
 */
export class ChatEvents {
  readonly #bus: EventBus
  readonly #publisher: EventPublisher
  // One request on its way at a time; the SENDs of one turn of the event loop (the same socket
  // reads) and those made while a request is out leave together in the next one.
  readonly #send: (event: CloudEvent) => Promise<void>

  private constructor(bus: EventBus, publisher: EventPublisher) {
    this.#bus = bus
    this.#publisher = publisher
    this.#send = createBatcher({
      run: async (events: readonly CloudEvent[]) => {
        await this.#publisher.publish(TOPIC_CHAT_MESSAGES, events)
        return allFulfilled(events.map(() => undefined))
      },
      maxBatch: MAX_PUBLISH_BATCH,
    })
  }

  static async open(bus: EventBus): Promise<ChatEvents> {
    return new ChatEvents(bus, await bus.publisher())
  }

  /** Resolves once every in-sync replica has the message (acks=all): it is durable. */
  publish(message: ChatMessage): Promise<void> {
    const event = createEvent('chatMessagePosted', {
      source: SOURCE,
      // The room is the key: one room's messages share a partition, so their order holds.
      subject: message.roomId,
      time: message.sentAt,
      data: {
        messageId: message.id,
        roomId: message.roomId,
        senderId: message.senderId,
        body: Buffer.from(message.body).toString('base64'),
        headers: message.headers,
        postedAt: message.sentAt.toISOString(),
      },
    })
    return this.#send(event)
  }

  /**
   * Every message, in room order, a polled batch of one partition at a time: `groupId` shared
   * by all instances consumes each message once (and commits what it handled); `groupId`
   * unique to an instance (see {@link instanceGroup}) gives that instance all of them, from
   * the end, with nothing to commit: it never resumes.
   */
  async consume(
    groupId: string,
    handle: (messages: ChatMessage[]) => Promise<void>,
    where: { readonly fromBeginning: boolean; readonly commitOffsets: boolean },
  ): Promise<EventSubscription> {
    const subscription = await this.#bus.subscribe({
      groupId,
      topics: [TOPIC_CHAT_MESSAGES],
      ...where,
      partitionsConcurrently: 6,
      handleBatch: async (deliveries) => {
        const messages: ChatMessage[] = []
        for (const { event, partition, offset } of deliveries) {
          if (isEvent(event, 'chatMessagePosted')) messages.push(messageOf(event.data, partition, offset))
        }
        if (messages.length > 0) await handle(messages)
      },
    })
    await subscription.joined
    return subscription
  }

  close(): Promise<void> {
    return this.#publisher.close()
  }
}

/**
 * How far the shared group has stored the chat topic: Kafka's end offsets against the group's
 * committed ones (the group commits a batch only once it is stored).
 */
export class StoredOffsets {
  readonly #admin: TopicAdmin
  readonly #group: string
  #storedAsked: Promise<Map<number, bigint>> | undefined

  private constructor(admin: TopicAdmin, group: string) {
    this.#admin = admin
    this.#group = group
  }

  static async open(bus: EventBus, group: string): Promise<StoredOffsets> {
    return new StoredOffsets(await bus.admin(), group)
  }

  /** Never shared: a resume needs ends read after it went live. */
  ends(): Promise<Map<number, bigint>> {
    return this.#admin.endOffsets(TOPIC_CHAT_MESSAGES)
  }

  /**
   * Resumes waiting at the same time share one request: an answer asked for a moment before a
   * caller came can only be lower than a fresh one, which makes that caller look again.
   */
  stored(): Promise<Map<number, bigint>> {
    this.#storedAsked ??= this.#admin.committedOffsets(this.#group, TOPIC_CHAT_MESSAGES).finally(() => {
      this.#storedAsked = undefined
    })
    return this.#storedAsked
  }

  close(): Promise<void> {
    return this.#admin.close()
  }
}

/** A consumer group of this process alone: it starts at the end and sees every later message. */
export const instanceGroup = (base: string): string => `${base}.instance.${randomUUID()}`

function messageOf(
  data: {
    messageId: string
    roomId: string
    senderId: string
    body: string
    headers: [string, string][]
    postedAt: string
  },
  partition: number,
  offset: string,
): ChatMessage {
  return {
    id: data.messageId,
    roomId: data.roomId,
    senderId: data.senderId,
    body: new Uint8Array(Buffer.from(data.body, 'base64')),
    headers: data.headers,
    sentAt: new Date(data.postedAt),
    position: { partition, offset: BigInt(offset) },
  }
}
