import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import type { EventBus } from '@timedeal/platform'
import { eventually, startGroupsAtEnd, testEventBus, uniqueName } from '@timedeal/platform/testing'
import { ChatEvents, StoredOffsets } from '../src/adapters/chat-events.ts'
import type { ChatMessage } from '../src/adapters/message-store.ts'
import { newMessageId, newRoomId } from '../src/domain/ids.ts'

/** The bus, counting the publish requests it makes and how many events each carried. */
function countingBus(bus: EventBus): { bus: EventBus; requests: number[] } {
  const requests: number[] = []
  return {
    requests,
    bus: {
      ...bus,
      async publisher() {
        const publisher = await bus.publisher()
        return {
          publish: (topic, events) => {
            requests.push(events.length)
            return publisher.publish(topic, events)
          },
          close: () => publisher.close(),
        }
      },
    },
  }
}

test('fifty messages sent at once leave in one Kafka request, each caller learns it is durable, and they come back in order with their offsets', async () => {
  const group = uniqueName('chat-events-test')
  await startGroupsAtEnd([group], [TOPIC_CHAT_MESSAGES])
  const { bus, requests } = countingBus(testEventBus('chat-events-test'))
  const events = await ChatEvents.open(bus)
  const roomId = newRoomId()
  const sent: ChatMessage[] = Array.from({ length: 50 }, (_, index) => ({
    id: newMessageId(Date.now()),
    roomId,
    senderId: 'sender',
    body: new TextEncoder().encode(`m${index}`),
    headers: [['content-type', 'text/plain']],
    sentAt: new Date(),
  }))
  const received: ChatMessage[][] = []
  const subscription = await events.consume(
    group,
    async (messages) => {
      received.push(messages.filter((message) => message.roomId === roomId))
    },
    { fromBeginning: false, commitOffsets: true },
  )
  const storage = await StoredOffsets.open(bus, group)
  try {
    await Promise.all(sent.map((message) => events.publish(message)))
    assert.deepEqual(requests, [50])
    await eventually(async () => (received.flat().length >= sent.length ? true : undefined), 20_000, 'all fifty')
    const back = received.flat()
    assert.deepEqual(
      back.map(({ id }) => id),
      sent.map(({ id }) => id),
    )
    const offsets = back.map(({ position }) => position?.offset ?? -1n)
    assert.ok(
      offsets.every((offset, index) => index === 0 || offset > (offsets[index - 1] ?? -1n)),
      'offsets grow',
    )
    // Once handled, the group's committed offset of the room's partition passes the last of them.
    const partition = back[0]?.position?.partition ?? -1
    await eventually(
      async () => (((await storage.stored()).get(partition) ?? 0n) > (offsets.at(-1) ?? 0n) ? true : undefined),
      10_000,
      'the committed offset',
    )
    assert.ok(((await storage.ends()).get(partition) ?? 0n) > (offsets.at(-1) ?? 0n))
  } finally {
    await subscription.close()
    await storage.close()
    await events.close()
  }
})
