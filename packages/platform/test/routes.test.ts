import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createRoute } from '@hono/zod-openapi'
import { z } from 'zod'
import { createServiceApps } from '../src/http.ts'
import { createLogger } from '../src/logger.ts'
import { createMetricsRegistry } from '../src/metrics.ts'
import { conflict, Problem } from '../src/problem.ts'
import {
  assertEveryRouteDocumented,
  createRoutes,
  JSON_BODY_PROBLEMS,
  jsonBody,
  jsonResponse,
  PARAMETER_PROBLEMS,
  problemResponses,
  routeDocumentationGaps,
} from '../src/routes.ts'
import { testLogger } from './support.ts'

const item = z.object({ name: z.string().min(1), quantity: z.number().int().positive() })
const itemView = item.extend({ id: z.string() })

const addItem = createRoute({
  method: 'post',
  path: '/',
  summary: 'Add an item',
  request: { body: jsonBody(item) },
  responses: {
    201: jsonResponse(itemView, 'the item, added'),
    ...problemResponses(JSON_BODY_PROBLEMS, { 409: ['ALREADY_TAKEN'] }),
  },
})

const showItem = createRoute({
  method: 'get',
  path: '/{id}',
  summary: 'One item',
  request: { params: z.object({ id: z.string().regex(/^\d+$/) }) },
  responses: {
    200: jsonResponse(itemView, 'the item'),
    ...problemResponses(PARAMETER_PROBLEMS, { 404: ['ITEM_NOT_FOUND'] }),
  },
})

function itemRoutes() {
  return createRoutes()
    .openapi(addItem, (c) => {
      const input = c.req.valid('json')
      if (input.name === 'taken') throw conflict('ALREADY_TAKEN', 'that name is taken')
      c.var.logger.info({ name: input.name }, 'item added')
      return c.json({ ...input, id: '1' }, 201)
    })
    .openapi(showItem, (c) => {
      if (c.req.valid('param').id !== '1')
        throw new Problem({ status: 404, code: 'ITEM_NOT_FOUND', detail: 'no such item' })
      return c.json({ id: '1', name: 'a', quantity: 1 }, 200)
    })
}

function buildApps(options: { logLines?: string[]; internal?: ReturnType<typeof createRoutes> } = {}) {
  const logger = options.logLines
    ? createLogger('example', 'info', { write: (line: string) => options.logLines?.push(line) })
    : testLogger
  const routes = createRoutes()
  routes.route('/api/items', itemRoutes())
  return createServiceApps(
    { service: 'example', version: '1.2.3', logger, metrics: createMetricsRegistry('example') },
    { publicRoutes: routes, ...(options.internal ? { internalRoutes: options.internal } : {}) },
  )
}

const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  new Request('http://test/api/items', { method: 'POST', body, headers })

const problemOf = async (response: Response) => {
  assert.equal(response.headers.get('content-type'), 'application/problem+json')
  return (await response.json()) as { code: string; detail: string; errors?: { field: string }[]; instance: string }
}

describe('routes declared with createRoute', () => {
  test('input that fails the route schema is one 400 VALIDATION_FAILED naming every field', async () => {
    const { publicApp } = buildApps()
    assert.equal((await publicApp.request(post('{"name":"a","quantity":2}'))).status, 201)
    const response = await publicApp.request(post('{"name":"","quantity":0}'))
    assert.equal(response.status, 400)
    const problem = await problemOf(response)
    assert.equal(problem.code, 'VALIDATION_FAILED')
    assert.deepEqual(problem.errors?.map((error) => error.field).sort(), ['name', 'quantity'])
    assert.match(problem.detail, /^invalid request body: /)
    assert.equal(problem.instance, '/api/items')
    const badId = await publicApp.request('/api/items/abc')
    assert.equal(badId.status, 400)
    assert.equal((await problemOf(badId)).code, 'VALIDATION_FAILED')
  })

  test('a body that is not JSON is 400 MALFORMED_JSON, one not declared JSON 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const { publicApp } = buildApps()
    const malformed = await publicApp.request(post('{"name":'))
    assert.equal(malformed.status, 400)
    assert.equal((await problemOf(malformed)).code, 'MALFORMED_JSON')
    const form = await publicApp.request(post('name=a', { 'content-type': 'application/x-www-form-urlencoded' }))
    assert.equal(form.status, 415)
    assert.equal((await problemOf(form)).code, 'UNSUPPORTED_MEDIA_TYPE')
  })

  test('problems thrown by handlers keep their status and code', async () => {
    const { publicApp } = buildApps()
    const taken = await publicApp.request(post('{"name":"taken","quantity":1}'))
    assert.equal(taken.status, 409)
    assert.equal((await problemOf(taken)).code, 'ALREADY_TAKEN')
    const missing = await publicApp.request('/api/items/2')
    assert.equal(missing.status, 404)
    assert.equal((await problemOf(missing)).code, 'ITEM_NOT_FOUND')
  })

  test('routes declared with unexpectedFailure answer that problem for failures that are not problems', async () => {
    const flaky = createRoute({
      method: 'get',
      path: '/stock',
      responses: {
        200: jsonResponse(z.object({ stock: z.number() }), 'the stock'),
        ...problemResponses({ 503: ['STOCK_UNAVAILABLE'] }),
      },
    })
    const internal = createRoutes({
      unexpectedFailure: () => new Problem({ status: 503, code: 'STOCK_UNAVAILABLE', detail: 'try again shortly' }),
    }).openapi(flaky, () => {
      throw new Error('connection refused')
    })
    const { publicApp, internalApp } = buildApps({ internal })
    assert.ok(internalApp)
    const response = await internalApp.request('/internal/stock')
    assert.equal(response.status, 503)
    assert.equal((await problemOf(response)).code, 'STOCK_UNAVAILABLE')
    // Elsewhere an unknown failure stays a 500 that reveals nothing.
    const app = createRoutes().get('/boom', () => {
      throw new Error('secret internals')
    })
    publicApp.route('/api', app)
    const boom = await publicApp.request('/api/boom')
    assert.equal(boom.status, 500)
    const problem = await problemOf(boom)
    assert.equal(problem.code, 'INTERNAL')
    assert.doesNotMatch(problem.detail, /secret/)
  })
})

describe('/openapi.json', () => {
  test('the public listener serves an OpenAPI 3.1 document of the service routes, with their problem codes', async () => {
    const { publicApp } = buildApps()
    const response = await publicApp.request('/openapi.json')
    assert.equal(response.status, 200)
    const document = (await response.json()) as {
      openapi: string
      info: { title: string; version: string }
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>
    }
    assert.equal(document.openapi, '3.1.0')
    assert.deepEqual(document.info, { title: 'example', version: '1.2.3' })
    assert.ok(document.paths['/api/items']?.post?.requestBody)
    assert.deepEqual(Object.keys(document.paths['/api/items']?.post?.responses ?? {}).sort(), [
      '201',
      '400',
      '409',
      '413',
      '415',
    ])
    assert.match(JSON.stringify(document.paths['/api/items/{id}']?.get?.responses['404']), /ITEM_NOT_FOUND/)
    assert.equal(document.paths['/healthz'], undefined)
  })

  test('internal routes are documented on the internal listener only', async () => {
    const internal = createRoutes().openapi(
      createRoute({
        method: 'get',
        path: '/stock',
        responses: { 200: jsonResponse(z.object({ stock: z.number() }), 'the stock') },
      }),
      (c) => c.json({ stock: 3 }, 200),
    )
    const { publicApp, internalApp } = buildApps({ internal })
    assert.ok(internalApp)
    const document = (await (await internalApp.request('/internal/openapi.json')).json()) as { paths: object }
    assert.deepEqual(Object.keys(document.paths), ['/internal/stock'])
    const publicDocument = (await (await publicApp.request('/openapi.json')).json()) as { paths: object }
    assert.ok(!Object.keys(publicDocument.paths).some((path) => path.startsWith('/internal')))
  })
})

describe('assertEveryRouteDocumented', () => {
  test('passes when every route is declared with its request, responses and problem codes', async () => {
    const { publicApp } = buildApps()
    assert.deepEqual(await routeDocumentationGaps(publicApp), [])
    await assertEveryRouteDocumented(publicApp)
  })

  test('names a route added without createRoute', async () => {
    const { publicApp } = buildApps()
    publicApp.route(
      '/api/legacy',
      createRoutes().post('/', (c) => c.json({}, 201)),
    )
    const gaps = await routeDocumentationGaps(publicApp)
    assert.deepEqual(gaps, ['POST /api/legacy is not in /openapi.json'])
    await assert.rejects(assertEveryRouteDocumented(publicApp), /POST \/api\/legacy is not in \/openapi.json/)
  })

  test('names a route whose input or problems are not documented', async () => {
    const routes = createRoutes()
      .openapi(
        createRoute({
          method: 'post',
          path: '/',
          request: { body: jsonBody(item) },
          responses: { 201: jsonResponse(itemView, 'added'), 409: { description: 'taken' } },
        }),
        (c) => c.json({ ...c.req.valid('json'), id: '1' }, 201),
      )
      .openapi(
        createRoute({
          method: 'delete',
          path: '/{id}',
          request: { params: z.object({ id: z.string() }) },
          responses: {},
        }),
        // A route that documents no response at all types its handler as never answering.
        (() => new Response(null, { status: 204 })) as never,
      )
    const { publicApp } = buildApps()
    publicApp.route('/api/undocumented', routes)
    const gaps = await routeDocumentationGaps(publicApp)
    assert.deepEqual(
      gaps.sort(),
      [
        'DELETE /api/undocumented/:id does not document 400 VALIDATION_FAILED',
        'DELETE /api/undocumented/:id documents no success response',
        'POST /api/undocumented does not document 400 MALFORMED_JSON',
        'POST /api/undocumented does not document 400 VALIDATION_FAILED',
        'POST /api/undocumented does not document 415 UNSUPPORTED_MEDIA_TYPE',
        'POST /api/undocumented documents 409 without its problem codes',
      ].sort(),
    )
  })
})

describe('request ids', () => {
  test('a malformed incoming X-Request-Id is replaced, never echoed', async () => {
    const { publicApp } = buildApps()
    for (const smuggled of ['id with spaces', 'a\u0007b', `x${'y'.repeat(300)}`, '<script>']) {
      const response = await publicApp.request('/healthz', { headers: { 'x-request-id': smuggled } })
      const id = response.headers.get('x-request-id') ?? ''
      assert.notEqual(id, smuggled)
      assert.match(id, /^[0-9a-f-]{36}$/)
    }
  })

  test('a well-formed id is echoed, on problem answers too, and every log line of the request carries it', async () => {
    const logLines: string[] = []
    const { publicApp } = buildApps({ logLines })
    const ok = await publicApp.request(
      post('{"name":"logged","quantity":1}', { 'content-type': 'application/json', 'x-request-id': 'req-42' }),
    )
    assert.equal(ok.status, 201)
    assert.equal(ok.headers.get('x-request-id'), 'req-42')
    const added = logLines.map((line) => JSON.parse(line)).find((entry) => entry.msg === 'item added')
    assert.equal(added?.requestId, 'req-42')
    const refused = await publicApp.request(
      post('{"name":""}', { 'content-type': 'application/json', 'x-request-id': 'req-43' }),
    )
    assert.equal(refused.status, 400)
    assert.equal(refused.headers.get('x-request-id'), 'req-43')
  })
})
