import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  type Authenticate,
  type AuthOutcome,
  createFrameDecoder,
  encodeFrame,
  headersAreEscaped,
  headerValue,
  negotiateHeartBeat,
  parseHeartBeat,
  type SessionAction,
  type StompCredentials,
  type StompFrame,
  type StompHeader,
  StompSession,
  type StompSessionOptions,
} from '../src/index.ts'

const text = new TextEncoder()
const EMPTY = new Uint8Array(0)

function frame(command: string, headers: Record<string, string> | StompHeader[] = {}, body = EMPTY): StompFrame {
  return { command, headers: Array.isArray(headers) ? headers : Object.entries(headers), body }
}

const acceptAlice: Authenticate = ({ passcode }) =>
  passcode === 'alice-token' ? { ok: true, userId: 'alice' } : { ok: false, message: 'invalid access token' }

function newSession(options: Partial<StompSessionOptions> = {}): StompSession {
  return new StompSession({ sessionId: 's1', authenticate: acceptAlice, now: 0, ...options })
}

async function connected(options: Partial<StompSessionOptions> = {}, headers: Record<string, string> = {}) {
  const session = newSession(options)
  const actions = await session.receive(
    frame('CONNECT', { 'accept-version': '1.2', host: 'chat', passcode: 'alice-token', ...headers }),
    0,
  )
  assert.equal(session.connected, true, JSON.stringify(actions))
  return session
}

/** An authentication that answers only when the test says so. */
function pendingAuthentication() {
  const { promise, resolve } = Promise.withResolvers<AuthOutcome>()
  return { authenticate: () => promise, release: resolve }
}

function frames(actions: SessionAction[]): StompFrame[] {
  return actions.flatMap((action) => (action.type === 'frame' ? [action.frame] : []))
}

/** Asserts the actions are exactly an ERROR and a close, and returns the ERROR. */
function assertErrorAndClose(actions: SessionAction[], message: RegExp): StompFrame {
  assert.deepEqual(
    actions.map((action) => action.type),
    ['frame', 'close'],
    JSON.stringify(actions),
  )
  const [error] = frames(actions)
  assert.ok(error)
  assert.equal(error.command, 'ERROR')
  assert.match(headerValue(error, 'message') ?? '', message)
  return error
}

function only<T extends SessionAction['type']>(actions: SessionAction[], type: T): Extract<SessionAction, { type: T }> {
  assert.equal(actions.length, 1, JSON.stringify(actions))
  const [action] = actions
  assert.equal(action?.type, type)
  return action as Extract<SessionAction, { type: T }>
}

describe('connecting', () => {
  test('answers CONNECT with CONNECTED naming the highest common version', async () => {
    const session = newSession()
    const actions = await session.receive(
      frame('CONNECT', { 'accept-version': '1.0,1.2,1.1', host: 'chat', passcode: 'alice-token' }),
      0,
    )
    const [connectedFrame] = frames(actions)
    assert.equal(connectedFrame?.command, 'CONNECTED')
    assert.equal(headerValue(connectedFrame, 'version'), '1.2')
    assert.equal(headerValue(connectedFrame, 'session'), 's1')
    assert.deepEqual(actions[1], { type: 'connected', userId: 'alice', version: '1.2', host: 'chat' })
    assert.equal(session.userId, 'alice')
    assert.equal(session.host, 'chat')
  })

  test('accepts the STOMP command as CONNECT', async () => {
    const session = newSession()
    await session.receive(frame('STOMP', { 'accept-version': '1.1', host: 'chat', passcode: 'alice-token' }), 0)
    assert.equal(session.connected, true)
    assert.equal(session.version, '1.1')
  })

  test('takes a CONNECT without accept-version as a STOMP 1.0 client', async () => {
    const session = newSession()
    const actions = await session.receive(frame('CONNECT', { passcode: 'alice-token' }), 0)
    assert.equal(session.version, '1.0')
    assert.equal(headerValue(frames(actions)[0] ?? frame('X'), 'version'), '1.0')
  })

  test('refuses a client with no version in common, listing the versions the server speaks', async () => {
    const session = newSession({ versions: ['1.1', '1.2'] })
    const actions = await session.receive(frame('CONNECT', { 'accept-version': '1.0,2.0', passcode: 'alice-token' }), 0)
    const error = assertErrorAndClose(actions, /no common protocol version/)
    assert.equal(headerValue(error, 'version'), '1.1,1.2')
    assert.equal(session.closed, true)
  })

  test('refuses any frame before CONNECT', async () => {
    const session = newSession()
    const actions = await session.receive(frame('SEND', { destination: '/pub/rooms/1' }), 0)
    assertErrorAndClose(actions, /expected CONNECT, got "SEND"/)
  })

  test('refuses a second CONNECT on a connected session', async () => {
    const session = await connected()
    assertErrorAndClose(
      await session.receive(frame('CONNECT', { 'accept-version': '1.2', passcode: 'alice-token' }), 1),
      /already connected/,
    )
  })

  test('refuses a host outside the configured virtual hosts', async () => {
    const session = newSession({ hosts: ['chat'] })
    const actions = await session.receive(
      frame('CONNECT', { 'accept-version': '1.2', host: 'elsewhere', passcode: 'alice-token' }),
      0,
    )
    assertErrorAndClose(actions, /unknown host "elsewhere"/)
  })

  test('ignores frames once the session is closed', async () => {
    const session = newSession()
    await session.receive(frame('SEND'), 0)
    assert.deepEqual(await session.receive(frame('CONNECT', { passcode: 'alice-token' }), 1), [])
    assert.deepEqual(session.tick(100_000), [])
  })
})

describe('authentication', () => {
  test('hands login, passcode, the Authorization header and the upgrade identity to the callback', async () => {
    const seen: StompCredentials[] = []
    const session = newSession({
      upgrade: 'Bearer upgrade-token',
      authenticate: (credentials) => {
        seen.push(credentials)
        return { ok: true, userId: 'bob' }
      },
    })
    await session.receive(
      frame('CONNECT', {
        'accept-version': '1.2',
        host: 'chat',
        login: 'bob',
        passcode: 'secret',
        Authorization: 'Bearer connect-token',
      }),
      0,
    )
    assert.deepEqual(seen, [
      {
        login: 'bob',
        passcode: 'secret',
        authorization: 'Bearer connect-token',
        upgrade: 'Bearer upgrade-token',
        host: 'chat',
      },
    ])
    assert.equal(session.userId, 'bob')
  })

  test('answers a refused login with ERROR carrying the reason and closes', async () => {
    const session = newSession()
    const actions = await session.receive(frame('CONNECT', { 'accept-version': '1.2', passcode: 'forged' }), 0)
    assertErrorAndClose(actions, /invalid access token/)
    assert.equal(session.userId, undefined)
  })

  test('answers a callback that throws or rejects with ERROR, never a rejection', async () => {
    for (const authenticate of [
      () => {
        throw new Error('token service down')
      },
      () => Promise.reject(new Error('token service down')),
    ]) {
      const session = newSession({ authenticate })
      assertErrorAndClose(
        await session.receive(frame('CONNECT', { 'accept-version': '1.2' }), 0),
        /authentication failed/,
      )
    }
  })

  test('waits for a slow authentication before handling the frames that follow CONNECT', async () => {
    const { authenticate, release } = pendingAuthentication()
    const session = newSession({ authenticate })
    const connecting = session.receive(frame('CONNECT', { 'accept-version': '1.2' }), 0)
    let subscribed = false
    const subscribing = session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/1' }), 1)
    void subscribing.then(() => (subscribed = true))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(subscribed, false)
    release({ ok: true, userId: 'alice' })
    assert.equal(frames(await connecting)[0]?.command, 'CONNECTED')
    assert.equal(only(await subscribing, 'subscribe').destination, '/sub/rooms/1')
  })

  test('keeps the authenticated user id whatever headers the client sends later', async () => {
    const session = await connected()
    await session.receive(
      frame('SEND', { destination: '/pub/rooms/1', 'user-id': 'mallory', login: 'mallory', passcode: 'x' }),
      1,
    )
    await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/1', 'user-id': 'mallory' }), 2)
    assert.equal(session.userId, 'alice')
  })

  test('does not connect a session whose CONNECT deadline passed while authentication was pending', async () => {
    const { authenticate, release } = pendingAuthentication()
    const session = newSession({ connectTimeoutMs: 1000, authenticate })
    const connecting = session.receive(frame('CONNECT', { 'accept-version': '1.2' }), 0)
    assertErrorAndClose(session.tick(1001), /no CONNECT within 1000 ms/)
    release({ ok: true, userId: 'alice' })
    assert.deepEqual(await connecting, [])
    assert.equal(session.connected, false)
  })
})

describe('heart-beats', () => {
  test('negotiates with the spec arithmetic: max of the two sides, 0 when either side is 0', () => {
    assert.deepEqual(negotiateHeartBeat({ send: 4000, receive: 1000 }, { send: 5000, receive: 2000 }), {
      serverSendsEvery: 5000,
      clientSendsEvery: 4000,
    })
    assert.deepEqual(negotiateHeartBeat({ send: 0, receive: 1000 }, { send: 5000, receive: 2000 }), {
      serverSendsEvery: 5000,
      clientSendsEvery: 0,
    })
    assert.deepEqual(negotiateHeartBeat({ send: 1000, receive: 0 }, { send: 5000, receive: 0 }), {
      serverSendsEvery: 0,
      clientSendsEvery: 0,
    })
  })

  test('reads an absent heart-beat header as 0,0 and refuses a malformed one', () => {
    assert.deepEqual(parseHeartBeat(undefined), { send: 0, receive: 0 })
    assert.deepEqual(parseHeartBeat('10000, 20000'), { send: 10000, receive: 20000 })
    assert.equal(parseHeartBeat('-1,0'), undefined)
    assert.equal(parseHeartBeat('ten,0'), undefined)
  })

  test("announces the server's own heart-beat in CONNECTED and keeps the negotiated plan", async () => {
    const session = newSession({ heartBeat: { send: 5000, receive: 10000 } })
    const actions = await session.receive(
      frame('CONNECT', { 'accept-version': '1.2', 'heart-beat': '4000,1000', passcode: 'alice-token' }),
      0,
    )
    assert.equal(headerValue(frames(actions)[0] ?? frame('X'), 'heart-beat'), '5000,10000')
    assert.deepEqual(session.heartBeat, { serverSendsEvery: 5000, clientSendsEvery: 10000 })
  })

  test('refuses a malformed heart-beat header in CONNECT', async () => {
    const session = newSession()
    const actions = await session.receive(
      frame('CONNECT', { 'accept-version': '1.2', 'heart-beat': 'often', passcode: 'alice-token' }),
      0,
    )
    assertErrorAndClose(actions, /malformed heart-beat/)
  })

  test('sends a heart-beat when nothing else went out for the negotiated interval', async () => {
    const session = await connected({ heartBeat: { send: 1000, receive: 0 } }, { 'heart-beat': '0,500' })
    assert.deepEqual(session.tick(999), [])
    assert.deepEqual(session.tick(1000), [{ type: 'heartbeat' }])
    assert.deepEqual(session.tick(1500), [])
    session.noteSent(1800)
    assert.deepEqual(session.tick(2500), [])
    assert.equal(session.nextTickAt(), 2800)
    assert.deepEqual(session.tick(2800), [{ type: 'heartbeat' }])
  })

  test('closes with ERROR a client silent for longer than its interval times the tolerance', async () => {
    const session = await connected(
      { heartBeat: { send: 0, receive: 1000 }, heartBeatTolerance: 1.5 },
      { 'heart-beat': '1000,0' },
    )
    session.noteActivity(1000)
    assert.deepEqual(session.tick(2500), [])
    assert.equal(session.nextTickAt(), 2501)
    assertErrorAndClose(session.tick(2501), /no heart-beat from the client for 1501 ms/)
    assert.equal(session.closed, true)
  })

  test('counts any frame from the client as a sign of life', async () => {
    const session = await connected({ heartBeat: { send: 0, receive: 1000 } }, { 'heart-beat': '1000,0' })
    await session.receive(frame('SEND', { destination: '/pub/rooms/1' }), 1900)
    assert.deepEqual(session.tick(3800), [])
  })

  test('neither sends nor expects heart-beats when either side declines', async () => {
    const session = await connected({ heartBeat: { send: 1000, receive: 1000 } }, { 'heart-beat': '0,0' })
    assert.deepEqual(session.tick(1_000_000), [])
    assert.equal(session.nextTickAt(), undefined)
  })

  test('has no heart-beats with a STOMP 1.0 client', async () => {
    const session = newSession({ heartBeat: { send: 1000, receive: 1000 } })
    await session.receive(frame('CONNECT', { 'heart-beat': '1000,1000', passcode: 'alice-token' }), 0)
    assert.deepEqual(session.heartBeat, { serverSendsEvery: 0, clientSendsEvery: 0 })
  })

  test('closes a connection that never completes CONNECT', () => {
    const session = newSession({ connectTimeoutMs: 5000, now: 100 })
    assert.deepEqual(session.tick(5100), [])
    assertErrorAndClose(session.tick(5101), /no CONNECT within 5000 ms/)
  })
})

describe('sending and subscribing', () => {
  test('turns SEND into a send action with the client headers and body unchanged', async () => {
    const session = await connected()
    const body = new Uint8Array([0x68, 0x00, 0x69])
    const action = only(
      await session.receive(
        frame(
          'SEND',
          [
            ['destination', '/pub/rooms/7'],
            ['x-kind', 'offer'],
            ['x-kind', 'second'],
          ],
          body,
        ),
        1,
      ),
      'send',
    )
    assert.equal(action.destination, '/pub/rooms/7')
    assert.deepEqual(action.headers, [
      ['destination', '/pub/rooms/7'],
      ['x-kind', 'offer'],
      ['x-kind', 'second'],
    ])
    assert.equal(action.body, body)
    assert.equal(action.receipt, undefined)
  })

  test('defers the receipt of a SEND to the caller, who sends it once the message is durable', async () => {
    const session = await connected()
    const action = only(
      await session.receive(frame('SEND', { destination: '/pub/rooms/7', receipt: 'r-1' }, text.encode('hi')), 1),
      'send',
    )
    assert.deepEqual(action.receipt, { command: 'RECEIPT', headers: [['receipt-id', 'r-1']], body: EMPTY })
    assert.equal(
      action.headers.some(([name]) => name === 'receipt'),
      false,
    )
  })

  test('refuses a SEND without a destination, naming the receipt it asked for', async () => {
    const session = await connected()
    const error = assertErrorAndClose(
      await session.receive(frame('SEND', { receipt: 'r-9' }), 1),
      /missing header destination/,
    )
    assert.equal(headerValue(error, 'receipt-id'), 'r-9')
  })

  test('turns SUBSCRIBE into a subscribe action with auto acknowledgement by default', async () => {
    const session = await connected()
    const action = only(
      await session.receive(frame('SUBSCRIBE', { id: 'sub-0', destination: '/sub/rooms/7' }), 1),
      'subscribe',
    )
    assert.deepEqual(
      { id: action.id, destination: action.destination, ack: action.ack },
      { id: 'sub-0', destination: '/sub/rooms/7', ack: 'auto' },
    )
    assert.deepEqual(session.subscription('sub-0')?.destination, '/sub/rooms/7')
  })

  test('attaches the receipt of a SUBSCRIBE to the subscribe action', async () => {
    const session = await connected()
    const action = only(
      await session.receive(frame('SUBSCRIBE', { id: 'sub-0', destination: '/sub/rooms/7', receipt: 'r-2' }), 1),
      'subscribe',
    )
    assert.equal(headerValue(action.receipt ?? frame('X'), 'receipt-id'), 'r-2')
  })

  test('refuses a SUBSCRIBE without id or destination in STOMP 1.2', async () => {
    assertErrorAndClose(
      await (await connected()).receive(frame('SUBSCRIBE', { destination: '/sub/rooms/7' }), 1),
      /missing header id/,
    )
    assertErrorAndClose(
      await (await connected()).receive(frame('SUBSCRIBE', { id: '0' }), 1),
      /missing header destination/,
    )
  })

  test('lets a STOMP 1.0 client subscribe and unsubscribe by destination', async () => {
    const session = newSession()
    await session.receive(frame('CONNECT', { passcode: 'alice-token' }), 0)
    assert.equal(
      only(await session.receive(frame('SUBSCRIBE', { destination: '/sub/rooms/7' }), 1), 'subscribe').id,
      '/sub/rooms/7',
    )
    assert.equal(
      only(await session.receive(frame('UNSUBSCRIBE', { destination: '/sub/rooms/7' }), 2), 'unsubscribe').id,
      '/sub/rooms/7',
    )
  })

  test('refuses a second subscription with an id already in use', async () => {
    const session = await connected()
    await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/1' }), 1)
    assertErrorAndClose(
      await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/2' }), 2),
      /subscription id "0" is already in use/,
    )
  })

  test('refuses an unknown ack mode', async () => {
    const session = await connected()
    assertErrorAndClose(
      await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/1', ack: 'sometimes' }), 1),
      /unknown ack mode "sometimes"/,
    )
  })

  test('refuses subscriptions beyond the configured maximum', async () => {
    const session = await connected({ maxSubscriptions: 1 })
    await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/1' }), 1)
    assertErrorAndClose(
      await session.receive(frame('SUBSCRIBE', { id: '1', destination: '/sub/rooms/2' }), 2),
      /more than 1 subscriptions/,
    )
  })

  test('unsubscribes by id and then delivers nothing more on it', async () => {
    const session = await connected()
    await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/1' }), 1)
    const action = only(await session.receive(frame('UNSUBSCRIBE', { id: '0', receipt: 'r-3' }), 2), 'unsubscribe')
    assert.equal(action.destination, '/sub/rooms/1')
    assert.equal(headerValue(action.receipt ?? frame('X'), 'receipt-id'), 'r-3')
    assert.equal(session.message('0', { destination: '/sub/rooms/1', body: EMPTY }), undefined)
  })

  test('refuses to unsubscribe an id it does not know', async () => {
    const session = await connected()
    assertErrorAndClose(await session.receive(frame('UNSUBSCRIBE', { id: '9' }), 1), /no subscription with id "9"/)
  })
})

describe('messages', () => {
  test('builds a MESSAGE with subscription and message-id, keeping the client headers and body', async () => {
    const session = await connected()
    await session.receive(frame('SUBSCRIBE', { id: 'sub-0', destination: '/sub/rooms/7' }), 1)
    const body = new Uint8Array([1, 0, 2])
    const message = session.message('sub-0', {
      destination: '/sub/rooms/7',
      messageId: 'm-1',
      headers: [
        ['destination', '/pub/rooms/7'],
        ['content-type', 'application/octet-stream'],
        ['x-kind', 'offer'],
      ],
      body,
    })
    assert.deepEqual(message, {
      command: 'MESSAGE',
      headers: [
        ['destination', '/sub/rooms/7'],
        ['message-id', 'm-1'],
        ['subscription', 'sub-0'],
        ['content-type', 'application/octet-stream'],
        ['x-kind', 'offer'],
      ],
      body,
    })
  })

  test('puts server headers ahead of and instead of client headers of the same name', async () => {
    const session = await connected()
    await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/sub/rooms/7' }), 1)
    const message = session.message('0', {
      destination: '/sub/rooms/7',
      serverHeaders: [['user-id', 'alice']],
      headers: [
        ['user-id', 'mallory'],
        ['subscription', 'forged'],
      ],
      body: EMPTY,
    })
    assert.ok(message)
    assert.deepEqual(
      message.headers.filter(([name]) => name === 'user-id' || name === 'subscription'),
      [
        ['subscription', '0'],
        ['user-id', 'alice'],
      ],
    )
  })

  test('gives each delivery its own message-id when the caller has none', async () => {
    const session = await connected()
    await session.receive(frame('SUBSCRIBE', { id: '0', destination: '/d' }), 1)
    const first = session.message('0', { destination: '/d', body: EMPTY })
    const second = session.message('0', { destination: '/d', body: EMPTY })
    assert.ok(first && second)
    assert.notEqual(headerValue(first, 'message-id'), headerValue(second, 'message-id'))
  })

  test('adds an ack header only for client acknowledgement in STOMP 1.2', async () => {
    const session = await connected()
    await session.receive(frame('SUBSCRIBE', { id: 'auto', destination: '/d' }), 1)
    await session.receive(frame('SUBSCRIBE', { id: 'client', destination: '/d', ack: 'client' }), 1)
    assert.equal(
      headerValue(session.message('auto', { destination: '/d', body: EMPTY }) ?? frame('X'), 'ack'),
      undefined,
    )
    assert.ok(headerValue(session.message('client', { destination: '/d', body: EMPTY }) ?? frame('X'), 'ack'))
  })
})

describe('messages to STOMP 1.0 clients', () => {
  test('leaves out headers that cannot be written without escaping', async () => {
    const session = newSession()
    await session.receive(frame('CONNECT', { passcode: 'alice-token' }), 0)
    await session.receive(frame('SUBSCRIBE', { destination: '/d' }), 1)
    const message = session.message('/d', {
      destination: '/d',
      headers: [
        ['x-note', 'two\nlines'],
        ['x:odd', 'v'],
        ['x-kind', 'offer'],
      ],
      body: EMPTY,
    })
    assert.deepEqual(message?.headers.slice(3), [['x-kind', 'offer']])
  })
})

describe('messages to STOMP 1.1 clients', () => {
  test('leaves out headers with a carriage return, which 1.1 cannot escape, so the client can still decode the MESSAGE', async () => {
    const session = newSession()
    await session.receive(frame('CONNECT', { 'accept-version': '1.1', passcode: 'alice-token' }), 0)
    await session.receive(frame('SUBSCRIBE', { id: 's', destination: '/d' }), 1)
    const message = session.message('s', {
      destination: '/d',
      headers: [
        ['x-note', 'carriage\rreturn'],
        ['x-lines', 'two\nlines:here'],
      ],
      body: EMPTY,
    })
    assert.ok(message)
    const decoder = createFrameDecoder({ version: '1.1' })
    const { frames: decoded, error } = decoder.push(
      encodeFrame(message, { escape: headersAreEscaped('MESSAGE', '1.1') }),
    )
    assert.equal(error, undefined)
    assert.deepEqual(decoded[0]?.headers.slice(3), [['x-lines', 'two\nlines:here']])
  })
})

describe('acknowledgements', () => {
  async function deliveries(ack: string, count: number, version = '1.2') {
    const session = await connected({}, { 'accept-version': version })
    await session.receive(frame('SUBSCRIBE', { id: 'sub', destination: '/d', ack }), 1)
    const messages = Array.from({ length: count }, (_, index) =>
      session.message('sub', { destination: '/d', messageId: `m-${index + 1}`, body: EMPTY }),
    )
    return { session, ackIds: messages.map((message) => headerValue(message ?? frame('X'), 'ack') ?? '') }
  }

  test('in client mode an ACK settles that message and every earlier one', async () => {
    const { session, ackIds } = await deliveries('client', 3)
    const action = only(await session.receive(frame('ACK', { id: ackIds[1] ?? '' }), 2), 'ack')
    assert.deepEqual(action.messageIds, ['m-1', 'm-2'])
    assert.equal(action.subscriptionId, 'sub')
    assertErrorAndClose(await session.receive(frame('ACK', { id: ackIds[0] ?? '' }), 3), /no unacknowledged message/)
  })

  test('in client-individual mode an ACK or NACK settles only that message', async () => {
    const { session, ackIds } = await deliveries('client-individual', 3)
    assert.deepEqual(only(await session.receive(frame('NACK', { id: ackIds[1] ?? '' }), 2), 'nack').messageIds, ['m-2'])
    assert.deepEqual(only(await session.receive(frame('ACK', { id: ackIds[2] ?? '' }), 3), 'ack').messageIds, ['m-3'])
    assert.deepEqual(only(await session.receive(frame('ACK', { id: ackIds[0] ?? '' }), 4), 'ack').messageIds, ['m-1'])
  })

  test('in auto mode there is nothing to acknowledge', async () => {
    const { session, ackIds } = await deliveries('auto', 1)
    assert.deepEqual(ackIds, [''])
    assertErrorAndClose(await session.receive(frame('ACK', { id: 'anything' }), 2), /no unacknowledged message/)
  })

  test('in STOMP 1.1 acknowledges by message-id and subscription', async () => {
    const { session } = await deliveries('client-individual', 2, '1.1')
    const action = only(
      await session.receive(frame('ACK', { 'message-id': 'm-2', subscription: 'sub', receipt: 'r' }), 2),
      'ack',
    )
    assert.deepEqual(action.messageIds, ['m-2'])
    assert.equal(headerValue(action.receipt ?? frame('X'), 'receipt-id'), 'r')
    assertErrorAndClose(await session.receive(frame('ACK', { 'message-id': 'm-1' }), 3), /missing header subscription/)
  })

  test('in STOMP 1.2 refuses an ACK without id', async () => {
    const { session } = await deliveries('client', 1)
    assertErrorAndClose(
      await session.receive(frame('ACK', { 'message-id': 'm-1', subscription: 'sub' }), 2),
      /missing header id/,
    )
  })

  test('reports unacknowledged messages when a client-ack subscription ends', async () => {
    const { session } = await deliveries('client', 2)
    assert.deepEqual(
      only(await session.receive(frame('UNSUBSCRIBE', { id: 'sub' }), 2), 'unsubscribe').unacknowledged,
      ['m-1', 'm-2'],
    )
  })
})

describe('receipts, transactions, disconnect and violations', () => {
  test('answers DISCONNECT with its receipt and then closes', async () => {
    const session = await connected()
    const actions = await session.receive(frame('DISCONNECT', { receipt: 'bye' }), 1)
    assert.deepEqual(actions, [
      { type: 'frame', frame: { command: 'RECEIPT', headers: [['receipt-id', 'bye']], body: EMPTY } },
      { type: 'close', reason: 'client disconnected' },
    ])
    assert.equal(session.closed, true)
  })

  test('closes on DISCONNECT without a receipt', async () => {
    const session = await connected()
    assert.deepEqual(await session.receive(frame('DISCONNECT'), 1), [{ type: 'close', reason: 'client disconnected' }])
  })

  test('answers BEGIN, COMMIT, ABORT and transactional frames with an ERROR: transactions are not supported', async () => {
    for (const bad of [
      frame('BEGIN', { transaction: 't1' }),
      frame('COMMIT', { transaction: 't1' }),
      frame('ABORT', { transaction: 't1' }),
      frame('SEND', { destination: '/d', transaction: 't1' }),
    ]) {
      const session = await connected()
      assertErrorAndClose(await session.receive(bad, 1), /transactions are not supported/)
    }
  })

  test('refuses server commands and unknown commands from the client', async () => {
    for (const command of ['MESSAGE', 'CONNECTED', 'PUBLISH']) {
      const session = await connected()
      assertErrorAndClose(await session.receive(frame(command), 1), new RegExp(`unknown command "${command}"`))
    }
  })

  test('keeps an ERROR message on one line, since CONNECT-phase frames are not escaped', async () => {
    const session = newSession({ authenticate: () => ({ ok: false, message: 'token expired\nat noon' }) })
    const error = assertErrorAndClose(
      await session.receive(frame('CONNECT', { 'accept-version': '1.2' }), 0),
      /expired/,
    )
    assert.equal(headerValue(error, 'message'), 'token expired at noon')
  })

  test('lets the endpoint end a session with an ERROR of its own, once', async () => {
    const session = await connected()
    const error = assertErrorAndClose(session.reject('not a member of room 7', { receiptId: 'r-5' }), /not a member/)
    assert.equal(headerValue(error, 'receipt-id'), 'r-5')
    assert.deepEqual(session.reject('again'), [])
  })

  test('never rejects, whatever frame arrives in whatever state', async () => {
    const commands = ['CONNECT', 'STOMP', 'SEND', 'SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK', 'DISCONNECT', '', 'x']
    const headerSets: Record<string, string>[] = [
      {},
      { 'accept-version': '9', 'heart-beat': ',', id: '', destination: '' },
      { 'accept-version': '1.2', passcode: 'alice-token', id: 'a', destination: '/d', ack: 'client' },
    ]
    for (const first of commands) {
      for (const second of commands) {
        for (const headers of headerSets) {
          const session = newSession()
          await session.receive(frame(first, headers), 0)
          const actions = await session.receive(frame(second, headers), 1)
          assert.ok(Array.isArray(actions))
        }
      }
    }
  })
})

describe('with the codec', () => {
  test('speaks to a client byte stream split at odd places, from CONNECT to DISCONNECT', async () => {
    const session = newSession()
    const serverDecoder = createFrameDecoder()
    const clientDecoder = createFrameDecoder()
    const body = new Uint8Array([0x61, 0x00, 0x62])
    const request = new Uint8Array([
      ...text.encode('CONNECT\naccept-version:1.1,1.2\nhost:chat\npasscode:alice-token\n\n\0\n'),
      ...text.encode('SUBSCRIBE\nid:0\ndestination:/sub/rooms/1\nack:client-individual\nreceipt:r-1\n\n\0'),
      ...text.encode('SEND\ndestination:/pub/rooms/1\nx-note:a\\cb\\nc\ncontent-length:3\n\n'),
      ...body,
      0,
    ])
    const received: StompFrame[] = []
    const deliver = (outgoing: StompFrame) => {
      const bytes = encodeFrame(outgoing, { escape: headersAreEscaped(outgoing.command, session.version) })
      const decoded = clientDecoder.push(bytes)
      assert.equal(decoded.error, undefined)
      received.push(...decoded.frames)
    }
    for (let at = 0; at < request.length; at += 7) {
      const { frames: incoming, error } = serverDecoder.push(request.subarray(at, at + 7))
      assert.equal(error, undefined)
      for (const decoded of incoming) {
        for (const action of await session.receive(decoded, at)) {
          if (action.type === 'frame') deliver(action.frame)
          if (action.type === 'connected') serverDecoder.setVersion(action.version)
          if (action.type === 'subscribe' && action.receipt) deliver(action.receipt)
          if (action.type === 'send') {
            const message = session.message('0', {
              destination: '/sub/rooms/1',
              messageId: 'm-1',
              serverHeaders: [['user-id', session.userId ?? '']],
              headers: action.headers,
              body: action.body,
            })
            assert.ok(message)
            deliver(message)
            if (action.receipt) deliver(action.receipt)
          }
        }
      }
    }
    assert.deepEqual(
      received.map((each) => each.command),
      ['CONNECTED', 'RECEIPT', 'MESSAGE'],
    )
    const message = received[2] ?? frame('X')
    assert.equal(headerValue(message, 'x-note'), 'a:b\nc')
    assert.equal(headerValue(message, 'user-id'), 'alice')
    assert.deepEqual(message.body, body)
    const ackId = headerValue(message, 'ack') ?? ''
    const { frames: ackFrames } = serverDecoder.push(text.encode(`ACK\nid:${ackId}\n\n\0DISCONNECT\nreceipt:bye\n\n\0`))
    const [ack, disconnect] = ackFrames
    assert.ok(ack && disconnect)
    assert.deepEqual(only(await session.receive(ack, 100), 'ack').messageIds, ['m-1'])
    const last = await session.receive(disconnect, 101)
    assert.equal(frames(last)[0]?.command, 'RECEIPT')
    assert.equal(last.at(-1)?.type, 'close')
  })
})
