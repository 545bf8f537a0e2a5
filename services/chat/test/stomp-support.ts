/**
 * chat-service behind a real listener (so `/ws/chat` upgrades for real), rooms opened straight in
 * its store, and a raw STOMP client over `ws` that writes bytes exactly as a test wants them.
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import { startGroupsAtEnd, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { createFrameDecoder, encodeFrame, type StompFrame, type StompHeader } from '@timedeal/stomp'
import { WebSocket } from 'ws'
import { newRoomId } from '../src/domain/ids.ts'
import { startTestChatService, type TestChatService } from './support.ts'

export interface ChatServer {
  /** `ws://…/ws/chat` */
  readonly url: string
  readonly chat: TestChatService
  /** A room between `buyerId` and `sellerId`, opened in the store. */
  openRoom(buyerId: string, sellerId: string): Promise<string>
  stop(): Promise<void>
}

/** chat-service listening on a free port; `overrides` are settings. Goods are never asked here. */
export async function startChatServer(issuer: TestIssuer, overrides: Record<string, string> = {}): Promise<ChatServer> {
  const group = uniqueName('chat-messages')
  await startGroupsAtEnd([group], [TOPIC_CHAT_MESSAGES])
  const chat = await startTestChatService({ url: 'http://127.0.0.1:9' }, issuer, {
    CHAT_MESSAGES_GROUP: group,
    CHAT_REDIS_PREFIX: uniqueName('test-chat'),
    ...overrides,
  })
  const server = serve({
    fetch: chat.app.fetch,
    hostname: '127.0.0.1',
    port: 0,
    websocket: { server: chat.service.websocket },
  })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  const { port } = server.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${port}/ws/chat`,
    chat,
    async openRoom(buyerId, sellerId) {
      const id = newRoomId()
      await chat.service.stores.rooms.open({
        id,
        goodsId: uniqueName('goods'),
        buyerId,
        sellerId,
        createdAt: new Date(),
      })
      return id
    },
    async stop() {
      for (const client of chat.service.websocket.clients) client.terminate()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await chat.stop()
    },
  }
}

export interface ReceivedFrame extends StompFrame {
  /** Whether it came in a binary WebSocket message. */
  readonly binary: boolean
  /** The bytes of the WebSocket message it came in. */
  readonly raw: Buffer
}

/** A STOMP client that writes raw bytes and reads the server's frames one by one. */
export class RawStompClient {
  readonly socket: WebSocket
  readonly #frames: ReceivedFrame[] = []
  readonly #waiters: (() => void)[] = []
  readonly #decoder = createFrameDecoder({ maxBodyBytes: 1 << 20, maxFrameBytes: 2 << 20 })
  readonly closed: Promise<number>
  heartbeats = 0

  private constructor(socket: WebSocket) {
    this.socket = socket
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)))
    socket.on('message', (data: Buffer, isBinary) => {
      const { frames, heartbeats } = this.#decoder.push(new Uint8Array(data))
      this.heartbeats += heartbeats
      for (const frame of frames) this.#frames.push({ ...frame, binary: isBinary, raw: data })
      for (const wake of this.#waiters.splice(0)) wake()
    })
    socket.on('close', () => {
      for (const wake of this.#waiters.splice(0)) wake()
    })
  }

  /** Opens the socket; rejects with the HTTP status when the upgrade is refused. */
  static open(
    url: string,
    options: { protocols?: string[]; headers?: Record<string, string>; origin?: string } = {},
  ): Promise<RawStompClient> {
    const socket = new WebSocket(url, options.protocols ?? ['v12.stomp'], {
      headers: options.headers ?? {},
      ...(options.origin ? { origin: options.origin } : {}),
    })
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new RawStompClient(socket)))
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`upgrade refused with ${response.statusCode}`)),
      )
      socket.once('error', reject)
    })
  }

  /** Opens and completes CONNECT with `token` as passcode. */
  static async connect(url: string, token: string): Promise<RawStompClient> {
    const client = await RawStompClient.open(url)
    client.sendFrame('CONNECT', [
      ['accept-version', '1.2'],
      ['host', 'timedeal'],
      ['passcode', token],
    ])
    const connected = await client.next()
    if (connected.command !== 'CONNECTED') throw new Error(`expected CONNECTED, got ${describe(connected)}`)
    return client
  }

  write(data: string | Uint8Array, binary = typeof data !== 'string'): void {
    this.socket.send(data, { binary })
  }

  sendFrame(command: string, headers: StompHeader[], body: Uint8Array | string = new Uint8Array()): void {
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body
    // Text bodies in text WebSocket messages, bytes in binary ones, as browsers' clients do.
    this.write(
      encodeFrame({ command, headers, body: bytes }, { escape: command !== 'CONNECT' }),
      typeof body !== 'string',
    )
  }

  /** The next frame from the server; fails if none comes within `timeoutMs` or the socket closes first. */
  async next(timeoutMs = 10_000): Promise<ReceivedFrame> {
    const deadline = Date.now() + timeoutMs
    while (this.#frames.length === 0) {
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error('connection closed before a frame came')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.#frames.shift() as ReceivedFrame
  }

  /** Subscribes with a receipt and waits for it. */
  async subscribe(id: string, destination: string, headers: StompHeader[] = []): Promise<void> {
    this.sendFrame('SUBSCRIBE', [['id', id], ['destination', destination], ['receipt', `sub-${id}`], ...headers])
    const receipt = await this.next()
    if (receipt.command !== 'RECEIPT') throw new Error(`expected RECEIPT, got ${describe(receipt)}`)
  }

  close(): void {
    this.socket.terminate()
  }
}

export const header = (frame: Pick<StompFrame, 'headers'>, name: string): string | undefined =>
  frame.headers.find(([key]) => key === name)?.[1]

export function describe(frame: StompFrame): string {
  return `${frame.command} ${JSON.stringify(frame.headers)} ${Buffer.from(frame.body).toString()}`
}
