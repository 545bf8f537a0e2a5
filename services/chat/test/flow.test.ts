import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, type IMessage, type IStompSocket } from '@stomp/stompjs'
import { startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { WebSocket } from 'ws'
import type { MessageStore } from '../src/adapters/message-store.ts'
import { type ChatServer, header, RawStompClient, type ReceivedFrame, startChatServer } from './stomp-support.ts'

let issuer: TestIssuer
let server: ChatServer

const RESUME_WAIT_MS = 1_500
const MAX_REDELIVERIES = 2
const MAX_UNACKED = 5

before(async () => {
  issuer = await startTestIssuer()
  server = await startChatServer(issuer, {
    CHAT_RESUME_WAIT_MS: String(RESUME_WAIT_MS),
    CHAT_MAX_REDELIVERIES: String(MAX_REDELIVERIES),
    CHAT_MAX_UNACKED: String(MAX_UNACKED),
    CHAT_SEND_RATE_PER_SECOND: '1000',
    CHAT_SEND_HARD_RATE_PER_SECOND: '2000',
  })
})

after(async () => {
  await server?.stop()
  await issuer?.close()
})

/** Two members of a fresh room and their tokens. */
async function room() {
  const buyerId = uniqueName('buyer')
  const sellerId = uniqueName('seller')
  const roomId = await server.openRoom(buyerId, sellerId)
  return {
    roomId,
    buyer: await issuer.sign({ sub: buyerId, role: 'BUYER' }),
    seller: await issuer.sign({ sub: sellerId, role: 'SELLER' }),
  }
}

/** Holds every write to message storage until released: storage lags while the gate is shut. */
function shutStorage(messages: MessageStore): { release(): void; held(): number } {
  const { promise: opened, resolve: release } = Promise.withResolvers<void>()
  let held = 0
  const save = messages.save.bind(messages)
  const saveMany = messages.saveMany.bind(messages)
  Object.assign(messages, {
    save: async (...args: Parameters<MessageStore['save']>) => {
      held++
      await opened
      return save(...args)
    },
    saveMany: async (...args: Parameters<MessageStore['saveMany']>) => {
      held++
      await opened
      return saveMany(...args)
    },
  })
  return {
    release: () => {
      Object.assign(messages, { save, saveMany })
      release()
    },
    held: () => held,
  }
}

/** Sends with a receipt and waits for it: the message is on Kafka then. */
async function sendDurably(client: RawStompClient, roomId: string, text: string): Promise<void> {
  const receipt = uniqueName('receipt')
  client.sendFrame(
    'SEND',
    [
      ['destination', `/pub/rooms/${roomId}`],
      ['receipt', receipt],
    ],
    text,
  )
  const answer = await client.next(15_000)
  assert.equal(header(answer, 'receipt-id'), receipt, `a RECEIPT for ${text}`)
}

/** The subject of a token signed here. */
const buyerIdOf = (token: string): string =>
  (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sub: string }).sub

const text = (frame: ReceivedFrame) => Buffer.from(frame.body).toString()

describe('delivery from memory and resume while storage lags', () => {
  test('messages reach live subscribers while storage is held, and a resume then replays them once, after storage caught up', async () => {
    const { roomId, buyer, seller } = await room()
    const listener = await RawStompClient.connect(server.url, buyer)
    await listener.subscribe('live', `/sub/rooms/${roomId}`)
    const sender = await RawStompClient.connect(server.url, seller)
    await sendDurably(sender, roomId, 'm1')
    const m1 = await listener.next(15_000)
    assert.equal(text(m1), 'm1')
    const lastSeen = header(m1, 'message-id') ?? ''
    await sleep(500) // m1 reaches storage before it is held

    const gate = shutStorage(server.chat.service.stores.messages)
    try {
      for (const body of ['m2', 'm3']) await sendDurably(sender, roomId, body)
      // Live delivery does not wait for storage.
      assert.deepEqual([text(await listener.next(10_000)), text(await listener.next(10_000))], ['m2', 'm3'])
      assert.ok(gate.held() > 0, 'storage was asked to write and held')

      const resumer = await RawStompClient.connect(server.url, buyer)
      resumer.sendFrame('SUBSCRIBE', [
        ['id', 'resumed'],
        ['destination', `/sub/rooms/${roomId}`],
        ['resume-after', lastSeen],
        ['receipt', 'resumed'],
      ])
      await sleep(300)
      gate.release()
      await sendDurably(sender, roomId, 'm4')
      const frames: ReceivedFrame[] = []
      const messagesIn = () => frames.filter(({ command }) => command === 'MESSAGE').length
      const subscribed = () => frames.some((frame) => header(frame, 'receipt-id') === 'resumed')
      while (messagesIn() < 3 || !subscribed()) frames.push(await resumer.next(15_000))
      // Nothing more: each message once.
      await assert.rejects(resumer.next(1_000), /no frame within/)
      assert.deepEqual(frames.filter(({ command }) => command === 'MESSAGE').map(text), ['m2', 'm3', 'm4'])
      resumer.close()
    } finally {
      gate.release()
      listener.close()
      sender.close()
    }
  })

  test('a resume is refused with ERROR "history is catching up" when storage stays behind past CHAT_RESUME_WAIT_MS', async () => {
    const { roomId, buyer, seller } = await room()
    const sender = await RawStompClient.connect(server.url, seller)
    await sendDurably(sender, roomId, 'stored')
    await sleep(500)
    const gate = shutStorage(server.chat.service.stores.messages)
    try {
      await sendDurably(sender, roomId, 'held back')
      const resumer = await RawStompClient.connect(server.url, buyer)
      resumer.sendFrame('SUBSCRIBE', [
        ['id', 'resumed'],
        ['destination', `/sub/rooms/${roomId}`],
        ['resume-after', '00000000-0000-7000-8000-000000000000'],
      ])
      const refused = await resumer.next(RESUME_WAIT_MS + 10_000)
      assert.equal(refused.command, 'ERROR')
      assert.match(header(refused, 'message') ?? '', /history is catching up; retry/)
      await resumer.closed
    } finally {
      gate.release()
      sender.close()
    }
  })
})

describe('NACK on client-acknowledged room subscriptions', () => {
  test('a NACKed message comes again marked redelivered, up to CHAT_MAX_REDELIVERIES times, then the error queue says it was given up', async () => {
    const { roomId, buyer, seller } = await room()
    const client = await RawStompClient.connect(server.url, buyer)
    await client.subscribe('errors', '/user/queue/errors')
    await client.subscribe('room', `/sub/rooms/${roomId}`, [['ack', 'client-individual']])
    const sender = await RawStompClient.connect(server.url, seller)
    try {
      await sendDurably(sender, roomId, 'hard to swallow')
      const deliveries: ReceivedFrame[] = [await client.next(15_000)]
      assert.equal(header(deliveries[0] as ReceivedFrame, 'redelivered'), undefined)
      for (let attempt = 0; attempt < MAX_REDELIVERIES; attempt++) {
        client.sendFrame('NACK', [['id', header(deliveries.at(-1) as ReceivedFrame, 'ack') ?? '']])
        deliveries.push(await client.next())
      }
      for (const delivery of deliveries) {
        assert.equal(delivery.command, 'MESSAGE')
        assert.equal(text(delivery), 'hard to swallow')
        assert.equal(header(delivery, 'message-id'), header(deliveries[0] as ReceivedFrame, 'message-id'))
      }
      assert.deepEqual(
        deliveries.slice(1).map((delivery) => header(delivery, 'redelivered')),
        Array(MAX_REDELIVERIES).fill('true'),
      )
      client.sendFrame('NACK', [['id', header(deliveries.at(-1) as ReceivedFrame, 'ack') ?? '']])
      const givenUp = await client.next()
      assert.equal(header(givenUp, 'destination'), '/user/queue/errors')
      assert.match(text(givenUp), /given up after 2 redeliveries/)
      // An acknowledged message does not come again.
      await sendDurably(sender, roomId, 'fine')
      const fine = await client.next(15_000)
      client.sendFrame('ACK', [
        ['id', header(fine, 'ack') ?? ''],
        ['receipt', 'acked'],
      ])
      assert.equal((await client.next()).command, 'RECEIPT')
    } finally {
      client.close()
      sender.close()
    }
  })

  test('with @stomp/stompjs, message.nack() brings the message back with redelivered: true', async () => {
    const { roomId, buyer, seller } = await room()
    const client = new Client({
      webSocketFactory: () => new WebSocket(server.url, ['v12.stomp']) as unknown as IStompSocket,
      connectHeaders: { passcode: buyer },
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      reconnectDelay: 0,
    })
    const connected = new Promise<void>((resolve) => {
      client.onConnect = () => resolve()
    })
    client.activate()
    await connected
    const received: IMessage[] = []
    const subscribed = new Promise<void>((resolve) => client.watchForReceipt('sub', () => resolve()))
    client.subscribe(
      `/sub/rooms/${roomId}`,
      (message) => {
        received.push(message)
        if (received.length === 1) message.nack()
        else message.ack()
      },
      { ack: 'client-individual', receipt: 'sub' },
    )
    await subscribed
    const sender = await RawStompClient.connect(server.url, seller)
    try {
      await sendDurably(sender, roomId, 'again please')
      const deadline = Date.now() + 15_000
      while (received.length < 2 && Date.now() < deadline) await sleep(50)
      await sleep(300)
      assert.deepEqual(
        received.map((message) => [message.body, message.headers.redelivered]),
        [
          ['again please', undefined],
          ['again please', 'true'],
        ],
      )
    } finally {
      sender.close()
      await client.deactivate()
    }
  })

  test('a client that never acknowledges is closed once a subscription holds more than CHAT_MAX_UNACKED messages', async () => {
    const { roomId, buyer, seller } = await room()
    const client = await RawStompClient.connect(server.url, buyer)
    await client.subscribe('room', `/sub/rooms/${roomId}`, [['ack', 'client']])
    const sender = await RawStompClient.connect(server.url, seller)
    try {
      for (let index = 0; index <= MAX_UNACKED; index++) await sendDurably(sender, roomId, `m${index}`)
      const frames: ReceivedFrame[] = []
      for (;;) {
        const frame = await client.next(15_000)
        frames.push(frame)
        if (frame.command === 'ERROR') break
      }
      assert.equal(frames.filter(({ command }) => command === 'MESSAGE').length, MAX_UNACKED + 1)
      assert.match(header(frames.at(-1) as ReceivedFrame, 'message') ?? '', /unacknowledged/)
      await client.closed
    } finally {
      sender.close()
    }
  })
})

describe('rooms are read once', () => {
  test('many SENDs and SUBSCRIBEs to one room ask MySQL for the room once; a room not found is asked again', async () => {
    const { roomId, buyer, seller } = await room()
    const queries: string[] = []
    const sequelize = server.chat.sequelize
    const watch = (sql: string) => {
      if (/FROM rooms WHERE id/i.test(sql)) queries.push(sql)
    }
    sequelize.addHook('afterQuery', 'count-room-reads', (_options, query) =>
      watch(String((query as unknown as { sql?: string }).sql)),
    )
    try {
      const client = await RawStompClient.connect(server.url, buyer)
      await client.subscribe('room', `/sub/rooms/${roomId}`)
      const sender = await RawStompClient.connect(server.url, seller)
      for (let index = 0; index < 10; index++) await sendDurably(sender, roomId, `m${index}`)
      for (let index = 0; index < 10; index++) assert.equal(text(await client.next(15_000)), `m${index}`)
      assert.ok(queries.length <= 1, `${queries.length} room queries`)

      // Subscribed to before it exists: refused, and not remembered as missing.
      const early = randomUUID()
      sender.sendFrame('SUBSCRIBE', [
        ['id', 'early'],
        ['destination', `/sub/rooms/${early}`],
      ])
      assert.equal((await sender.next()).command, 'ERROR')
      await server.chat.service.stores.rooms.open({
        id: early,
        goodsId: uniqueName('goods'),
        buyerId: buyerIdOf(buyer),
        sellerId: uniqueName('seller'),
        createdAt: new Date(),
      })
      await client.subscribe('early', `/sub/rooms/${early}`)
      client.close()
    } finally {
      sequelize.removeHook('afterQuery', 'count-room-reads')
    }
  })
})

describe('notifications of a stored batch', () => {
  test('an absent member gets one notification per missed message of a burst, recorded once each and pushed to their queue', async () => {
    const { roomId, buyer, seller } = await room()
    const sellerId = buyerIdOf(seller)
    const listener = await RawStompClient.connect(server.url, seller)
    await listener.subscribe('notifications', '/user/queue/notifications')
    const sender = await RawStompClient.connect(server.url, buyer)
    try {
      for (let index = 0; index < 5; index++) {
        sender.sendFrame('SEND', [['destination', `/pub/rooms/${roomId}`]], `burst ${index}`)
      }
      const pushed: { type: string; messageId: string; roomId: string }[] = []
      while (pushed.length < 5) pushed.push(JSON.parse(text(await listener.next(15_000))))
      assert.ok(pushed.every((notification) => notification.type === 'message' && notification.roomId === roomId))
      assert.equal(new Set(pushed.map(({ messageId }) => messageId)).size, 5)
      const store = server.chat.service.stores.notifications
      assert.equal(await store.unreadCount(sellerId), 5)
      // Recording them again (a redelivered batch) changes nothing and answers the same ones.
      const again = await store.addMany(
        pushed.map(({ messageId }) => ({ userId: sellerId, roomId, messageId, at: new Date() })),
      )
      assert.equal(again.length, 5)
      assert.equal(await store.unreadCount(sellerId), 5)
    } finally {
      listener.close()
      sender.close()
    }
  })
})
