import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { Problem } from '@timedeal/platform'
import { CircuitBreaker, createGoodsClient } from '../src/adapters/goods-client.ts'

describe('the goods-service client', () => {
  let server: Server
  let url: string
  let calls = 0
  let mode: 'hang' | 'ok' | 'sold-out' = 'hang'

  before(async () => {
    server = createServer((request, response) => {
      calls += 1
      if (mode === 'hang') return
      if (mode === 'sold-out') {
        response.writeHead(409, { 'content-type': 'application/problem+json' })
        response.end(JSON.stringify({ code: 'SOLD_OUT', detail: 'the goods are sold out', status: 409 }))
        return
      }
      response.writeHead(request.method === 'GET' ? 200 : 201, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ id: 'g1', sellerId: 's1', price: 1_000 }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  const isUnavailable = (error: unknown) =>
    error instanceof Problem && error.code === 'GOODS_UNAVAILABLE' && error.status === 503

  test('times out, then fails fast while the breaker is open, then tries again', async () => {
    let now = 0
    const client = createGoodsClient({
      baseUrl: url,
      internalSecret: 'secret-secret-secret',
      timeoutMs: 100,
      failureThreshold: 2,
      openMs: 1_000,
      now: () => now,
    })
    mode = 'hang'
    calls = 0
    await assert.rejects(client.goods('g1'), isUnavailable)
    await assert.rejects(client.goods('g1'), isUnavailable)
    assert.equal(calls, 2)
    const started = Date.now()
    await assert.rejects(client.goods('g1'), isUnavailable)
    assert.equal(calls, 2, 'an open breaker does not call')
    assert.ok(Date.now() - started < 50)

    now = 1_000
    mode = 'ok'
    assert.deepEqual(await client.goods('g1'), { id: 'g1', sellerId: 's1', price: 1_000 })
    assert.equal(calls, 3)
  })

  test('passes goods-service’s refusal on with its status and code, without counting it as a failure', async () => {
    const client = createGoodsClient({
      baseUrl: url,
      internalSecret: 'secret-secret-secret',
      timeoutMs: 500,
      failureThreshold: 1,
      openMs: 60_000,
    })
    mode = 'sold-out'
    const reservation = { reservationId: 'r1', goodsId: 'g1', userId: 'u1', quantity: 1 }
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await assert.rejects(
        client.reserve(reservation),
        (error: unknown) => error instanceof Problem && error.status === 409 && error.code === 'SOLD_OUT',
      )
    }
  })

  test('a half-open breaker lets one trial through, and opens again when it fails', () => {
    let now = 0
    const breaker = new CircuitBreaker(1, 100, () => now)
    breaker.failed()
    assert.equal(breaker.state, 'open')
    assert.equal(breaker.allow(), false)
    now = 100
    assert.equal(breaker.allow(), true)
    assert.equal(breaker.allow(), false, 'only one trial at a time')
    breaker.failed()
    assert.equal(breaker.state, 'open')
    now = 200
    assert.equal(breaker.allow(), true)
    breaker.succeeded()
    assert.equal(breaker.state, 'closed')
  })
})
