import { randomUUID } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import { upgradeWebSocket } from '@hono/node-server'
import { type AppEnv, bearerToken, type Logger, type TokenVerifier } from '@timedeal/platform'
import {
  type AckMode,
  type AuthOutcome,
  createFrameDecoder,
  encodeFrame,
  type FrameDecoder,
  headersAreEscaped,
  type SessionAction,
  type StompCredentials,
  type StompFrame,
  type StompHeader,
  StompSession,
} from '@timedeal/stomp'
import { Hono } from 'hono'
import { type WebSocket, WebSocketServer } from 'ws'

export const CHAT_SOCKET_PATH = '/ws/chat'

/** The STOMP subprotocols, best first (the STOMP spec's names for WebSocket). */
export const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'] as const

export interface ChatSocketLimits {
  readonly allowedOrigins: readonly string[]
  readonly maxFrameBytes: number
  readonly maxBodyBytes: number
  readonly maxHeaders: number
  readonly maxHeaderLineBytes: number
  readonly maxSubscriptions: number
  readonly sendBufferBytes: number
  readonly heartBeatMs: number
  readonly connectTimeoutMs: number
}

/** One connected STOMP client as the hub sees it: who it is and how to reach it. */
export interface ChatConnection {
  readonly sessionId: string
  readonly userId: string
  /** Builds and writes a MESSAGE on one of the connection's subscriptions; false when it has no such subscription. */
  deliver(subscriptionId: string, content: Parameters<StompSession['message']>[1]): boolean
  /** Ends the connection with an ERROR frame saying why. */
  fail(message: string): void
}

/** Why the hub refused a frame: the client gets ERROR with this message, then the connection closes. */
export class StompRefusal extends Error {}

/**
 * What the endpoint hands the message flow. Each call of one connection is made after the
 * previous one settled, so frames are handled in the order they arrived. A rejection with
 * {@link StompRefusal} ends the connection with that message; anything else with "internal error".
 */
export interface ChatHub {
  connected(connection: ChatConnection): void
  /**
   * Resolves true once the message is durable, and the RECEIPT (if asked) follows; false when it
   * was dropped (the client was told on its error queue), and no RECEIPT is sent.
   */
  send(
    connection: ChatConnection,
    destination: string,
    headers: readonly StompHeader[],
    body: Uint8Array,
  ): Promise<boolean>
  /** Resolves once the subscription is live (after any replay it asked for). */
  subscribe(
    connection: ChatConnection,
    id: string,
    destination: string,
    headers: readonly StompHeader[],
    ack: AckMode,
  ): Promise<void>
  /** An ACK (or a NACK, `nack` true) of messages delivered on a client-acknowledged subscription. */
  settle(connection: ChatConnection, subscriptionId: string, messageIds: readonly string[], nack: boolean): void
  unsubscribe(connection: ChatConnection, id: string): void
  disconnected(connection: ChatConnection): void
}

/** A `ws` server for the upgrades `/ws/chat` accepts, choosing the best STOMP subprotocol offered. */
export function createChatSocketServer(limits: Pick<ChatSocketLimits, 'maxFrameBytes'>): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    maxPayload: webSocketMessageLimit(limits.maxFrameBytes),
    handleProtocols: (offered) => STOMP_SUBPROTOCOLS.find((protocol) => offered.has(protocol)) ?? false,
  })
}

/** A WebSocket message may carry several frames; the decoder enforces the per-frame limit. */
export function webSocketMessageLimit(maxFrameBytes: number): number {
  return maxFrameBytes * 4
}

export interface ChatSocketDeps {
  readonly hub: ChatHub
  readonly verifier: TokenVerifier
  readonly limits: ChatSocketLimits
  readonly logger: Logger
}

/**
 * The route of `/ws/chat`. It is registered for every method because a WebSocket upgrade is not
 * an HTTP operation to document; only a GET upgrade gets through `upgradeWebSocket`.
 */
export function chatSocketRoutes(deps: ChatSocketDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.all(
    CHAT_SOCKET_PATH,
    async (c, next) => {
      // Cross-site WebSocket hijacking: a browser always sends its page's Origin.
      const origin = c.req.header('origin')
      if (
        origin !== undefined &&
        !deps.limits.allowedOrigins.includes(origin) &&
        !sameOrigin(origin, c.req.header('host'))
      ) {
        deps.logger.info({ origin }, 'chat upgrade refused: origin not allowed')
        return c.body(null, 403)
      }
      await next()
    },
    upgradeWebSocket((c) => {
      const upgrade = c.req.header('authorization')
      let connection: StompConnection | undefined
      return {
        onOpen: (_event, ws) => {
          connection = new StompConnection(ws.raw as WebSocket, upgrade, deps)
        },
        onMessage: (event) => connection?.receive(event.data as string | ArrayBuffer),
        onClose: () => connection?.closed(),
      }
    }),
  )
  return app
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** One WebSocket connection: its decoder, its STOMP session and its heart-beat timer. */
class StompConnection implements ChatConnection {
  readonly sessionId = randomUUID()
  readonly #socket: WebSocket
  readonly #decoder: FrameDecoder
  readonly #session: StompSession
  readonly #deps: ChatSocketDeps
  #timer: NodeJS.Timeout | undefined
  #timerAt = 0
  #hubKnows = false
  #turn: Promise<void> = Promise.resolve()
  #ended = false

  constructor(socket: WebSocket, upgrade: string | undefined, deps: ChatSocketDeps) {
    const { limits } = deps
    this.#socket = socket
    this.#deps = deps
    this.#decoder = createFrameDecoder({
      maxFrameBytes: limits.maxFrameBytes,
      maxBodyBytes: limits.maxBodyBytes,
      maxHeaders: limits.maxHeaders,
      maxHeaderLineBytes: limits.maxHeaderLineBytes,
      version: '1.2',
    })
    this.#session = new StompSession({
      sessionId: this.sessionId,
      now: Date.now(),
      authenticate: (credentials) => this.#authenticate(credentials),
      ...(upgrade === undefined ? {} : { upgrade }),
      heartBeat: { send: limits.heartBeatMs, receive: limits.heartBeatMs },
      connectTimeoutMs: limits.connectTimeoutMs,
      maxSubscriptions: limits.maxSubscriptions,
      serverName: 'timedeal-chat',
    })
    beforeWebSocketFault(socket, (code) => this.fail(webSocketFaultMessage(code, limits.maxFrameBytes)))
    this.#schedule()
  }

  get userId(): string {
    return this.#session.userId ?? ''
  }

  receive(data: string | ArrayBuffer): void {
    if (this.#ended) return
    const now = Date.now()
    const { frames, heartbeats, error } = this.#decoder.push(typeof data === 'string' ? data : new Uint8Array(data))
    if (heartbeats > 0) this.#session.noteActivity(now)
    for (const frame of frames) this.#inTurn(async () => this.#carryOut(await this.#session.receive(frame, now)))
    // After the frames before the fault, in order.
    if (error) this.#inTurn(() => this.#carryOut(this.#session.reject(error.message)))
  }

  /**
   * Runs the connection's work one piece after the other: a frame waits until the hub is done
   * with the one before, so a SEND's RECEIPT means durable and a SUBSCRIBE's replay comes
   * before anything sent after it.
   */
  #inTurn(work: () => Promise<void>): void {
    this.#turn = this.#turn.then(work).catch((error: unknown) => {
      this.#deps.logger.error({ err: error }, 'chat frame failed')
      this.fail('internal error')
    })
  }

  deliver(subscriptionId: string, content: Parameters<StompSession['message']>[1]): boolean {
    const frame = this.#session.message(subscriptionId, content)
    if (!frame) return false
    this.#write(frame)
    return true
  }

  fail(message: string): void {
    void this.#carryOut(this.#session.reject(message))
  }

  /** The socket closed (by either side): the hub forgets the connection. */
  closed(): void {
    if (this.#ended) return
    this.#ended = true
    this.#session.end()
    clearTimeout(this.#timer)
    if (this.#hubKnows) this.#deps.hub.disconnected(this)
  }

  async #authenticate(credentials: StompCredentials): Promise<AuthOutcome> {
    const token =
      credentials.passcode || bearerToken(credentials.authorization) || bearerToken(credentials.upgrade ?? undefined)
    if (!token) return { ok: false, message: 'an access token is required (passcode or Authorization)' }
    try {
      const caller = await this.#deps.verifier.verify(token)
      return { ok: true, userId: caller.id }
    } catch {
      return { ok: false, message: 'invalid or expired access token' }
    }
  }

  async #carryOut(actions: readonly SessionAction[]): Promise<void> {
    for (const action of actions) {
      if (this.#ended) return
      switch (action.type) {
        case 'frame':
          this.#write(action.frame)
          break
        case 'heartbeat':
          this.#socket.send('\n')
          break
        case 'connected':
          this.#decoder.setVersion(action.version)
          this.#hubKnows = true
          this.#deps.hub.connected(this)
          break
        case 'send':
          await this.#await(this.#deps.hub.send(this, action.destination, action.headers, action.body), action.receipt)
          break
        case 'subscribe':
          await this.#await(
            this.#deps.hub.subscribe(this, action.id, action.destination, action.headers, action.ack).then(() => true),
            action.receipt,
          )
          break
        case 'unsubscribe':
          this.#deps.hub.unsubscribe(this, action.id)
          if (action.receipt) this.#write(action.receipt)
          break
        case 'ack':
        case 'nack':
          this.#deps.hub.settle(this, action.subscriptionId, action.messageIds, action.type === 'nack')
          if (action.receipt) this.#write(action.receipt)
          break
        case 'close':
          this.#close(action.reason)
          break
      }
    }
    this.#schedule()
  }

  /** Writes the RECEIPT once the hub is done, or ends the connection with why it refused. */
  async #await(done: Promise<boolean | undefined>, receipt: StompFrame | undefined): Promise<void> {
    try {
      const accepted = await done
      if (receipt && accepted !== false) this.#write(receipt)
    } catch (error) {
      if (!(error instanceof StompRefusal)) this.#deps.logger.error({ err: error }, 'chat frame failed')
      const message = error instanceof StompRefusal ? error.message : 'internal error'
      // The ERROR names the receipt the refused frame asked for, so the client knows which one failed.
      const receiptId = receipt?.headers.find(([name]) => name === 'receipt-id')?.[1]
      await this.#carryOut(this.#session.reject(message, receiptId === undefined ? {} : { receiptId }))
    }
  }

  #write(frame: StompFrame): void {
    if (this.#ended || this.#socket.readyState !== this.#socket.OPEN) return
    // Past the buffer the client is not reading: close it rather than hold its messages.
    if (this.#socket.bufferedAmount > this.#deps.limits.sendBufferBytes) {
      this.#deps.logger.warn({ sessionId: this.sessionId }, 'chat client too slow; closing')
      // It would not read a close frame either: the socket goes at once.
      this.#socket.terminate()
      this.closed()
      return
    }
    const bytes = encodeFrame(frame, { escape: headersAreEscaped(frame.command, this.#session.version) })
    this.#socket.send(bytes, { binary: !isText(frame) })
    this.#session.noteSent(Date.now())
  }

  #close(reason: string): void {
    this.#deps.logger.debug({ sessionId: this.sessionId, reason }, 'chat connection closed')
    // Let the ERROR (or RECEIPT) go out before the close frame.
    this.#socket.close(1000)
    this.closed()
  }

  /** One timer per connection, armed for the session's next heart-beat or deadline. */
  #schedule(): void {
    if (this.#ended) return
    const at = this.#session.nextTickAt()
    // Activity only moves the next tick later (an early wake-up just re-arms), but CONNECT can
    // bring it forward: from the connect deadline to the first heart-beat.
    if (at === undefined || (this.#timer !== undefined && at >= this.#timerAt)) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        void this.#carryOut(this.#session.tick(Date.now()))
      },
      Math.max(0, at - Date.now()),
    )
    this.#timer.unref()
  }
}

/**
 * `ws` answers a fault in the incoming WebSocket stream (a message past `maxPayload`, a text
 * message that is not UTF-8, …) by closing at once, which tells a STOMP client nothing. Its
 * receiver reports the fault before the socket starts closing, so an ERROR written from a
 * listener placed ahead of the socket's own still goes out before the close.
 */
function beforeWebSocketFault(socket: WebSocket, explain: (code: string | undefined) => void): void {
  const receiver = (socket as unknown as { _receiver?: EventEmitter })._receiver
  receiver?.prependListener('error', (error: Error & { code?: string }) => explain(error.code))
}

/** The ERROR's `message` for a fault `ws` found in the WebSocket stream (its error codes). */
function webSocketFaultMessage(code: string | undefined, maxFrameBytes: number): string {
  switch (code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return `WebSocket message larger than ${webSocketMessageLimit(maxFrameBytes)} bytes`
    case 'WS_ERR_INVALID_UTF8':
      return 'text WebSocket message is not valid UTF-8; send binary bodies in binary messages'
    default:
      return 'malformed WebSocket frame'
  }
}

/** A page served by this very host is no cross-site page (and non-browser clients often send this origin). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined || !URL.canParse(origin)) return false
  return new URL(origin).host === host
}

/** Bodies already judged: one message fanned out to many sessions shares its body, so it is decoded once. */
const textBodies = new WeakMap<Uint8Array, boolean>()

/** Text bodies (and empty ones) go in text WebSocket frames; anything else, in binary ones. */
function isText(frame: StompFrame): boolean {
  if (frame.body.length === 0) return true
  const known = textBodies.get(frame.body)
  if (known !== undefined) return known
  let text = true
  try {
    utf8.decode(frame.body)
  } catch {
    text = false
  }
  textBodies.set(frame.body, text)
  return text
}
