import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { type ChatServer, header, RawStompClient, type ReceivedFrame, startChatServer } from './stomp-support.ts'

let issuer: TestIssuer

before(async () => {
  issuer = await startTestIssuer()
})

after(async () => {
  await issuer?.close()
})

async function frames(client: RawStompClient, count: number): Promise<ReceivedFrame[]> {
  const received: ReceivedFrame[] = []
  while (received.length < count) received.push(await client.next())
  return received
}

describe('/ws/chat limits', () => {
  let server: ChatServer
  before(async () => {
    server = await startChatServer(issuer, { CHAT_SEND_RATE_PER_SECOND: '3', CHAT_SEND_HARD_RATE_PER_SECOND: '6' })
  })
  after(async () => {
    await server?.stop()
  })

  test('past the soft rate a SEND is dropped with a MESSAGE on /user/queue/errors; past the hard rate, ERROR and close', async () => {
    const buyerId = uniqueName('buyer')
    const roomId = await server.openRoom(buyerId, uniqueName('seller'))
    const client = await RawStompClient.connect(server.url, await issuer.sign({ sub: buyerId, role: 'BUYER' }))
    await client.subscribe('errors', '/user/queue/errors')
    for (let index = 0; index < 5; index++) {
      client.sendFrame(
        'SEND',
        [
          ['destination', `/pub/rooms/${roomId}`],
          ['receipt', `r${index}`],
        ],
        `message ${index}`,
      )
    }
    const answers = await frames(client, 5)
    assert.deepEqual(
      answers.map((frame) => frame.command),
      ['RECEIPT', 'RECEIPT', 'RECEIPT', 'MESSAGE', 'MESSAGE'],
    )
    assert.equal(header(answers[3] as ReceivedFrame, 'destination'), '/user/queue/errors')
    assert.match(Buffer.from((answers[3] as ReceivedFrame).body).toString(), /too fast/)
    assert.equal(client.socket.readyState, client.socket.OPEN)

    for (let index = 5; index < 12; index++) {
      client.sendFrame('SEND', [['destination', `/pub/rooms/${roomId}`]], `message ${index}`)
    }
    let last: ReceivedFrame
    do last = await client.next()
    while (last.command === 'MESSAGE')
    assert.equal(last.command, 'ERROR')
    assert.match(header(last, 'message') ?? '', /too fast/)
    await client.closed
  })
})

describe('/ws/chat slow consumers', () => {
  let server: ChatServer
  before(async () => {
    server = await startChatServer(issuer, {
      CHAT_SEND_BUFFER_BYTES: String(64 * 1024),
      CHAT_MAX_BODY_BYTES: String(16 * 1024),
      CHAT_SEND_RATE_PER_SECOND: '10000',
      CHAT_SEND_HARD_RATE_PER_SECOND: '10000',
    })
  })
  after(async () => {
    await server?.stop()
  })

  test('a subscriber that stops reading is disconnected once its send buffer is full; senders carry on', async () => {
    const buyerId = uniqueName('buyer')
    const sellerId = uniqueName('seller')
    const roomId = await server.openRoom(buyerId, sellerId)
    const slow = await RawStompClient.connect(server.url, await issuer.sign({ sub: buyerId, role: 'BUYER' }))
    await slow.subscribe('room', `/sub/rooms/${roomId}`)
    // Stops reading: the kernel's buffers fill, then the server's own.
    const tcp = (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket
    tcp.pause()
    const sellerToken = await issuer.sign({ sub: sellerId, role: 'SELLER' })
    const body = 'x'.repeat(15 * 1024)
    const senders = await Promise.all(Array.from({ length: 8 }, () => RawStompClient.connect(server.url, sellerToken)))
    let disconnected = false
    const counted = server.chat.service.websocket.clients
    const before = counted.size
    for (let round = 0; round < 200 && !disconnected; round++) {
      await Promise.all(
        senders.map(async (sender, index) => {
          sender.sendFrame(
            'SEND',
            [
              ['destination', `/pub/rooms/${roomId}`],
              ['receipt', `${round}-${index}`],
            ],
            body,
          )
          assert.equal((await sender.next()).command, 'RECEIPT')
        }),
      )
      disconnected = counted.size < before
    }
    assert.equal(disconnected, true, 'the slow subscriber was never disconnected')
    tcp.resume()
    await slow.closed
    for (const sender of senders) sender.close()
  })
})
