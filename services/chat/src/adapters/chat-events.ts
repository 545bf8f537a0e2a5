import { randomUUID } from 'node:crypto'
import { createEvent, isEvent, TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import type { EventBus, EventPublisher, EventSubscription } from '@timedeal/platform'
import type { ChatMessage } from './message-store.ts'

const SOURCE = 'chat-service'

/** The chat topic as the message flow uses it: one record per message, keyed by its room. */
export class ChatEvents {
  readonly #bus: EventBus
  readonly #publisher: EventPublisher

  private constructor(bus: EventBus, publisher: EventPublisher) {
    this.#bus = bus
    this.#publisher = publisher
  }

  static async open(bus: EventBus): Promise<ChatEvents> {
    return new ChatEvents(bus, await bus.publisher())
  }

  /** Resolves once every in-sync replica has the message (acks=all): it is durable. */
  async publish(message: ChatMessage): Promise<void> {
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
    await this.#publisher.publish(TOPIC_CHAT_MESSAGES, [event])
  }

  /**
   * Every message, in room order: `groupId` shared by all instances consumes each message once;
   * `groupId` unique to an instance (see {@link instanceGroup}) gives that instance all of them.
   */
  async consume(
    groupId: string,
    handle: (message: ChatMessage) => Promise<void>,
    fromBeginning: boolean,
  ): Promise<EventSubscription> {
    const subscription = await this.#bus.subscribe({
      groupId,
      topics: [TOPIC_CHAT_MESSAGES],
      fromBeginning,
      partitionsConcurrently: 6,
      handle: async ({ event }) => {
        if (isEvent(event, 'chatMessagePosted')) await handle(messageOf(event.data))
      },
    })
    await subscription.joined
    return subscription
  }

  close(): Promise<void> {
    return this.#publisher.close()
  }
}

/** A consumer group of this process alone: it starts at the end and sees every later message. */
export const instanceGroup = (base: string): string => `${base}.instance.${randomUUID()}`

function messageOf(data: {
  messageId: string
  roomId: string
  senderId: string
  body: string
  headers: [string, string][]
  postedAt: string
}): ChatMessage {
  return {
    id: data.messageId,
    roomId: data.roomId,
    senderId: data.senderId,
    body: new Uint8Array(Buffer.from(data.body, 'base64')),
    headers: data.headers,
    sentAt: new Date(data.postedAt),
  }
}
