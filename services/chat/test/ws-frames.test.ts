import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { type ChatServer, header, RawStompClient, startChatServer } from './stomp-support.ts'

let issuer: TestIssuer
let server: ChatServer
const buyerId = uniqueName('buyer')
const sellerId = uniqueName('seller')
let buyerToken: string
let sellerToken: string
let roomId: string

before(async () => {
  issuer = await startTestIssuer()
  server = await startChatServer(issuer, { CHAT_MAX_FRAME_BYTES: '4096', CHAT_MAX_BODY_BYTES: '2048' })
  buyerToken = await issuer.sign({ sub: buyerId, role: 'BUYER' })
  sellerToken = await issuer.sign({ sub: sellerId, role: 'SELLER' })
  roomId = await server.openRoom(buyerId, sellerId)
})

after(async () => {
  await server?.stop()
  await issuer?.close()
})

/** A buyer subscribed to the room, and the seller ready to send to it. */
async function pair(): Promise<{ listener: RawStompClient; sender: RawStompClient }> {
  const listener = await RawStompClient.connect(server.url, buyerToken)
  await listener.subscribe('room', `/sub/rooms/${roomId}`)
  const sender = await RawStompClient.connect(server.url, sellerToken)
  return { listener, sender }
}

/** The connection gets one ERROR whose message says `what`, then is closed. */
async function assertErrorAndClose(client: RawStompClient, what: RegExp): Promise<void> {
  const error = await client.next()
  assert.equal(error.command, 'ERROR', `expected ERROR, got ${error.command}`)
  assert.match(header(error, 'message') ?? '', what)
  await client.closed
}

/** Someone else connects, sends and receives after a connection was thrown out. */
async function assertStillServing(): Promise<void> {
  const { listener, sender } = await pair()
  sender.sendFrame(
    'SEND',
    [
      ['destination', `/pub/rooms/${roomId}`],
      ['receipt', 'alive'],
    ],
    'still here',
  )
  assert.equal((await sender.next()).command, 'RECEIPT')
  const message = await listener.next()
  assert.equal(Buffer.from(message.body).toString(), 'still here')
  listener.close()
  sender.close()
}

describe('/ws/chat with raw frames', () => {
  test('header escaping survives the trip: a colon and a line end in a header value arrive as sent', async () => {
    const { listener, sender } = await pair()
    sender.write(`SEND\ndestination:/pub/rooms/${roomId}\nnote:a\\cb\\nc\\\\d\n\nhello\0`)
    const message = await listener.next()
    assert.equal(message.command, 'MESSAGE')
    assert.equal(header(message, 'note'), 'a:b\nc\\d')
    assert.match(message.raw.toString(), /\nnote:a\\cb\\nc\\\\d\n/)
    assert.equal(Buffer.from(message.body).toString(), 'hello')
    listener.close()
    sender.close()
  })

  test('a body with NUL octets and a content-length arrives byte for byte, in a binary WebSocket message', async () => {
    const { listener, sender } = await pair()
    const body = Uint8Array.from([0x00, 0xff, 0x00, 0x41, 0x00])
    sender.sendFrame(
      'SEND',
      [
        ['destination', `/pub/rooms/${roomId}`],
        ['content-type', 'application/octet-stream'],
      ],
      body,
    )
    const message = await listener.next()
    assert.deepEqual([...message.body], [...body])
    assert.equal(header(message, 'content-type'), 'application/octet-stream')
    assert.equal(message.binary, true)
    listener.close()
    sender.close()
  })

  test('a frame split across three WebSocket messages is handled once its last byte arrives', async () => {
    const { listener, sender } = await pair()
    const frame = `SEND\ndestination:/pub/rooms/${roomId}\nreceipt:split\n\nin three parts\0`
    sender.write(frame.slice(0, 7))
    sender.write(frame.slice(7, 30))
    sender.write(frame.slice(30))
    assert.equal((await sender.next()).command, 'RECEIPT')
    assert.equal(Buffer.from((await listener.next()).body).toString(), 'in three parts')
    listener.close()
    sender.close()
  })

  test('an oversize frame gets ERROR and close, and the server goes on serving others', async () => {
    const client = await RawStompClient.connect(server.url, sellerToken)
    client.write(`SEND\ndestination:/pub/rooms/${roomId}\n\n${'x'.repeat(8000)}\0`)
    await assertErrorAndClose(client, /larger than 2048 bytes/)
    await assertStillServing()
  })

  test('a WebSocket message too large to take in whole still gets ERROR with a message before the close', async () => {
    const client = await RawStompClient.connect(server.url, sellerToken)
    // Past the WebSocket message limit (four frames' worth), not only past one frame's.
    client.write(`SEND\ndestination:/pub/rooms/${roomId}\n\n${'x'.repeat(20_000)}\0`)
    await assertErrorAndClose(client, /WebSocket message larger than 16384 bytes/)
    await assertStillServing()
  })

  test('a text WebSocket message that is not UTF-8 (a binary body sent as text) gets ERROR with a message before the close', async () => {
    const client = await RawStompClient.connect(server.url, sellerToken)
    const frame = Buffer.concat([
      Buffer.from(`SEND\ndestination:/pub/rooms/${roomId}\ncontent-length:2\n\n`),
      Buffer.from([0xff, 0xfe, 0x00]),
    ])
    client.write(frame, false)
    await assertErrorAndClose(client, /not valid UTF-8/)
    await assertStillServing()
  })

  test('an unknown command gets ERROR and close, and the server goes on serving others', async () => {
    const client = await RawStompClient.connect(server.url, sellerToken)
    client.write('HELLO\n\n\0')
    await assertErrorAndClose(client, /command/i)
    await assertStillServing()
  })

  test('SUBSCRIBE without an id gets ERROR and close', async () => {
    const client = await RawStompClient.connect(server.url, buyerToken)
    client.sendFrame('SUBSCRIBE', [['destination', `/sub/rooms/${roomId}`]])
    await assertErrorAndClose(client, /missing header id/)
    await assertStillServing()
  })

  test('a subscription id used twice gets ERROR and close', async () => {
    const client = await RawStompClient.connect(server.url, buyerToken)
    await client.subscribe('same', `/sub/rooms/${roomId}`)
    client.sendFrame('SUBSCRIBE', [
      ['id', 'same'],
      ['destination', '/user/queue/notifications'],
    ])
    await assertErrorAndClose(client, /already in use/)
    await assertStillServing()
  })

  test('a foreign Origin is refused at the upgrade; a listed one, its own host and none at all are let in', async () => {
    await assert.rejects(RawStompClient.open(server.url, { origin: 'https://evil.example' }), /refused with 403/)
    const listed = await RawStompClient.open(server.url, { origin: 'http://localhost:8080' })
    listed.close()
    const none = await RawStompClient.open(server.url)
    none.close()
    const same = await RawStompClient.open(server.url, { origin: `http://${new URL(server.url).host}` })
    same.close()
  })

  test('the best STOMP subprotocol offered is chosen', async () => {
    const client = await RawStompClient.open(server.url, { protocols: ['v10.stomp', 'v12.stomp', 'v11.stomp'] })
    assert.equal(client.socket.protocol, 'v12.stomp')
    client.close()
  })

  test('a bad or expired token gets ERROR and close', async () => {
    const bad = await RawStompClient.open(server.url)
    bad.sendFrame('CONNECT', [
      ['accept-version', '1.2'],
      ['passcode', 'not-a-token'],
    ])
    await assertErrorAndClose(bad, /invalid or expired access token/)
    const expired = await RawStompClient.open(server.url)
    expired.sendFrame('CONNECT', [
      ['accept-version', '1.2'],
      ['passcode', await issuer.sign({ sub: buyerId, role: 'BUYER' }, { expiresIn: -60 })],
    ])
    await assertErrorAndClose(expired, /invalid or expired access token/)
  })

  test('the token may come in the Authorization header of the upgrade instead of CONNECT', async () => {
    const client = await RawStompClient.open(server.url, { headers: { authorization: `Bearer ${buyerToken}` } })
    client.sendFrame('CONNECT', [['accept-version', '1.2']])
    assert.equal((await client.next()).command, 'CONNECTED')
    client.close()
  })

  test('a resume-after that is no message id gets ERROR and close, never a silent subscription that replays nothing', async () => {
    const client = await RawStompClient.connect(server.url, buyerToken)
    client.sendFrame('SUBSCRIBE', [
      ['id', 'resumed'],
      ['destination', `/sub/rooms/${roomId}`],
      ['resume-after', 'the-last-one-i-saw'],
      ['receipt', 'r'],
    ])
    await assertErrorAndClose(client, /resume-after must be a message id/)
    await assertStillServing()
  })

  test('a non-member can neither subscribe to a room nor send to it, and the ERROR names the receipt the refused SEND asked for', async () => {
    const strangerToken = await issuer.sign({ sub: uniqueName('stranger'), role: 'BUYER' })
    const subscriber = await RawStompClient.connect(server.url, strangerToken)
    subscriber.sendFrame('SUBSCRIBE', [
      ['id', 'x'],
      ['destination', `/sub/rooms/${roomId}`],
    ])
    await assertErrorAndClose(subscriber, /not a member/)
    const { listener } = await pair()
    const sender = await RawStompClient.connect(server.url, strangerToken)
    sender.sendFrame(
      'SEND',
      [
        ['destination', `/pub/rooms/${roomId}`],
        ['receipt', 'r'],
      ],
      'let me in',
    )
    const refused = await sender.next()
    assert.equal(refused.command, 'ERROR')
    assert.match(header(refused, 'message') ?? '', /not a member/)
    // The refused frame asked for a receipt: the ERROR names it, as the spec advises.
    assert.equal(header(refused, 'receipt-id'), 'r')
    await sender.closed
    await assert.rejects(listener.next(1500), /no frame/)
    listener.close()
  })

  test('a forged sender header does nothing: the MESSAGE names the authenticated sender', async () => {
    const { listener, sender } = await pair()
    sender.sendFrame(
      'SEND',
      [
        ['destination', `/pub/rooms/${roomId}`],
        ['sender-id', buyerId],
        ['user-id', buyerId],
      ],
      'who am I',
    )
    const message = await listener.next()
    assert.equal(header(message, 'sender-id'), sellerId)
    assert.equal(message.headers.filter(([name]) => name === 'sender-id').length, 1)
    listener.close()
    sender.close()
  })
})
