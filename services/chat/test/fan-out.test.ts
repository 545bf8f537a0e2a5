import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { connectTestRedis, eventually, uniqueName } from '@timedeal/platform/testing'
import { RedisNotificationFanOut } from '../src/adapters/presence.ts'
import type { PushedNotification } from '../src/flows/hub.ts'

test('the notification channel is listened on even when its connection is still in its handshake, so no instance misses pushes', async () => {
  const redis = connectTestRedis('chat-fan-out-test')
  const fanOut = new RedisNotificationFanOut(redis, uniqueName('test-chat'))
  // The state a service's subscriber connection is in while its other dependencies start: the
  // socket is open, the client's handshake (name, info, ready check) not yet done.
  const subscriber = redis.duplicate()
  const faults: Error[] = []
  subscriber.on('error', (error: Error) => faults.push(error))
  await once(subscriber, 'connect')
  const received: { userId: string; notification: PushedNotification }[] = []
  try {
    await fanOut.listen(subscriber, (userId, notification) => received.push({ userId, notification }))
    const notification: PushedNotification = { type: 'read', roomId: 'r', readerId: 'u', at: new Date().toISOString() }
    await eventually(async () => {
      await fanOut.push('someone', notification)
      return received.length > 0 ? true : undefined
    })
    assert.deepEqual(received[0], { userId: 'someone', notification })
    assert.deepEqual(
      faults.map((fault) => fault.message),
      [],
    )
  } finally {
    subscriber.disconnect()
    await redis.quit()
  }
})
