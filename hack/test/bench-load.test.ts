// The benchmarks' load generator against a small local HTTP server: what it sends, what it keeps,
// and where open-loop latency starts counting.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { listenOnFreePort } from '@timedeal/platform/testing'
import { type RequestPlan, runLoad } from '../bench/load.ts'

interface Seen {
  readonly headers: IncomingMessage['headers']
  readonly body: { id: string; buyer: string; index: string }
}

describe('the benchmarks load generator', () => {
  const seen: Seen[] = []
  let server: Server
  let origin: string
  /** How long the server takes to answer each request. */
  let answerAfterMs = 0

  before(async () => {
    server = createServer((request, response) => {
      let text = ''
      request.on('data', (chunk: Buffer) => {
        text += chunk.toString()
      })
      request.on('end', () => {
        const body = JSON.parse(text) as Seen['body']
        seen.push({ headers: request.headers, body })
        setTimeout(() => {
          // Odd indices are refused with a problem, as a sold-out reservation would be.
          const refused = Number(body.index) % 2 === 1
          response.writeHead(refused ? 409 : 201, { 'content-type': 'application/json' })
          response.end(JSON.stringify(refused ? { code: 'SOLD_OUT' } : { id: `order-${body.index}` }))
        }, answerAfterMs)
      })
    })
    origin = `http://127.0.0.1:${await listenOnFreePort(server)}`
  })

  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const plan = (): RequestPlan => ({
    origin,
    method: 'POST',
    path: '/orders',
    headers: { authorization: 'Bearer {{buyer}}', 'idempotency-key': '{{uuid}}' },
    body: '{"id":"{{uuid}}","buyer":"{{buyer}}","index":"{{index}}"}',
    rotate: { buyer: ['ann', 'bob', 'cy'] },
    keep: 'id',
  })

  test('fills every request with a fresh UUID and round-robin values, and keeps the answer or the refusal code', async () => {
    seen.length = 0
    answerAfterMs = 0
    const results = await runLoad({
      plan: plan(),
      mode: { kind: 'closed', clients: 4, total: 12, seconds: 30 },
      threads: 2,
    })

    assert.equal(results.status.length, 12)
    assert.equal(seen.length, 12)
    const keys = new Set(seen.map((request) => request.headers['idempotency-key']))
    const ids = new Set(seen.map((request) => request.body.id))
    assert.equal(keys.size, 12, 'each request has its own Idempotency-Key')
    assert.equal(ids.size, 12, 'each body has its own UUID')
    assert.deepEqual(
      seen.map((request) => Number(request.body.index)).sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, index) => index),
      'every index is sent once over both threads',
    )
    for (const request of seen) {
      const buyer = ['ann', 'bob', 'cy'][Number(request.body.index) % 3]
      assert.equal(request.body.buyer, buyer)
      assert.equal(request.headers.authorization, `Bearer ${buyer}`)
    }
    const kept = results.status.map((status, index) => `${status} ${results.kept[index]}`).sort()
    assert.deepEqual(kept.filter((entry) => entry.startsWith('409')).length, 6)
    assert.ok(
      kept.every((entry) => /^(201 order-\d+|409 SOLD_OUT)$/.test(entry)),
      kept.join(', '),
    )
    assert.ok(results.cpuMicros > 0, 'the threads report their CPU time')
  })

  test('counts open-loop latency from the intended send time, so requests queued behind a slow answer show the wait', async () => {
    seen.length = 0
    answerAfterMs = 100
    // One connection: the 20th request, due 0.95 s in, cannot be answered before 20 answers of 100 ms each.
    const results = await runLoad({
      plan: plan(),
      mode: { kind: 'open', rate: 20, seconds: 1 },
      threads: 1,
      connections: 1,
    })

    assert.equal(results.status.length, 20)
    const firstDue = Math.min(...results.intendedAt)
    const dues = [...results.intendedAt].sort((a, b) => a - b).map((due) => Math.round(due - firstDue))
    assert.ok(
      dues.every((due, index) => Math.abs(due - index * 50) <= 2),
      `requests are due every 50 ms: ${dues.join(', ')}`,
    )
    const last = results.latencyMs[results.intendedAt.indexOf(Math.max(...results.intendedAt))] ?? 0
    assert.ok(last >= 1_000, `the last request waited behind 19 answers, measured ${last} ms`)
  })
})
