import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createRoute } from '@hono/zod-openapi'
import { Hono } from 'hono'
import { z } from 'zod'
import { type AppEnv, createServiceApp, createServiceApps } from '../src/http.ts'
import { createMetricsRegistry } from '../src/metrics.ts'
import { conflict } from '../src/problem.ts'
import { createRoutes, JSON_BODY_PROBLEMS, jsonBody, jsonResponse, problemResponses } from '../src/routes.ts'
import { testLogger } from './support.ts'

function buildApp(options: { dependencyUp?: boolean; draining?: boolean; bodyLimitBytes?: number } = {}) {
  const app = createServiceApp({
    ...(options.bodyLimitBytes ? { bodyLimitBytes: options.bodyLimitBytes } : {}),
    service: 'example',
    logger: testLogger,
    metrics: createMetricsRegistry('example'),
    readiness: [
      { name: 'always', check: async () => undefined },
      {
        name: 'flaky',
        check: async () => {
          if (options.dependencyUp === false) throw new Error('connection refused')
        },
      },
    ],
    draining: () => options.draining ?? false,
  })
  const item = z.object({ name: z.string().min(1), quantity: z.number().int().positive() })
  const addItem = createRoute({
    method: 'post',
    path: '/',
    request: { body: jsonBody(item) },
    responses: { 201: jsonResponse(item, 'the item'), ...problemResponses(JSON_BODY_PROBLEMS) },
  })
  const items = createRoutes()
    .openapi(addItem, (c) => c.json(c.req.valid('json'), 201))
    .post('/taken', () => {
      throw conflict('ALREADY_TAKEN', 'that name is taken')
    })
    .get('/boom', () => {
      throw new Error('unexpected')
    })
  app.route('/api/items', items)
  return app
}

const post = (body: string, type = 'application/json') =>
  new Request('http://test/api/items', { method: 'POST', body, headers: { 'content-type': type } })

describe('the service app every service starts from', () => {
  test('/healthz answers while the process is alive', async () => {
    const response = await buildApp({ dependencyUp: false }).request('/healthz')
    assert.equal(response.status, 200)
    assert.deepEqual(await response.json(), { status: 'ok', service: 'example' })
  })

  test('/readyz reports each dependency and fails when one is down', async () => {
    const up = await buildApp().request('/readyz')
    assert.equal(up.status, 200)
    const down = await buildApp({ dependencyUp: false }).request('/readyz')
    assert.equal(down.status, 503)
    const body = (await down.json()) as { checks: Record<string, { status: string; error?: string }> }
    assert.equal(body.checks.always?.status, 'up')
    assert.deepEqual(body.checks.flaky, { status: 'down', error: 'connection refused' })
  })

  test('/readyz fails as soon as shutdown begins', async () => {
    const response = await buildApp({ draining: true }).request('/readyz')
    assert.equal(response.status, 503)
  })

  test('/metrics exposes request durations by route template in Prometheus format', async () => {
    const app = buildApp()
    await app.request(post('{"name":"a","quantity":1}'))
    const response = await app.request('/metrics')
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/)
    const text = await response.text()
    assert.match(
      text,
      /http_server_request_duration_seconds_count\{service="example",method="POST",route="\/api\/items",status="201"\} 1/,
    )
    assert.match(text, /process_cpu_user_seconds_total/)
  })

  test('valid input passes, invalid input is a 400 problem naming every bad field', async () => {
    const app = buildApp()
    assert.equal((await app.request(post('{"name":"a","quantity":2}'))).status, 201)
    const response = await app.request(post('{"name":"","quantity":0}'))
    assert.equal(response.status, 400)
    assert.equal(response.headers.get('content-type'), 'application/problem+json')
    const problem = (await response.json()) as {
      code: string
      errors: { field: string }[]
      type: string
      instance: string
    }
    assert.equal(problem.code, 'VALIDATION_FAILED')
    assert.deepEqual(problem.errors.map((error) => error.field).sort(), ['name', 'quantity'])
    assert.equal(problem.type, 'https://timedeal.io/problems/validation-failed')
    assert.equal(problem.instance, '/api/items')
  })

  test('a body that is not JSON is a 400, and a wrong content type a 415', async () => {
    const app = buildApp()
    const malformed = await app.request(post('{"name":'))
    assert.equal(malformed.status, 400)
    assert.equal(((await malformed.json()) as { code: string }).code, 'MALFORMED_JSON')
    const wrongType = await app.request(post('name=a', 'application/x-www-form-urlencoded'))
    assert.equal(wrongType.status, 415)
  })

  test('domain problems keep their status and code; unknown errors are a 500 without internals', async () => {
    const app = buildApp()
    const taken = await app.request(new Request('http://test/api/items/taken', { method: 'POST' }))
    assert.equal(taken.status, 409)
    assert.equal(((await taken.json()) as { code: string }).code, 'ALREADY_TAKEN')
    const boom = await app.request('/api/items/boom')
    assert.equal(boom.status, 500)
    const body = (await boom.json()) as { code: string; detail: string }
    assert.equal(body.code, 'INTERNAL')
    assert.doesNotMatch(body.detail, /unexpected/)
  })

  test('unknown routes are a 404 problem', async () => {
    const response = await buildApp().request('/nowhere')
    assert.equal(response.status, 404)
    assert.equal(response.headers.get('content-type'), 'application/problem+json')
  })

  test('a request id and a trace context are kept from the caller or made up', async () => {
    const app = buildApp()
    const given = await app.request('/healthz', { headers: { 'x-request-id': 'req-1' } })
    assert.equal(given.headers.get('x-request-id'), 'req-1')
    const made = await app.request('/healthz')
    assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
  })

  test('a body over the limit is a 413 problem, whether its length is declared or streamed', async () => {
    const app = buildApp({ bodyLimitBytes: 1024 })
    const big = JSON.stringify({ name: 'x'.repeat(2048), quantity: 1 })
    const declared = await app.request(post(big))
    assert.equal(declared.status, 413)
    assert.equal(declared.headers.get('content-type'), 'application/problem+json')
    assert.equal(((await declared.json()) as { code: string }).code, 'PAYLOAD_TOO_LARGE')
    const bytes = new TextEncoder().encode(big)
    const streamed = await app.request(
      new Request('http://test/api/items', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            for (let at = 0; at < bytes.length; at += 256) controller.enqueue(bytes.subarray(at, at + 256))
            controller.close()
          },
        }),
        duplex: 'half',
      } as RequestInit),
    )
    assert.equal(streamed.status, 413)
    assert.equal(((await streamed.json()) as { code: string }).code, 'PAYLOAD_TOO_LARGE')
    assert.equal((await app.request(post('{"name":"small","quantity":1}'))).status, 201)
  })

  test('a body refused as too large is answered with the request id and counted like any other answer', async () => {
    const app = buildApp({ bodyLimitBytes: 1024 })
    const refused = await app.request(post(JSON.stringify({ name: 'x'.repeat(2048), quantity: 1 })))
    assert.equal(refused.status, 413)
    assert.match(refused.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
    const metrics = await (await app.request('/metrics')).text()
    assert.match(metrics, /http_server_request_duration_seconds_count\{[^}]*status="413"[^}]*\} 1/)
  })

  test('bodies are capped at 64 KiB by default', async () => {
    const app = buildApp()
    const response = await app.request(post(JSON.stringify({ name: 'x'.repeat(65 * 1024), quantity: 1 })))
    assert.equal(response.status, 413)
  })
})

describe('public and internal routes', () => {
  const options = { service: 'example', logger: testLogger, metrics: createMetricsRegistry('example') }
  const routes = {
    publicRoutes: new Hono<AppEnv>().get('/api/hello', (c) => c.json({ hello: 'public' })),
    internalRoutes: new Hono<AppEnv>().get('/stock', (c) => c.json({ stock: 3 })),
  }

  test('the public app answers /internal/* with a 404 problem, even when a route was mounted there', async () => {
    const app = createServiceApp(options)
    app.route('/internal', routes.internalRoutes)
    for (const path of ['/internal/stock', '/internal', '/internal/anything/else']) {
      const response = await app.request(path)
      assert.equal(response.status, 404, path)
      assert.equal(response.headers.get('content-type'), 'application/problem+json')
      assert.equal(((await response.json()) as { code: string }).code, 'NOT_FOUND')
    }
  })

  test('internal routes are mounted under /internal on an app of their own, with nothing else', async () => {
    const { publicApp, internalApp } = createServiceApps(options, routes)
    assert.ok(internalApp)
    assert.equal((await publicApp.request('/api/hello')).status, 200)
    assert.equal((await publicApp.request('/internal/stock')).status, 404)
    assert.deepEqual(await (await internalApp.request('/internal/stock')).json(), { stock: 3 })
    for (const path of ['/api/hello', '/healthz', '/readyz', '/metrics', '/stock']) {
      const response = await internalApp.request(path)
      assert.equal(response.status, 404, path)
      assert.equal(response.headers.get('content-type'), 'application/problem+json')
    }
  })

  test('a service without internal routes has no internal app', () => {
    assert.equal(createServiceApps(options, { publicRoutes: routes.publicRoutes }).internalApp, undefined)
  })
})

describe('over a real listener', () => {
  async function listening(bodyLimitBytes = 1024) {
    const { serve } = await import('@hono/node-server')
    const app = buildApp({ bodyLimitBytes })
    const server = await new Promise<import('node:http').Server>((resolve) => {
      const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () =>
        resolve(started as import('node:http').Server),
      ) as import('node:http').Server
    })
    const { port } = server.address() as import('node:net').AddressInfo
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    }
  }

  test('every answer carries the request id, whoever built it: a handler, a problem, an unknown route, a refused body', async () => {
    const { url, close } = await listening()
    try {
      const json = { 'content-type': 'application/json' }
      const answers = {
        created: await fetch(`${url}/api/items`, { method: 'POST', headers: json, body: '{"name":"a","quantity":1}' }),
        problem: await fetch(`${url}/api/items/taken`, { method: 'POST' }),
        invalid: await fetch(`${url}/api/items`, { method: 'POST', headers: json, body: '{"name":""}' }),
        unknown: await fetch(`${url}/nowhere`),
        failed: await fetch(`${url}/api/items/boom`),
        tooLarge: await fetch(`${url}/api/items`, { method: 'POST', headers: json, body: 'x'.repeat(2048) }),
      }
      const statuses = Object.fromEntries(Object.entries(answers).map(([name, answer]) => [name, answer.status]))
      assert.deepEqual(statuses, { created: 201, problem: 409, invalid: 400, unknown: 404, failed: 500, tooLarge: 413 })
      for (const [name, answer] of Object.entries(answers)) {
        assert.match(answer.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, `${name} has no request id`)
        assert.equal(answer.headers.get('x-request-id')?.includes(','), false, `${name} has the id twice`)
      }
      const given = await fetch(`${url}/healthz`, { headers: { 'x-request-id': 'req-7' } })
      assert.equal(given.headers.get('x-request-id'), 'req-7')
    } finally {
      await close()
    }
  })

  test('a chunked body over the limit is a 413 problem, and one within it reaches the route', async () => {
    const { request } = await import('node:http')
    const { url, close } = await listening()
    const send = (chunks: string[]) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const outgoing = request(
          `${url}/api/items`,
          { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
          (answer) => {
            let body = ''
            answer.on('data', (chunk: Buffer) => {
              body += chunk
            })
            answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body }))
          },
        )
        outgoing.on('error', reject)
        for (const chunk of chunks) outgoing.write(chunk)
        outgoing.end()
      })
    try {
      const big = await send(['{"name":"', 'x'.repeat(600), 'x'.repeat(600), '","quantity":1}'])
      assert.equal(big.status, 413)
      assert.equal((JSON.parse(big.body) as { code: string }).code, 'PAYLOAD_TOO_LARGE')
      const small = await send(['{"name":"sm', 'all","quantity":1}'])
      assert.equal(small.status, 201)
      assert.deepEqual(JSON.parse(small.body), { name: 'small', quantity: 1 })
    } finally {
      await close()
    }
  })
})
