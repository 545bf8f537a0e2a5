/**
 * The gateway in-process behind a real listener (so client addresses, streaming and WebSocket
 * upgrades are real), in front of the real services run as processes the way `make dev` runs
 * them, each with a database, consumer group and Redis keys of its own.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { TOPIC_CHAT_MESSAGES, TOPIC_ORDERS, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { createMetricsRegistry, createMongo, createServiceApps, loadSettings } from '@timedeal/platform'
import {
  connectTestRedis,
  deleteRedisKeys,
  listenOnFreePort,
  prepareServiceUnderTest,
  type ServiceProcess,
  type ServiceUnderTest,
  spawnReadyService,
  type TestIssuer,
  testLogger,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import type { Hono } from 'hono'
import { type Gateway, startGateway } from '../src/service.ts'
import { settingsSchema } from '../src/settings.ts'

const entry = (service: string) => fileURLToPath(new URL(`../../${service}/src/main.ts`, import.meta.url))
const INTERNAL_SECRET = 'gateway-test-internal-secret-0123'

/** Where the gateway finds each service, as its settings name them. */
export type UpstreamUrls = Record<'USER_URL' | 'GOODS_URL' | 'ORDER_URL' | 'PAYMENT_URL' | 'CHAT_URL', string>

export interface TestPlatform {
  readonly urls: UpstreamUrls
  stop(): Promise<void>
}

/**
 * user-, goods-, order-, payment- and chat-service as processes. Event consumers that the
 * gateway's tests never exercise are off, so the services start and stop quickly.
 */
export async function startPlatform(issuer: TestIssuer): Promise<TestPlatform> {
  const owned: ServiceUnderTest[] = []
  const processes: ServiceProcess[] = []
  const own = async (options: Parameters<typeof prepareServiceUnderTest>[0]) => {
    const prepared = await prepareServiceUnderTest({ issuer, ...options })
    owned.push(prepared)
    return prepared
  }
  const mongoDatabase = uniqueName('timedeal_test_gateway_chat')
  const stop = async () => {
    await Promise.all(processes.map((child) => child.stop('SIGTERM')))
    await Promise.all(owned.map((prepared) => prepared.release()))
    const mongo = await createMongo({ url: testSettings.MONGO_URL, database: mongoDatabase, logger: testLogger })
    await mongo.dropDatabase()
    await mongo.close()
  }
  const spawn = async (service: string, env: Record<string, string>) => {
    const child = await spawnReadyService(entry(service), {
      INTERNAL_API_SECRET: INTERNAL_SECRET,
      LOG_LEVEL: 'warn',
      ...env,
    })
    processes.push(child)
    return child
  }
  try {
    const [user, goods, order, payment, chat] = await Promise.all([
      own({ name: 'gw_user' }),
      own({ name: 'gw_goods', redisPrefixSetting: 'STOCK_KEY_PREFIX' }),
      own({ name: 'gw_order', consumes: { groupSetting: 'PAYMENT_EVENTS_GROUP', topics: [TOPIC_PAYMENTS] } }),
      own({ name: 'gw_payment', consumes: { groupSetting: 'ORDER_EVENTS_GROUP', topics: [TOPIC_ORDERS] } }),
      own({
        name: 'gw_chat',
        consumes: { groupSetting: 'CHAT_MESSAGES_GROUP', topics: [TOPIC_CHAT_MESSAGES] },
        redisPrefixSetting: 'CHAT_REDIS_PREFIX',
      }),
    ])
    const goodsProcess = await spawn('goods', { ...goods.env, ORDER_EVENTS_ENABLED: 'false' })
    const [userProcess, orderProcess, paymentProcess, chatProcess] = await Promise.all([
      spawn('user', {
        ...user.env,
        MAILER: 'sink',
        TRUST_PROXY: 'true',
        RATE_LIMIT_KEY_PREFIX: `${user.redisPrefix}:limit:`,
      }),
      spawn('order', {
        ...order.env,
        GOODS_URL: goodsProcess.url,
        GOODS_INTERNAL_URL: goodsProcess.internalUrl,
        PAYMENT_EVENTS_ENABLED: 'false',
      }),
      spawn('payment', { ...payment.env, ORDER_EVENTS_ENABLED: 'false' }),
      spawn('chat', { ...chat.env, MONGO_DATABASE: mongoDatabase, GOODS_URL: goodsProcess.url }),
    ])
    return {
      urls: {
        USER_URL: userProcess.url,
        GOODS_URL: goodsProcess.url,
        ORDER_URL: orderProcess.url,
        PAYMENT_URL: paymentProcess.url,
        CHAT_URL: chatProcess.url,
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

export interface TestGateway {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly gateway: Gateway
  /** The public listener's app, as the platform builds it around the gateway's routes. */
  readonly app: Hono
  stop(): Promise<void>
}

/**
 * The gateway built as `main.ts` builds it, on a free port, trusting `issuer`'s tokens, with
 * rate-limit counters of its own; `overrides` are settings.
 */
export async function startTestGateway(
  urls: UpstreamUrls,
  issuer: TestIssuer,
  overrides: Record<string, string> = {},
): Promise<TestGateway> {
  const keyPrefix = `${uniqueName('test-gateway')}:`
  const settings = loadSettings(settingsSchema, {
    ...process.env,
    ...urls,
    JWT_JWKS_URL: issuer.jwksUrl,
    RATE_LIMIT_KEY_PREFIX: keyPrefix,
    ...overrides,
  })
  const redis = connectTestRedis('gateway-test')
  const metrics = createMetricsRegistry('gateway')
  const gateway = startGateway({ settings, redis, logger: testLogger, metrics, verifier: issuer.verifier() })
  const { publicApp } = createServiceApps(
    { service: 'gateway', logger: testLogger, metrics, bodyLimitBytes: settings.HTTP_BODY_LIMIT_BYTES },
    { publicRoutes: gateway.publicRoutes, websocket: gateway.websocket },
  )
  const server = serve({
    fetch: publicApp.fetch,
    hostname: '127.0.0.1',
    port: 0,
    websocket: { server: gateway.websocket },
  }) as Server
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    gateway,
    app: publicApp as unknown as Hono,
    async stop() {
      await gateway.stop()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await deleteRedisKeys(redis, keyPrefix.slice(0, -1))
      await redis.quit()
    },
  }
}

export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly body: string
}

export interface RecordingServer {
  readonly url: string
  readonly seen: SeenRequest[]
  close(): Promise<void>
}

/**
 * A plain HTTP server standing where a service would, to see what the gateway sends on: it
 * records each request and answers 200 with a JSON echo; `/api/payments/hang` never answers.
 */
export async function startRecordingServer(): Promise<RecordingServer> {
  const seen: SeenRequest[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body })
      if (request.url?.startsWith('/api/payments/hang')) return
      response.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] })
      response.end(JSON.stringify({ echoed: body.length }))
    })
  })
  const port = await listenOnFreePort(server)
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A port nothing listens on: a service that is down. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer()
  const port = await listenOnFreePort(server)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}
