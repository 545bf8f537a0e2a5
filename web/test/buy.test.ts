/**
 * The Buy button's retries against a real HTTP server standing where the gateway would: the
 * retry the server asks for keeps the click's Idempotency-Key; a refusal is not retried.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { listenOnFreePort } from '@timedeal/platform/testing'
import { ApiProblem } from '../src/api.ts'
import { buyOnce, postOrder } from '../src/orders.ts'

type Answer = (response: ServerResponse) => void
const answers: Answer[] = []
const seenKeys: string[] = []
let base: string
const server = createServer((request: IncomingMessage, response: ServerResponse) => {
  seenKeys.push(String(request.headers['idempotency-key']))
  request.resume()
  const answer = answers.shift()
  if (answer) answer(response)
  else response.writeHead(500).end()
})

const problem =
  (status: number, code: string, headers: Record<string, string> = {}): Answer =>
  (response) =>
    response
      .writeHead(status, { 'content-type': 'application/problem+json', ...headers })
      .end(JSON.stringify({ status, code, detail: code }))

const placed: Answer = (response) =>
  response
    .writeHead(201, { 'content-type': 'application/json' })
    .end(JSON.stringify({ id: 'order-1', goodsId: 'g-1', quantity: 1, totalAmount: 1, state: 'PENDING_PAYMENT' }))

before(async () => {
  base = `http://127.0.0.1:${await listenOnFreePort(server)}`
})
after(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('Buy', () => {
  it('never places a second order when it follows the Retry-After the server asked for', async () => {
    answers.push(problem(429, 'TOO_MANY_PENDING_ORDERS', { 'retry-after': '2' }), placed)
    seenKeys.length = 0
    const waited: number[] = []
    const asked: number[] = []
    const order = await buyOnce({
      post: postOrder('g-1', 1, base),
      onRetry: (seconds) => asked.push(seconds),
      wait: async (ms) => {
        waited.push(ms)
      },
    })
    assert.equal(order.id, 'order-1')
    assert.equal(seenKeys.length, 2)
    assert.equal(seenKeys[0], seenKeys[1], 'the retry carries the same Idempotency-Key')
    assert.deepEqual(asked, [2])
    assert.deepEqual(waited, [2000])
  })

  it('does not retry a refusal: sold out is the answer, not a reason to ask again', async () => {
    answers.push(problem(409, 'SOLD_OUT'))
    seenKeys.length = 0
    await assert.rejects(
      buyOnce({ post: postOrder('g-1', 1, base), wait: async () => {} }),
      (error: unknown) => error instanceof ApiProblem && error.code === 'SOLD_OUT',
    )
    assert.equal(seenKeys.length, 1)
  })

  it('a new click is a new order: each click has a key of its own', async () => {
    answers.push(placed, placed)
    seenKeys.length = 0
    await buyOnce({ post: postOrder('g-1', 1, base) })
    await buyOnce({ post: postOrder('g-1', 1, base) })
    assert.notEqual(seenKeys[0], seenKeys[1])
  })
})
