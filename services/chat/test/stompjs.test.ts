import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, type IMessage, type IStompSocket } from '@stomp/stompjs'
import { eventually, startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { WebSocket } from 'ws'
import { type ChatServer, RawStompClient, startChatServer } from './stomp-support.ts'

let issuer: TestIssuer
let server: ChatServer
const buyerId = uniqueName('buyer')
const sellerId = uniqueName('seller')
let buyerToken: string
let sellerToken: string

const HEART_BEAT_MS = 300

before(async () => {
  issuer = await startTestIssuer()
  server = await startChatServer(issuer, { CHAT_HEARTBEAT_MS: String(HEART_BEAT_MS) })
  buyerToken = await issuer.sign({ sub: buyerId, role: 'BUYER' })
  sellerToken = await issuer.sign({ sub: sellerId, role: 'SELLER' })
})

after(async () => {
  await server?.stop()
  await issuer?.close()
})

/** An @stomp/stompjs client as a Node program uses it: `ws` as its WebSocket. */
async function connectClient(token: string, options: { heartBeatMs?: number } = {}): Promise<Client> {
  const client = new Client({
    webSocketFactory: () => new WebSocket(server.url, ['v12.stomp', 'v11.stomp']) as unknown as IStompSocket,
    connectHeaders: { passcode: token },
    heartbeatIncoming: options.heartBeatMs ?? 0,
    heartbeatOutgoing: options.heartBeatMs ?? 0,
    reconnectDelay: 0,
  })
  const connected = new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve()
    client.onStompError = (frame) => reject(new Error(frame.headers.message))
  })
  client.activate()
  await connected
  return client
}

/** Sends with a receipt and waits for it: the message is durable then. */
async function sendDurably(client: Client, roomId: string, text: string): Promise<void> {
  const receipt = uniqueName('receipt')
  const received = new Promise<void>((resolve) => client.watchForReceipt(receipt, () => resolve()))
  client.publish({ destination: `/pub/rooms/${roomId}`, body: text, headers: { receipt } })
  await received
}

describe('/ws/chat with @stomp/stompjs', () => {
  test('connect, subscribe, send with a receipt, and receive the message with its sender and id', async () => {
    const roomId = await server.openRoom(buyerId, sellerId)
    const buyer = await connectClient(buyerToken)
    const seller = await connectClient(sellerToken)
    const received: IMessage[] = []
    const subscribed = new Promise<void>((resolve) => buyer.watchForReceipt('subscribed', () => resolve()))
    buyer.subscribe(`/sub/rooms/${roomId}`, (message) => received.push(message), { receipt: 'subscribed' })
    await subscribed
    await sendDurably(seller, roomId, 'hello buyer')
    const [message] = await eventually(async () => (received.length > 0 ? received : undefined), 10_000, 'the message')
    assert.equal(message?.body, 'hello buyer')
    assert.equal(message?.headers['sender-id'], sellerId)
    assert.match(message?.headers['message-id'] ?? '', /^[0-9a-f-]{36}$/)
    await buyer.deactivate()
    await seller.deactivate()
  })

  test('heart-beats flow both ways, so an idle connection stays open', async () => {
    const client = await connectClient(buyerToken, { heartBeatMs: HEART_BEAT_MS })
    let closed = false
    client.onWebSocketClose = () => {
      closed = true
    }
    await sleep(HEART_BEAT_MS * 6)
    assert.equal(closed, false)
    assert.equal(client.connected, true)
    await client.deactivate()
  })

  test('a client that promised heart-beats and went silent is closed', async () => {
    const client = await RawStompClient.open(server.url)
    client.sendFrame('CONNECT', [
      ['accept-version', '1.2'],
      ['passcode', buyerToken],
      ['heart-beat', `${HEART_BEAT_MS},0`],
    ])
    assert.equal((await client.next()).command, 'CONNECTED')
    const error = await client.next(HEART_BEAT_MS * 10)
    assert.equal(error.command, 'ERROR')
    assert.match(error.headers.find(([name]) => name === 'message')?.[1] ?? '', /no heart-beat/)
    await client.closed
  })

  test('reconnecting with resume-after replays what was missed, then goes live, with no gap and no duplicate', async () => {
    const roomId = await server.openRoom(buyerId, sellerId)
    const seller = await connectClient(sellerToken)
    const first = await connectClient(buyerToken)
    const seen: IMessage[] = []
    const subscribed = new Promise<void>((resolve) => first.watchForReceipt('first', () => resolve()))
    first.subscribe(`/sub/rooms/${roomId}`, (message) => seen.push(message), { receipt: 'first' })
    await subscribed
    for (const text of ['m1', 'm2']) await sendDurably(seller, roomId, text)
    await eventually(async () => (seen.length === 2 ? true : undefined), 10_000, 'm1 and m2')
    const lastSeen = seen.at(-1)?.headers['message-id'] ?? ''
    await first.deactivate()

    for (const text of ['m3', 'm4', 'm5']) await sendDurably(seller, roomId, text)
    const second = await connectClient(buyerToken)
    const resumed: IMessage[] = []
    // More messages race the resume: each must come exactly once, after the replayed ones.
    const racing = (async () => {
      for (const text of ['m6', 'm7', 'm8']) await sendDurably(seller, roomId, text)
    })()
    second.subscribe(`/sub/rooms/${roomId}`, (message) => resumed.push(message), { 'resume-after': lastSeen })
    await racing
    await eventually(async () => (resumed.length >= 6 ? true : undefined), 15_000, 'm3 to m8')
    await sleep(500)
    assert.deepEqual(
      resumed.map((message) => message.body),
      ['m3', 'm4', 'm5', 'm6', 'm7', 'm8'],
    )
    await second.deactivate()
    await seller.deactivate()
  })
})
