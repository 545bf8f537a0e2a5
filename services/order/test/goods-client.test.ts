import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { after, afterEach, before, describe, test } from 'node:test'
import { Problem } from '@timedeal/platform'
import { createGoodsClient, type GoodsClientOptions } from '../src/adapters/goods-client.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('the goods-service client', () => {
  let server: Server
  let url: string
  let calls = 0
  let connections = 0
  let inFlight = 0
  let mostInFlight = 0
  let bodies: string[] = []
  let mode: 'hang' | 'ok' | 'sold-out' | 'one-at-a-time' | 'drop-first' = 'hang'
  /** For `one-at-a-time`: like a saturated service, it works through requests one after another. */
  let serial: Promise<unknown> = Promise.resolve()

  const goodsAnswer = (request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(request.method === 'GET' ? 200 : 201, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ id: 'g1', sellerId: 's1', price: 1_000 }))
  }

  before(async () => {
    server = createServer((request, response) => {
      calls += 1
      inFlight += 1
      mostInFlight = Math.max(mostInFlight, inFlight)
      response.on('close', () => {
        inFlight -= 1
      })
      let body = ''
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      request.on('end', () => {
        bodies.push(body)
        if (mode === 'hang') return
        if (mode === 'drop-first' && calls === 1) {
          request.socket.destroy()
          return
        }
        if (mode === 'sold-out') {
          response.writeHead(409, { 'content-type': 'application/problem+json' })
          response.end(JSON.stringify({ code: 'SOLD_OUT', detail: 'the goods are sold out', status: 409 }))
          return
        }
        if (mode === 'one-at-a-time') {
          serial = serial.then(async () => {
            await sleep(150)
            goodsAnswer(request, response)
          })
          return
        }
        goodsAnswer(request, response)
      })
    })
    server.on('connection', () => {
      connections += 1
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  })

  // Connections stay open between tests, as they do between calls: fetch keeps them alive.
  afterEach(() => {
    calls = 0
    connections = 0
    mostInFlight = 0
    bodies = []
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  const client = (options: Partial<GoodsClientOptions> = {}) =>
    createGoodsClient({
      baseUrl: url,
      internalSecret: 'secret-secret-secret',
      timeoutMs: 500,
      maxConcurrentCalls: 8,
      maxQueuedCalls: 100,
      failureThreshold: 5,
      openMs: 60_000,
      ...options,
    })

  const isUnavailable = (error: unknown) =>
    error instanceof Problem && error.code === 'GOODS_UNAVAILABLE' && error.status === 503

  test('times out, then fails fast while the breaker is open, then tries again', async () => {
    const goods = client({ timeoutMs: 100, failureThreshold: 2, openMs: 500 })
    mode = 'hang'
    await assert.rejects(goods.goods('g1'), isUnavailable)
    await assert.rejects(goods.goods('g1'), isUnavailable)
    assert.equal(calls, 2)
    await assert.rejects(goods.goods('g1'), isUnavailable)
    assert.equal(calls, 2, 'an open breaker does not call')

    await sleep(600)
    mode = 'ok'
    assert.deepEqual(await goods.goods('g1'), { id: 'g1', sellerId: 's1', price: 1_000 })
    assert.equal(calls, 3)
  })

  test('a half-open breaker lets one trial through, and opens again when it fails', async () => {
    const goods = client({ timeoutMs: 100, failureThreshold: 1, openMs: 300 })
    mode = 'hang'
    await assert.rejects(goods.goods('g1'), isUnavailable)
    await sleep(400)
    await assert.rejects(goods.goods('g1'), isUnavailable)
    assert.equal(calls, 2, 'the trial went out')
    mode = 'ok'
    await assert.rejects(goods.goods('g1'), isUnavailable)
    assert.equal(calls, 2, 'the failed trial opened the breaker again')
  })

  test('passes goods-service’s refusal on with its status and code, without counting it as a failure', async () => {
    const goods = client({ failureThreshold: 1 })
    mode = 'sold-out'
    const reservation = { reservationId: 'r1', goodsId: 'g1', userId: 'u1', quantity: 1 }
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await assert.rejects(
        goods.reserve(reservation),
        (error: unknown) => error instanceof Problem && error.status === 409 && error.code === 'SOLD_OUT',
      )
    }
    assert.equal(calls, 3)
  })

  test('a burst waits in our queue instead of timing out in goods-service’s', async () => {
    // goods-service answers one request at a time, 150 ms each: all twelve take 1.8 s, far past
    // the timeout, but each single call, once sent, is answered well within it.
    mode = 'one-at-a-time'
    const goods = client({ timeoutMs: 1_000, maxConcurrentCalls: 1, failureThreshold: 3 })
    const answers = await Promise.allSettled(Array.from({ length: 12 }, () => goods.goods('g1')))
    assert.deepEqual(
      answers.map((answer) => answer.status),
      Array(12).fill('fulfilled'),
      JSON.stringify(answers.map((answer) => (answer.status === 'rejected' ? String(answer.reason) : 'ok'))),
    )
    assert.equal(mostInFlight, 1)
  })

  test('past the queue bound a caller gets 429 with Retry-After, and nothing is sent', async () => {
    mode = 'hang'
    const goods = client({ timeoutMs: 300, maxConcurrentCalls: 1, maxQueuedCalls: 1 })
    const sent = goods.goods('g1')
    const queued = goods.goods('g1')
    await assert.rejects(
      goods.goods('g1'),
      (error: unknown) => error instanceof Problem && error.status === 429 && Number(error.headers['retry-after']) >= 1,
    )
    await Promise.allSettled([sent, queued])
    assert.equal(calls, 2)
  })

  test('a call whose connection broke is sent once more', async () => {
    mode = 'drop-first'
    const goods = client()
    assert.deepEqual(await goods.goods('g1'), { id: 'g1', sellerId: 's1', price: 1_000 })
    assert.equal(calls, 2)
  })

  test('calls reuse kept-alive connections, never more at once than the calls let out', async () => {
    mode = 'ok'
    const goods = client({ maxConcurrentCalls: 4 })
    try {
      for (let wave = 0; wave < 3; wave += 1) {
        await Promise.all(Array.from({ length: 100 }, (_, index) => goods.goods(`g${index}`)))
      }
      assert.equal(calls, 300)
      assert.ok(connections <= 4, `${connections} connections for 300 calls`)
    } finally {
      await goods.close?.()
    }
  })

  test('a release names the goods of the reservation', async () => {
    mode = 'ok'
    await client().release({ reservationId: 'r1', goodsId: 'g1' }, 'order-not-placed')
    assert.deepEqual(JSON.parse(bodies[0] ?? ''), { goodsId: 'g1', reason: 'order-not-placed' })
  })
})
