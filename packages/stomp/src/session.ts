import type { StompVersion } from './escaping.ts'
import { headerValue, type StompFrame, type StompHeader } from './frame.ts'
import {
  formatHeartBeat,
  type HeartBeat,
  type HeartBeatPlan,
  NO_HEART_BEAT,
  negotiateHeartBeat,
  parseHeartBeat,
} from './heartbeat.ts'

/** The versions this session speaks, oldest first. */
export const STOMP_VERSIONS: readonly StompVersion[] = ['1.0', '1.1', '1.2']

export type AckMode = 'auto' | 'client' | 'client-individual'
const ACK_MODES: readonly string[] = ['auto', 'client', 'client-individual']

/** What a client presented to prove who it is. */
export interface StompCredentials {
  readonly login: string | undefined
  readonly passcode: string | undefined
  /** The `Authorization` header of the CONNECT frame. */
  readonly authorization: string | undefined
  /** Whatever the endpoint established at the WebSocket upgrade (e.g. its Authorization header). */
  readonly upgrade: string | undefined
  readonly host: string | undefined
}

export type AuthOutcome =
  | { readonly ok: true; readonly userId: string }
  | { readonly ok: false; readonly message: string }

export type Authenticate = (credentials: StompCredentials) => AuthOutcome | Promise<AuthOutcome>

export interface StompSessionOptions {
  readonly sessionId: string
  readonly authenticate: Authenticate
  /** When the connection was opened; the CONNECT deadline counts from here. */
  readonly now: number
  /** What the endpoint learnt at the upgrade; handed to `authenticate` as `upgrade`. */
  readonly upgrade?: string
  /** The versions this server speaks (default all of 1.0, 1.1, 1.2). */
  readonly versions?: readonly StompVersion[]
  /** The server's own heart-beat: how often it can send, how often it wants to hear (ms). */
  readonly heartBeat?: HeartBeat
  /** A client silent for longer than its interval times this factor is closed (default 2). */
  readonly heartBeatTolerance?: number
  /** A connection without a completed CONNECT after this many ms is closed (default 10 s). */
  readonly connectTimeoutMs?: number
  /** Virtual hosts accepted in CONNECT's `host` header; absent accepts any. */
  readonly hosts?: readonly string[]
  readonly maxSubscriptions?: number
  /** The `server` header of CONNECTED. */
  readonly serverName?: string
}

/** Sent by the caller once the operation is done (for SEND: once the message is durable). */
export interface WithReceipt {
  readonly receipt?: StompFrame
}

/** What an ACK or NACK settles. */
export interface Settlement extends WithReceipt {
  readonly subscriptionId: string
  readonly destination: string
  /** Every message the frame settles, oldest first (more than one under cumulative `client` mode). */
  readonly messageIds: readonly string[]
}

export type SessionAction =
  | { readonly type: 'frame'; readonly frame: StompFrame }
  /** Send a heart-beat (an EOL) to the client. */
  | { readonly type: 'heartbeat' }
  | { readonly type: 'connected'; readonly userId: string; readonly version: StompVersion; readonly host?: string }
  | ({
      readonly type: 'send'
      readonly destination: string
      /** The client's headers as sent, without the hop-by-hop `receipt`. */
      readonly headers: readonly StompHeader[]
      readonly body: Uint8Array
    } & WithReceipt)
  | ({
      readonly type: 'subscribe'
      readonly id: string
      readonly destination: string
      readonly ack: AckMode
      readonly headers: readonly StompHeader[]
    } & WithReceipt)
  | ({
      readonly type: 'unsubscribe'
      readonly id: string
      readonly destination: string
      /** Messages delivered on a client-ack subscription and never acknowledged. */
      readonly unacknowledged: readonly string[]
    } & WithReceipt)
  | ({ readonly type: 'ack' } & Settlement)
  | ({ readonly type: 'nack' } & Settlement)
  | { readonly type: 'close'; readonly reason: string }

export interface MessageContent {
  readonly destination: string
  /** The message's id; one is made up when absent. */
  readonly messageId?: string
  /** Headers the server vouches for (e.g. the sender's user id); they win over client headers of the same name. */
  readonly serverHeaders?: readonly StompHeader[]
  /** The sender's own headers, passed on unchanged apart from names the server sets itself. */
  readonly headers?: readonly StompHeader[]
  readonly body: Uint8Array
}

interface PendingMessage {
  readonly ackId: string
  readonly messageId: string
}

interface Subscription {
  readonly id: string
  readonly destination: string
  readonly ack: AckMode
  /** Delivered and not yet acknowledged, oldest first (client modes only). */
  pending: PendingMessage[]
}

type State = 'awaiting-connect' | 'authenticating' | 'connected' | 'closed'

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)
const DEFAULT_TOLERANCE = 2
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
const DEFAULT_MAX_SUBSCRIPTIONS = 1000
/** Headers a MESSAGE gets from the server; a client's headers of these names are dropped. */
const MESSAGE_HEADERS = ['destination', 'message-id', 'subscription', 'ack']

/** Raised inside the session to end it with an ERROR; never leaves the session. */
class Violation extends Error {
  readonly detail: string | undefined
  constructor(message: string, detail?: string) {
    super(message)
    this.detail = detail
  }
}

/**
 * One client's STOMP conversation, without I/O or timers: frames go in with the time they arrived,
 * actions come out in the order the endpoint must carry them out. Frames are handled one after the
 * other even while an asynchronous authentication is pending.
 */
export class StompSession {
  readonly id: string
  #state: State = 'awaiting-connect'
  #userId: string | undefined
  #version: StompVersion = '1.0'
  #host: string | undefined
  #plan: HeartBeatPlan = { serverSendsEvery: 0, clientSendsEvery: 0 }
  readonly #options: StompSessionOptions
  readonly #openedAt: number
  #lastReceivedAt: number
  #lastSentAt: number
  readonly #subscriptions = new Map<string, Subscription>()
  /** ack id (the 1.2 `ack` header) → subscription id. */
  readonly #ackIds = new Map<string, string>()
  #deliveries = 0
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: StompSessionOptions) {
    this.#options = options
    this.id = options.sessionId
    this.#openedAt = options.now
    this.#lastReceivedAt = options.now
    this.#lastSentAt = options.now
  }

  get userId(): string | undefined {
    return this.#userId
  }
  get version(): StompVersion {
    return this.#version
  }
  get host(): string | undefined {
    return this.#host
  }
  get connected(): boolean {
    return this.#state === 'connected'
  }
  get closed(): boolean {
    return this.#state === 'closed'
  }
  get heartBeat(): HeartBeatPlan {
    return this.#plan
  }
  subscription(id: string): { readonly destination: string; readonly ack: AckMode } | undefined {
    return this.#subscriptions.get(id)
  }

  /** Handles one decoded frame. Resolves, never rejects; frames after the session closed yield nothing. */
  receive(frame: StompFrame, now: number): Promise<SessionAction[]> {
    this.noteActivity(now)
    const result = this.#queue.then(() => this.#handle(frame, now))
    this.#queue = result
    return result
  }

  /** Anything arrived from the client (a frame or a bare heart-beat EOL). */
  noteActivity(now: number): void {
    this.#lastReceivedAt = Math.max(this.#lastReceivedAt, now)
  }

  /** Something was written to the client, which counts as a heart-beat. */
  noteSent(now: number): void {
    this.#lastSentAt = Math.max(this.#lastSentAt, now)
  }

  /** What is due at `now`: a heart-beat to send, or the end of a connection whose client went silent. */
  tick(now: number): SessionAction[] {
    if (this.#state === 'closed') return []
    if (this.#state !== 'connected') {
      const limit = this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
      return now - this.#openedAt > limit ? this.#fail(new Violation(`no CONNECT within ${limit} ms`)) : []
    }
    const silentFor = now - this.#lastReceivedAt
    if (this.#plan.clientSendsEvery > 0 && silentFor > this.#receiveLimit()) {
      return this.#fail(new Violation(`no heart-beat from the client for ${silentFor} ms`))
    }
    if (this.#plan.serverSendsEvery > 0 && now - this.#lastSentAt >= this.#plan.serverSendsEvery) {
      this.#lastSentAt = now
      return [{ type: 'heartbeat' }]
    }
    return []
  }

  /** The next time `tick` may have something to do; undefined when nothing is scheduled. */
  nextTickAt(): number | undefined {
    if (this.#state === 'closed') return undefined
    if (this.#state !== 'connected') {
      return this.#openedAt + (this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) + 1
    }
    const times: number[] = []
    if (this.#plan.serverSendsEvery > 0) times.push(this.#lastSentAt + this.#plan.serverSendsEvery)
    if (this.#plan.clientSendsEvery > 0) times.push(this.#lastReceivedAt + this.#receiveLimit() + 1)
    return times.length > 0 ? Math.min(...times) : undefined
  }

  /**
   * Builds the MESSAGE for a delivery on subscription `subscriptionId` and, in the client ack
   * modes, remembers it as unacknowledged. Undefined when the session has no such subscription.
   */
  message(subscriptionId: string, content: MessageContent): StompFrame | undefined {
    const subscription = this.#subscriptions.get(subscriptionId)
    if (!subscription || this.#state !== 'connected') return undefined
    this.#deliveries += 1
    const messageId = content.messageId ?? `${this.id}-${this.#deliveries}`
    const headers: StompHeader[] = [
      ['destination', content.destination],
      ['message-id', messageId],
      ['subscription', subscription.id],
    ]
    if (subscription.ack !== 'auto') {
      const ackId = `${this.id}-ack-${this.#deliveries}`
      subscription.pending.push({ ackId, messageId })
      this.#ackIds.set(ackId, subscription.id)
      if (this.#version === '1.2') headers.push(['ack', ackId])
    }
    const serverHeaders = content.serverHeaders ?? []
    const taken = new Set([...MESSAGE_HEADERS, ...serverHeaders.map(([name]) => name)])
    headers.push(...serverHeaders.filter(([name]) => !MESSAGE_HEADERS.includes(name)))
    headers.push(...(content.headers ?? []).filter(([name]) => !taken.has(name)))
    // STOMP 1.0 has no header escaping and 1.1 none for a carriage return: a header another
    // client wrote with one cannot reach this one.
    const writable =
      this.#version === '1.0'
        ? headers.filter(writableWithoutEscaping)
        : this.#version === '1.1'
          ? headers.filter(writableInStomp11)
          : headers
    return { command: 'MESSAGE', headers: writable, body: content.body }
  }

  /**
   * Ends the session with an ERROR the endpoint decided on (e.g. a refused subscription):
   * the ERROR frame and a close, or nothing when already closed.
   */
  reject(message: string, options: { readonly receiptId?: string; readonly detail?: string } = {}): SessionAction[] {
    if (this.#state === 'closed') return []
    return this.#fail(new Violation(message, options.detail), options.receiptId)
  }

  /** The connection is gone; later frames and ticks do nothing. */
  end(): void {
    this.#state = 'closed'
  }

  async #handle(frame: StompFrame, now: number): Promise<SessionAction[]> {
    if (this.#state === 'closed') return []
    try {
      const actions = await this.#dispatch(frame)
      if (actions.some((action) => action.type === 'frame')) this.noteSent(now)
      return actions
    } catch (error) {
      const violation =
        error instanceof Violation
          ? error
          : new Violation('internal error', error instanceof Error ? error.message : '')
      return this.#fail(violation, headerValue(frame, 'receipt'))
    }
  }

  #dispatch(frame: StompFrame): Promise<SessionAction[]> | SessionAction[] {
    if (this.#state !== 'connected') {
      if (frame.command !== 'CONNECT' && frame.command !== 'STOMP') {
        throw new Violation(`expected CONNECT, got ${describe(frame.command)}`)
      }
      return this.#connect(frame)
    }
    switch (frame.command) {
      case 'CONNECT':
      case 'STOMP':
        throw new Violation('already connected')
      case 'SEND':
        return this.#send(frame)
      case 'SUBSCRIBE':
        return this.#subscribe(frame)
      case 'UNSUBSCRIBE':
        return this.#unsubscribe(frame)
      case 'ACK':
      case 'NACK':
        return this.#settle(frame, frame.command === 'ACK' ? 'ack' : 'nack')
      case 'BEGIN':
      case 'COMMIT':
      case 'ABORT':
        throw new Violation('transactions are not supported')
      case 'DISCONNECT':
        return this.#disconnect(frame)
      default:
        throw new Violation(`unknown command ${describe(frame.command)}`)
    }
  }

  async #connect(frame: StompFrame): Promise<SessionAction[]> {
    this.#state = 'authenticating'
    const version = negotiateVersion(headerValue(frame, 'accept-version'), this.#serverVersions())
    if (!version) {
      const versions = this.#serverVersions().join(',')
      return this.#fail(new Violation(`no common protocol version; this server speaks ${versions}`), undefined, [
        ['version', versions],
      ])
    }
    this.#version = version
    const clientBeat = parseHeartBeat(headerValue(frame, 'heart-beat'))
    if (!clientBeat) throw new Violation('malformed heart-beat header', 'expected two non-negative integers: cx,cy')
    const host = headerValue(frame, 'host')
    const hosts = this.#options.hosts
    if (hosts && host !== undefined && !hosts.includes(host)) throw new Violation(`unknown host ${describe(host)}`)
    const outcome = await this.#authenticate(frame, host)
    if (this.#state !== 'authenticating') return [] // closed while authentication was pending
    if (!outcome.ok) throw new Violation(outcome.message)
    return this.#accept(outcome.userId, host, clientBeat)
  }

  async #authenticate(frame: StompFrame, host: string | undefined): Promise<AuthOutcome> {
    try {
      return await this.#options.authenticate({
        login: headerValue(frame, 'login'),
        passcode: headerValue(frame, 'passcode'),
        authorization: headerValue(frame, 'Authorization') ?? headerValue(frame, 'authorization'),
        upgrade: this.#options.upgrade,
        host,
      })
    } catch {
      return { ok: false, message: 'authentication failed' }
    }
  }

  #accept(userId: string, host: string | undefined, clientBeat: HeartBeat): SessionAction[] {
    this.#state = 'connected'
    this.#userId = userId
    this.#host = host
    // STOMP 1.0 has no heart-beating.
    const serverBeat = this.#version === '1.0' ? NO_HEART_BEAT : (this.#options.heartBeat ?? NO_HEART_BEAT)
    this.#plan = negotiateHeartBeat(this.#version === '1.0' ? NO_HEART_BEAT : clientBeat, serverBeat)
    const headers: StompHeader[] = [['version', this.#version]]
    if (this.#version !== '1.0') headers.push(['heart-beat', formatHeartBeat(serverBeat)])
    headers.push(['session', this.id])
    if (this.#options.serverName) headers.push(['server', this.#options.serverName])
    return [
      { type: 'frame', frame: { command: 'CONNECTED', headers, body: EMPTY } },
      { type: 'connected', userId, version: this.#version, ...(host === undefined ? {} : { host }) },
    ]
  }

  #send(frame: StompFrame): SessionAction[] {
    const destination = required(frame, 'destination')
    refuseTransaction(frame)
    const headers = frame.headers.filter(([name]) => name !== 'receipt')
    return [{ type: 'send', destination, headers, body: frame.body, ...receiptFor(frame) }]
  }

  #subscribe(frame: StompFrame): SessionAction[] {
    const destination = required(frame, 'destination')
    // STOMP 1.0 made the id optional; such a subscription is known by its destination.
    const id = this.#version === '1.0' ? (headerValue(frame, 'id') ?? destination) : required(frame, 'id')
    const ack = headerValue(frame, 'ack') ?? 'auto'
    if (!ACK_MODES.includes(ack)) throw new Violation(`unknown ack mode ${describe(ack)}`)
    if (this.#subscriptions.has(id)) throw new Violation(`subscription id ${describe(id)} is already in use`)
    const limit = this.#options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS
    if (this.#subscriptions.size >= limit) throw new Violation(`more than ${limit} subscriptions`)
    const mode = ack as AckMode
    this.#subscriptions.set(id, { id, destination, ack: mode, pending: [] })
    const headers = frame.headers.filter(([name]) => name !== 'receipt')
    return [{ type: 'subscribe', id, destination, ack: mode, headers, ...receiptFor(frame) }]
  }

  #unsubscribe(frame: StompFrame): SessionAction[] {
    const subscription = this.#subscriptionToEnd(frame)
    this.#subscriptions.delete(subscription.id)
    for (const { ackId } of subscription.pending) this.#ackIds.delete(ackId)
    return [
      {
        type: 'unsubscribe',
        id: subscription.id,
        destination: subscription.destination,
        unacknowledged: subscription.pending.map(({ messageId }) => messageId),
        ...receiptFor(frame),
      },
    ]
  }

  #subscriptionToEnd(frame: StompFrame): Subscription {
    const id = headerValue(frame, 'id') ?? (this.#version === '1.0' ? headerValue(frame, 'destination') : undefined)
    if (id === undefined) throw new Violation('missing header id')
    const subscription = this.#subscriptions.get(id)
    if (!subscription) throw new Violation(`no subscription with id ${describe(id)}`)
    return subscription
  }

  #settle(frame: StompFrame, type: 'ack' | 'nack'): SessionAction[] {
    refuseTransaction(frame)
    const { subscription, index } = this.#findPending(frame)
    // `client` mode is cumulative: settling one message settles every earlier one too.
    const settled =
      subscription.ack === 'client' ? subscription.pending.splice(0, index + 1) : subscription.pending.splice(index, 1)
    for (const { ackId } of settled) this.#ackIds.delete(ackId)
    return [
      {
        type,
        subscriptionId: subscription.id,
        destination: subscription.destination,
        messageIds: settled.map(({ messageId }) => messageId),
        ...receiptFor(frame),
      },
    ]
  }

  /** 1.2 names the delivery by its `id` (the MESSAGE's `ack`); 1.1 by `message-id` and `subscription`. */
  #findPending(frame: StompFrame): { subscription: Subscription; index: number } {
    if (this.#version === '1.2') {
      const ackId = required(frame, 'id')
      const subscription = this.#subscriptions.get(this.#ackIds.get(ackId) ?? '')
      const index = subscription?.pending.findIndex((pending) => pending.ackId === ackId) ?? -1
      if (!subscription || index < 0) throw new Violation(`no unacknowledged message with ack id ${describe(ackId)}`)
      return { subscription, index }
    }
    const messageId = required(frame, 'message-id')
    const subscriptionId =
      this.#version === '1.1' ? required(frame, 'subscription') : headerValue(frame, 'subscription')
    const candidates =
      subscriptionId === undefined ? [...this.#subscriptions.values()] : [this.#subscriptions.get(subscriptionId)]
    for (const subscription of candidates) {
      const index = subscription?.pending.findIndex((pending) => pending.messageId === messageId) ?? -1
      if (subscription && index >= 0) return { subscription, index }
    }
    throw new Violation(`no unacknowledged message ${describe(messageId)}`)
  }

  #disconnect(frame: StompFrame): SessionAction[] {
    this.#state = 'closed'
    const receipt = receiptFor(frame).receipt
    const actions: SessionAction[] = receipt ? [{ type: 'frame', frame: receipt }] : []
    actions.push({ type: 'close', reason: 'client disconnected' })
    return actions
  }

  #fail(violation: Violation, receiptId?: string, extraHeaders: readonly StompHeader[] = []): SessionAction[] {
    this.#state = 'closed'
    // CONNECT-phase and 1.0 frames are not escaped, so the message must fit on one line.
    const headers: StompHeader[] = [['message', oneLine(violation.message)], ...extraHeaders]
    if (receiptId !== undefined) headers.push(['receipt-id', receiptId])
    const detail = violation.detail ?? ''
    headers.push(['content-type', 'text/plain'])
    const frame: StompFrame = { command: 'ERROR', headers, body: encoder.encode(detail) }
    return [
      { type: 'frame', frame },
      { type: 'close', reason: violation.message },
    ]
  }

  #serverVersions(): readonly StompVersion[] {
    return this.#options.versions ?? STOMP_VERSIONS
  }

  #receiveLimit(): number {
    return this.#plan.clientSendsEvery * (this.#options.heartBeatTolerance ?? DEFAULT_TOLERANCE)
  }
}

/** The highest version both sides speak; no `accept-version` means a 1.0 client. */
export function negotiateVersion(
  acceptVersion: string | undefined,
  serverVersions: readonly StompVersion[] = STOMP_VERSIONS,
): StompVersion | undefined {
  const offered = (acceptVersion ?? '1.0').split(',').map((version) => version.trim())
  const common = serverVersions.filter((version) => offered.includes(version))
  return common.toSorted().at(-1)
}

function required(frame: StompFrame, name: string): string {
  const value = headerValue(frame, name)
  if (value === undefined || value === '') throw new Violation(`missing header ${name}`)
  return value
}

function refuseTransaction(frame: StompFrame): void {
  if (headerValue(frame, 'transaction') !== undefined) throw new Violation('transactions are not supported')
}

function receiptFor(frame: StompFrame): WithReceipt {
  const receiptId = headerValue(frame, 'receipt')
  if (receiptId === undefined) return {}
  return { receipt: { command: 'RECEIPT', headers: [['receipt-id', receiptId]], body: EMPTY } }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ')
}

function writableWithoutEscaping([name, value]: StompHeader): boolean {
  return !/[\r\n:]/.test(name) && !/[\r\n]/.test(value)
}

function writableInStomp11([name, value]: StompHeader): boolean {
  return !name.includes('\r') && !value.includes('\r')
}

/** A client-supplied value quoted and cut short for an error message. */
function describe(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
}
