/**
 * The smoke test of `make e2e`, run on the host against the platform installed in the kind
 * cluster, through the gateway's NodePort: a demo buyer signs in; the demo seller puts goods on
 * sale; the buyer places orders, four at a time, while one order-service pod is killed, a
 * request that fails for it is sent again with the same Idempotency-Key, and in the end every
 * order is PAID, none is missing or doubled and the stock went down by exactly that many; then
 * buyer and seller exchange a chat message over STOMP on /ws/chat.
 *
 *   SMOKE_BASE_URL=http://127.0.0.1:30080 SMOKE_KUBECONFIG=.state/kind/kubeconfig node hack/kind/smoke.ts
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import { Client, type IMessage } from '@stomp/stompjs'
import { WebSocket } from 'ws'
import { z } from 'zod'

const settings = z
  .object({
    SMOKE_BASE_URL: z.url().default('http://127.0.0.1:30080'),
    SMOKE_NAMESPACE: z.string().min(1).default('timedeal'),
    SMOKE_KUBECTL: z.string().min(1).default('kubectl'),
    // Named, not taken from KUBECONFIG: that one points at the local API server of make test.
    SMOKE_KUBECONFIG: z.string().min(1).default('.state/kind/kubeconfig'),
    SMOKE_ORDERS: z.coerce.number().int().min(4).max(200).default(20),
    SMOKE_PAID_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(180),
  })
  .parse(process.env)

const run = promisify(execFile)
const base = settings.SMOKE_BASE_URL.replace(/\/$/, '')
const say = (line: string) => process.stdout.write(`[smoke] ${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Answer {
  readonly status: number
  readonly body: unknown
}

async function call(
  method: string,
  path: string,
  token?: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  const answer: Answer = { status: response.status, body: text ? JSON.parse(text) : undefined }
  return answer
}

function expectStatus(answer: Answer, expected: number[], what: string): void {
  if (!expected.includes(answer.status)) {
    throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`)
  }
}

async function signIn(email: string, password: string): Promise<{ token: string; id: string }> {
  const answer = await call('POST', '/api/auth/login', undefined, { email, password })
  expectStatus(answer, [200], `sign in as ${email}`)
  const body = z.object({ accessToken: z.string(), user: z.object({ id: z.string() }) }).parse(answer.body)
  return { token: body.accessToken, id: body.user.id }
}

async function createGoods(sellerToken: string, stock: number): Promise<string> {
  const now = Date.now()
  const answer = await call('POST', '/api/goods', sellerToken, {
    name: `Smoke test goods ${new Date(now).toISOString()}`,
    description: 'Made by the end-to-end smoke test.',
    price: 1000,
    initialStock: stock,
    saleStartsAt: new Date(now + 2_000).toISOString(),
    saleEndsAt: new Date(now + 3_600_000).toISOString(),
    purchaseLimit: null,
  })
  expectStatus(answer, [201], 'create goods')
  return z.object({ id: z.string() }).parse(answer.body).id
}

async function liveStock(goodsId: string): Promise<{ stockAvailable: number; saleState: string }> {
  const answer = await call('GET', `/api/goods/${goodsId}/stock`)
  expectStatus(answer, [200], 'read stock')
  return z.object({ stockAvailable: z.number(), saleState: z.string() }).parse(answer.body)
}

/** A refusal is remembered for its key, so no order is sent before the sale is open. */
async function waitOpen(goodsId: string): Promise<void> {
  for (let n = 0; n < 60; n++) {
    if ((await liveStock(goodsId)).saleState === 'OPEN') return
    await sleep(500)
  }
  throw new Error(`goods ${goodsId} did not open for sale`)
}

/** One order, sent again with the same key until an answer says what became of it. */
async function placeOrder(buyerToken: string, goodsId: string, key: string): Promise<{ id: string; tries: number }> {
  for (let tries = 1; tries <= 30; tries++) {
    try {
      const answer = await call('POST', '/api/orders', buyerToken, { goodsId, quantity: 1 }, { 'idempotency-key': key })
      if (answer.status === 200 || answer.status === 201) {
        return { id: z.object({ id: z.string() }).parse(answer.body).id, tries }
      }
      // A killed pod cuts the connection or answers 5xx, a full queue 429: retry, same key.
      if (answer.status < 500 && answer.status !== 429) {
        throw new Error(`order ${key}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`)
      }
    } catch (error) {
      if (error instanceof Error && error.message.startsWith(`order ${key}`)) throw error
      // A connection cut by the pod's end: the key makes the retry safe.
    }
    await sleep(500)
  }
  throw new Error(`order ${key}: no answer after 30 tries`)
}

async function deleteOneOrderPod(): Promise<string> {
  const kubectl = (...args: string[]) =>
    run(settings.SMOKE_KUBECTL, ['--kubeconfig', settings.SMOKE_KUBECONFIG, '-n', settings.SMOKE_NAMESPACE, ...args])
  const { stdout } = await kubectl('get', 'pods', '-l', 'app.kubernetes.io/component=order', '-o', 'name')
  const pod = stdout.split('\n').find((line) => line.startsWith('pod/'))
  if (!pod) throw new Error('no order-service pod to delete')
  // No grace period: the process dies under its open requests, as in a crash.
  await kubectl('delete', pod, '--grace-period=0', '--force', '--wait=false')
  return pod
}

async function waitAllPaid(buyerToken: string, orderIds: readonly string[]): Promise<void> {
  const deadline = Date.now() + settings.SMOKE_PAID_TIMEOUT_SECONDS * 1000
  const pending = new Set(orderIds)
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const answer = await call('GET', `/api/orders/${id}`, buyerToken)
      if (answer.status === 200 && z.object({ state: z.string() }).parse(answer.body).state === 'PAID') {
        pending.delete(id)
      }
    }
    if (pending.size === 0) return
    if (Date.now() > deadline) throw new Error(`orders not PAID in time: ${[...pending].join(', ')}`)
    await sleep(1000)
  }
}

async function orderFlow(buyer: { token: string }, seller: { token: string }): Promise<string> {
  const count = settings.SMOKE_ORDERS
  const goodsId = await createGoods(seller.token, count * 2)
  say(`seller put goods ${goodsId} on sale (${count * 2} units)`)
  await waitOpen(goodsId)
  const before = count * 2
  const ids: string[] = []
  let retried = 0
  let next = 0
  let killed: Promise<string> | undefined
  // Four buyers' requests in flight at a time, so the pod is killed under some of them.
  const worker = async () => {
    while (next < count) {
      const n = next++
      if (n === Math.floor(count / 3)) killed = deleteOneOrderPod()
      const placed = await placeOrder(buyer.token, goodsId, `smoke-${goodsId}-${n}`)
      if (placed.tries > 1) retried++
      ids.push(placed.id)
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])
  say(`killed ${await killed} while ordering`)
  const distinct = new Set(ids).size
  if (distinct !== count) throw new Error(`${count} orders placed, but ${distinct} distinct order ids`)
  say(`${count} orders placed (${retried} needed a retry with the same key)`)
  await waitAllPaid(buyer.token, ids)
  const after = (await liveStock(goodsId)).stockAvailable
  if (before - after !== count) throw new Error(`stock went from ${before} to ${after} for ${count} orders`)
  say(`all ${count} orders PAID; stock ${before} → ${after}: nothing lost, nothing doubled`)
  return goodsId
}

function stompClient(token: string): Client {
  const url = `${base.replace(/^http/, 'ws')}/ws/chat`
  return new Client({
    webSocketFactory: () => new WebSocket(url, ['v12.stomp']),
    connectHeaders: { passcode: token },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  })
}

function connect(client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    client.onConnect = () => resolve()
    client.onStompError = (frame) => reject(new Error(`STOMP ERROR: ${frame.headers.message}`))
    client.onWebSocketError = () => reject(new Error('WebSocket error on /ws/chat'))
    client.activate()
  })
}

async function chatFlow(buyer: { token: string }, seller: { token: string; id: string }, goodsId: string) {
  const room = await call('POST', '/api/chat/rooms', buyer.token, { goodsId })
  expectStatus(room, [200, 201], 'open a chat room')
  const roomId = z.object({ id: z.string() }).parse(room.body).id
  const sellerClient = stompClient(seller.token)
  const buyerClient = stompClient(buyer.token)
  try {
    await Promise.all([connect(sellerClient), connect(buyerClient)])
    const body = `hello from the smoke test ${randomUUID()}`
    const received = new Promise<IMessage>((resolve) => {
      sellerClient.subscribe(`/sub/rooms/${roomId}`, (message) => {
        if (message.body === body) resolve(message)
      })
    })
    // A plain SUBSCRIBE replays nothing: until it has reached the server, a message can pass it
    // by, so the same message is sent again (it is the same body) until it arrives.
    let message: IMessage | undefined
    for (let attempt = 1; attempt <= 10 && !message; attempt++) {
      buyerClient.publish({ destination: `/pub/rooms/${roomId}`, body })
      message = await Promise.race([received, sleep(3000).then(() => undefined)])
    }
    if (!message) throw new Error('the chat message did not arrive within 30 s')
    say(`chat: the seller got the buyer's message over STOMP (message-id ${message.headers['message-id']})`)
  } finally {
    await Promise.allSettled([sellerClient.deactivate(), buyerClient.deactivate()])
  }
}

async function main(): Promise<void> {
  const started = Date.now()
  const buyer = await signIn('buyer1@timedeal.dev', 'timedeal-buyer1')
  say(`signed in as the demo buyer through ${base}`)
  const seller = await signIn('seller@timedeal.dev', 'timedeal-seller')
  const goodsId = await orderFlow(buyer, seller)
  await chatFlow(buyer, seller, goodsId)
  say(`passed in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

main().catch((error: unknown) => {
  process.stderr.write(`[smoke] FAILED: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
