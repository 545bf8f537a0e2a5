import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import { createMongo } from '@timedeal/platform'
import {
  eventually,
  prepareServiceUnderTest,
  type ServiceProcess,
  type ServiceUnderTest,
  spawnReadyService,
  startGroupsAtEnd,
  startTestIssuer,
  type TestIssuer,
  testLogger,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import { migrations } from '../src/adapters/migrations.ts'
import { NotificationStore } from '../src/adapters/notification-store.ts'
import { RoomStore } from '../src/adapters/room-store.ts'
import { newRoomId } from '../src/domain/ids.ts'
import { header, RawStompClient } from './stomp-support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

let issuer: TestIssuer
let owned: ServiceUnderTest
let mongoDatabase: string
let instances: ServiceProcess[] = []
const socketUrl = (instance: ServiceProcess) => `${instance.url.replace('http', 'ws')}/ws/chat`

before(async () => {
  issuer = await startTestIssuer()
  owned = await prepareServiceUnderTest({
    name: 'chat_instances',
    migrations,
    issuer,
    consumes: { groupSetting: 'CHAT_MESSAGES_GROUP', topics: [TOPIC_CHAT_MESSAGES] },
    redisPrefixSetting: 'CHAT_REDIS_PREFIX',
  })
  mongoDatabase = uniqueName('timedeal_test_chat')
  // Two instances on the same databases, Redis keys and consumer group, as in production.
  const env = { ...owned.env, MONGO_DATABASE: mongoDatabase, LOG_LEVEL: 'warn' }
  instances = await Promise.all([spawnReadyService(entry, env), spawnReadyService(entry, env)])
})

after(async () => {
  await Promise.all(instances.map((instance) => instance.stop('SIGTERM')))
  const mongo = await createMongo({ url: testSettings.MONGO_URL, database: mongoDatabase, logger: testLogger })
  await mongo.dropDatabase()
  await mongo.close()
  await owned?.release()
  await issuer?.close()
})

async function openRoom(buyerId: string, sellerId: string): Promise<string> {
  const id = newRoomId()
  await new RoomStore(owned.database.sequelize).open({
    id,
    goodsId: uniqueName('goods'),
    buyerId,
    sellerId,
    createdAt: new Date(),
  })
  return id
}

describe('two chat-service instances', () => {
  test('a message sent to one instance reaches subscribers on the other, in the order sent', async () => {
    const [first, second] = instances as [ServiceProcess, ServiceProcess]
    const buyerId = uniqueName('buyer')
    const sellerId = uniqueName('seller')
    const roomId = await openRoom(buyerId, sellerId)
    const listener = await RawStompClient.connect(socketUrl(second), await issuer.sign({ sub: buyerId, role: 'BUYER' }))
    await listener.subscribe('room', `/sub/rooms/${roomId}`)
    const sender = await RawStompClient.connect(socketUrl(first), await issuer.sign({ sub: sellerId, role: 'SELLER' }))
    const texts = Array.from({ length: 20 }, (_, index) => `message ${index}`)
    for (const text of texts) sender.sendFrame('SEND', [['destination', `/pub/rooms/${roomId}`]], text)
    const received: string[] = []
    while (received.length < texts.length) received.push(Buffer.from((await listener.next(15_000)).body).toString())
    assert.deepEqual(received, texts)
    listener.close()
    sender.close()
  })

  test('a member absent from the room is notified on whichever instance they are connected; a present one is not', async () => {
    const [first, second] = instances as [ServiceProcess, ServiceProcess]
    const buyerId = uniqueName('buyer')
    const sellerId = uniqueName('seller')
    const roomId = await openRoom(buyerId, sellerId)
    // The buyer is in the room on the first instance; the seller is only listening for notifications on the second.
    const buyer = await RawStompClient.connect(socketUrl(first), await issuer.sign({ sub: buyerId, role: 'BUYER' }))
    await buyer.subscribe('room', `/sub/rooms/${roomId}`)
    const seller = await RawStompClient.connect(socketUrl(second), await issuer.sign({ sub: sellerId, role: 'SELLER' }))
    await seller.subscribe('notifications', '/user/queue/notifications')

    buyer.sendFrame('SEND', [['destination', `/pub/rooms/${roomId}`]], 'are you there?')
    assert.equal(Buffer.from((await buyer.next()).body).toString(), 'are you there?')
    const pushed = await seller.next(15_000)
    assert.equal(header(pushed, 'destination'), '/user/queue/notifications')
    const notification = JSON.parse(Buffer.from(pushed.body).toString()) as {
      type: string
      roomId: string
      senderId: string
    }
    assert.equal(notification.type, 'message')
    assert.equal(notification.roomId, roomId)
    assert.equal(notification.senderId, buyerId)

    seller.sendFrame(
      'SEND',
      [
        ['destination', `/pub/rooms/${roomId}`],
        ['receipt', 'r'],
      ],
      'yes',
    )
    assert.equal((await seller.next()).command, 'RECEIPT')
    assert.equal(Buffer.from((await buyer.next()).body).toString(), 'yes')
    const notifications = new NotificationStore(owned.database.sequelize)
    await eventually(async () => ((await notifications.unreadCount(sellerId)) === 1 ? true : undefined))
    // The buyer was present when "yes" came: give the shared consumer time to judge it; nothing for them.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(await notifications.unreadCount(buyerId), 0)

    // The seller enters the room: their notifications of it are read, and the buyer is told.
    await buyer.subscribe('notifications', '/user/queue/notifications')
    await seller.subscribe('room', `/sub/rooms/${roomId}`)
    assert.equal(await notifications.unreadCount(sellerId), 0)
    const read = JSON.parse(Buffer.from((await buyer.next(15_000)).body).toString()) as {
      type: string
      readerId: string
    }
    assert.deepEqual([read.type, read.readerId], ['read', sellerId])
    buyer.close()
    seller.close()
  })

  test('the presence of a killed instance expires: its member is then notified like anyone absent', async () => {
    const [first] = instances as [ServiceProcess, ServiceProcess]
    // Its own shared group, so the killed process holds none of the others' partitions.
    const group = uniqueName('chat-messages-doomed')
    await startGroupsAtEnd([group], [TOPIC_CHAT_MESSAGES])
    const doomed = await spawnReadyService(entry, {
      ...owned.env,
      MONGO_DATABASE: mongoDatabase,
      LOG_LEVEL: 'warn',
      CHAT_MESSAGES_GROUP: group,
      CHAT_PRESENCE_TTL_MS: '1500',
    })
    const buyerId = uniqueName('buyer')
    const sellerId = uniqueName('seller')
    const roomId = await openRoom(buyerId, sellerId)
    const notifications = new NotificationStore(owned.database.sequelize)
    try {
      const buyer = await RawStompClient.connect(socketUrl(doomed), await issuer.sign({ sub: buyerId, role: 'BUYER' }))
      await buyer.subscribe('room', `/sub/rooms/${roomId}`)
      const seller = await RawStompClient.connect(
        socketUrl(first),
        await issuer.sign({ sub: sellerId, role: 'SELLER' }),
      )
      seller.sendFrame('SEND', [['destination', `/pub/rooms/${roomId}`]], 'while you are here')
      assert.equal(Buffer.from((await buyer.next(15_000)).body).toString(), 'while you are here')

      await doomed.stop('SIGKILL')
      await new Promise((resolve) => setTimeout(resolve, 2500))
      seller.sendFrame('SEND', [['destination', `/pub/rooms/${roomId}`]], 'after the crash')
      await eventually(async () => ((await notifications.unreadCount(buyerId)) === 1 ? true : undefined))
      seller.close()
    } finally {
      await doomed.stop('SIGKILL')
    }
  })
})
