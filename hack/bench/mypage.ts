/**
 * `make bench-mypage`: how long `GET /api/users/me/mypage` takes when every service behind it
 * is equally slow. The real user-, order-, goods- and chat-service run as processes; each of
 * the three services the page reads sits behind a delay proxy adding the same D ms to every
 * request. In one run:
 *
 * - each part alone (its service's route called directly through its proxy): the slowest one is
 *   the floor the page cannot beat;
 * - the page with its parts fetched in parallel (how user-service serves it);
 * - the page with the same code fetching the parts one after another (a second user-service
 *   process with MYPAGE_SEQUENTIAL=true): the ratio approaches the number of parts;
 * - the page while order-service refuses connections, and while it accepts them but never
 *   answers: p99 must stay near the part timeout, not pile up.
 *
 * Loopback only, bounded in count, in databases, Redis keys and topics of its own, all removed
 * afterwards. Writes a report and an SVG chart under bench-results/ and ends with one JSON line.
 */
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { allTopics } from '@timedeal/contracts'
import {
  createLogger,
  createMongo,
  createRedis,
  eventBusFromSettings,
  kafkaSettings,
  loadSettingsOrExit,
  mongoSettings,
  positiveInt,
  redisSettings,
} from '@timedeal/platform'
import {
  createTestDatabase,
  type DelayProxy,
  deleteRedisKeys,
  eventually,
  type ServiceProcess,
  spawnService,
  startDelayProxy,
  type TestDatabase,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { z } from 'zod'
import { escapeXml, percentile, reportTail, round, saveReport } from './figures.ts'
import { applyCatalogTopics } from './topics.ts'

const settings = loadSettingsOrExit(
  z.object({
    ...kafkaSettings(),
    ...redisSettings(),
    MONGO_URL: mongoSettings('unused').MONGO_URL,
    /** The delay every proxied service gets, in ms. */
    BENCH_MYPAGE_DELAY_MS: positiveInt(100),
    /** Pages (or part calls) measured per phase. */
    BENCH_MYPAGE_REQUESTS: positiveInt(200),
    /**
     * Callers asking at the same time while latency is compared. One by default: the services
     * share the machine's cores, and more callers measure its saturation, not the page's shape.
     */
    BENCH_MYPAGE_CONCURRENCY: positiveInt(1),
    /** Callers asking at the same time while order-service is down: enough to pile up if calls waited. */
    BENCH_MYPAGE_DOWN_CONCURRENCY: positiveInt(4),
    /** user-service's budget for one part (its MYPAGE_PART_TIMEOUT_MS). */
    MYPAGE_PART_TIMEOUT_MS: positiveInt(800),
  }),
)
const logger = createLogger('bench-mypage', 'warn')
const SECRET = 'bench-mypage-internal-secret-0123456789'
const entry = (service: string) => fileURLToPath(new URL(`../../services/${service}/src/main.ts`, import.meta.url))
const say = (line: string) => process.stderr.write(`[bench-mypage] ${line}\n`)

interface Phase {
  readonly label: string
  readonly requests: number
  /** Pages with at least one part missing (for a part alone: never). */
  readonly degraded: number
  /** Answers other than 200, or no answer. */
  readonly errors: number
  readonly p50Ms: number
  readonly p99Ms: number
}

interface Run {
  readonly databases: TestDatabase[]
  readonly processes: ServiceProcess[]
  readonly proxies: DelayProxy[]
  readonly redisPrefixes: string[]
  readonly mongoDatabase: string
}

/** `count` requests from `concurrency` callers at once; the latency of each, and how it ended. */
async function drive(
  label: string,
  count: number,
  send: () => Promise<{ ok: boolean; degraded: boolean }>,
  concurrency = settings.BENCH_MYPAGE_CONCURRENCY,
) {
  const latencies: number[] = []
  let degraded = 0
  let errors = 0
  let next = 0
  const caller = async () => {
    while (next < count) {
      next += 1
      const started = performance.now()
      const outcome = await send().catch(() => ({ ok: false, degraded: false }))
      latencies.push(performance.now() - started)
      if (!outcome.ok) errors += 1
      if (outcome.degraded) degraded += 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, caller))
  const phase: Phase = {
    label,
    requests: count,
    degraded,
    errors,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  }
  say(`${label}: p50 ${round(phase.p50Ms)} ms, p99 ${round(phase.p99Ms)} ms, degraded ${degraded}, errors ${errors}`)
  return phase
}

const getJson = async (url: string, token: string) => {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** One page request, as the driver counts it. */
const pageOf = (userUrl: string, token: string) => async () => {
  const { status, body } = await getJson(`${userUrl}/api/users/me/mypage`, token)
  return { ok: status === 200, degraded: Array.isArray(body.degraded) && body.degraded.length > 0 }
}

async function startServices(run: Run) {
  const delay = settings.BENCH_MYPAGE_DELAY_MS
  const [orders, goods, chat] = await Promise.all([
    startDelayProxy({ delayMs: delay }),
    startDelayProxy({ delayMs: delay }),
    startDelayProxy({ delayMs: delay }),
  ])
  run.proxies.push(orders, goods, chat)
  const [userDb, goodsDb, orderDb, chatDb] = await Promise.all([
    createTestDatabase('bench_mypage_user'),
    createTestDatabase('bench_mypage_goods'),
    createTestDatabase('bench_mypage_order'),
    createTestDatabase('bench_mypage_chat'),
  ])
  run.databases.push(userDb, goodsDb, orderDb, chatDb)
  const [stockPrefix, chatPrefix, limitPrefix] = [
    uniqueName('bench-stock'),
    uniqueName('bench-chat'),
    uniqueName('bench-limit'),
  ]
  run.redisPrefixes.push(stockPrefix, chatPrefix, limitPrefix)

  const spawn = async (service: string, env: Record<string, string>, args: string[] = []) => {
    const child = await spawnService(entry(service), { LOG_LEVEL: 'warn', INTERNAL_API_SECRET: SECRET, ...env }, args)
    run.processes.push(child)
    return child
  }
  const userEnv = {
    MYSQL_DATABASE: userDb.name,
    RATE_LIMIT_KEY_PREFIX: `${limitPrefix}:`,
    MAILER: 'sink',
    ORDER_URL: orders.url,
    GOODS_URL: goods.url,
    CHAT_URL: chat.url,
    MYPAGE_PART_TIMEOUT_MS: String(settings.MYPAGE_PART_TIMEOUT_MS),
  }
  // Migrates and creates the demo accounts first, so both user-service processes share them.
  const seed = await spawn('user', userEnv, ['seed'])
  if ((await seed.exited) !== 0) throw new Error(`seeding failed: ${seed.output().stderr}`)
  const parallel = await spawn('user', userEnv)
  const sequential = await spawn('user', { ...userEnv, MIGRATE_ON_START: 'false', MYPAGE_SEQUENTIAL: 'true' })
  await Promise.all([waitUntilReady(parallel), waitUntilReady(sequential)])

  const jwks = { JWT_JWKS_URL: `${parallel.url}/.well-known/jwks.json` }
  const goodsService = await spawn('goods', {
    ...jwks,
    MYSQL_DATABASE: goodsDb.name,
    STOCK_KEY_PREFIX: stockPrefix,
    ORDER_EVENTS_ENABLED: 'false',
  })
  await waitUntilReady(goodsService)
  const [orderService, chatService] = await Promise.all([
    spawn('order', {
      ...jwks,
      MYSQL_DATABASE: orderDb.name,
      GOODS_URL: goodsService.url,
      GOODS_INTERNAL_URL: goodsService.internalUrl,
      PAYMENT_EVENTS_ENABLED: 'false',
    }),
    spawn('chat', {
      ...jwks,
      MYSQL_DATABASE: chatDb.name,
      MONGO_DATABASE: run.mongoDatabase,
      CHAT_REDIS_PREFIX: chatPrefix,
      CHAT_MESSAGES_GROUP: uniqueName('bench-mypage-chat'),
      GOODS_URL: goodsService.url,
    }),
  ])
  await Promise.all([waitUntilReady(orderService), waitUntilReady(chatService)])
  orders.target = orderService.url
  goods.target = goodsService.url
  chat.target = chatService.url
  return { parallel, sequential, goodsService, proxies: { orders, goods, chat } }
}

async function signIn(userUrl: string, email: string, password: string): Promise<string> {
  const response = await fetch(`${userUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
  if (response.status !== 200) throw new Error(`sign-in answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { accessToken: string }).accessToken
}

/** A buyer whose page has every part: a goods on the wishlist (orders and notifications may be empty). */
async function preparedBuyer(userUrl: string, goodsUrl: string): Promise<string> {
  const seller = await signIn(userUrl, 'seller@timedeal.dev', 'timedeal-seller')
  const buyer = await signIn(userUrl, 'buyer1@timedeal.dev', 'timedeal-buyer1')
  const now = Date.now()
  const send = async (path: string, token: string, body: unknown) => {
    const response = await fetch(`${goodsUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`)
    return (await response.json()) as { id?: string }
  }
  const goods = await send('/api/goods', seller, {
    name: 'Bench goods',
    price: 1000,
    initialStock: 10,
    saleStartsAt: new Date(now + 3_600_000).toISOString(),
    saleEndsAt: new Date(now + 7_200_000).toISOString(),
  })
  await send('/api/wishlist', buyer, { goodsId: goods.id })
  return buyer
}

function chartSvg(title: string, phases: readonly Phase[], timeoutMs: number): string {
  const width = 900
  const left = 330
  const barArea = 460
  const rowHeight = 50
  const top = 60
  const height = top + rowHeight * phases.length + 40
  const max = Math.max(timeoutMs, ...phases.map((phase) => phase.p99Ms)) * 1.05
  const x = (ms: number) => left + (ms / max) * barArea
  const rows = phases.map((phase, index) => {
    const y = top + index * rowHeight
    return [
      `<text x="${left - 12}" y="${y + 20}" text-anchor="end" font-size="13">${escapeXml(phase.label)}</text>`,
      `<rect x="${left}" y="${y + 6}" width="${Math.max(2, x(phase.p50Ms) - left).toFixed(1)}" height="22" rx="3" fill="#2f6fdf"/>`,
      `<line x1="${x(phase.p99Ms).toFixed(1)}" x2="${x(phase.p99Ms).toFixed(1)}" y1="${y + 2}" y2="${y + 32}" stroke="#d0643a" stroke-width="3"/>`,
      `<text x="${left}" y="${y + 44}" font-size="11" fill="#555">p50 ${round(phase.p50Ms)} ms · p99 ${round(phase.p99Ms)} ms · degraded ${phase.degraded}/${phase.requests} · errors ${phase.errors}</text>`,
    ].join('\n  ')
  })
  const timeoutX = x(timeoutMs).toFixed(1)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="20" y="32" font-size="18" font-weight="bold">${escapeXml(title)}</text>
  <line x1="${timeoutX}" x2="${timeoutX}" y1="${top - 8}" y2="${height - 30}" stroke="#999" stroke-dasharray="4 4"/>
  <text x="${timeoutX}" y="${top - 12}" font-size="11" fill="#777" text-anchor="middle">part timeout ${timeoutMs} ms</text>
  ${rows.join('\n  ')}
  <text x="20" y="${height - 12}" font-size="11" fill="#777">bar: p50 · orange mark: p99 · lower is better</text>
</svg>
`
}

function markdown(options: {
  phases: readonly Phase[]
  ratios: Record<string, number>
  chartFile: string
  when: Date
  notes: string[]
}): string {
  return [
    '# My page: parallel parts against sequential ones, and with one service down',
    '',
    `Run at ${options.when.toISOString()}.`,
    '',
    `![latency](${options.chartFile})`,
    '',
    '| phase | requests | degraded pages | errors | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...options.phases.map(
      (phase) =>
        `| ${phase.label} | ${phase.requests} | ${phase.degraded} | ${phase.errors} | ${round(phase.p50Ms)} | ${round(phase.p99Ms)} |`,
    ),
    '',
    ...reportTail({
      ratios: options.ratios,
      environment: {
        'CPU cores': String(cpus().length),
        'added delay per service call (D)': `${settings.BENCH_MYPAGE_DELAY_MS} ms`,
        'concurrent callers': `${settings.BENCH_MYPAGE_CONCURRENCY} (${settings.BENCH_MYPAGE_DOWN_CONCURRENCY} while order-service is down)`,
        'requests per phase': String(settings.BENCH_MYPAGE_REQUESTS),
        'part timeout (MYPAGE_PART_TIMEOUT_MS)': `${settings.MYPAGE_PART_TIMEOUT_MS} ms`,
        node: process.version,
      },
      notes: options.notes,
      formatRatio: (value) => `${round(value, 2)}×`,
    }),
  ].join('\n')
}

async function cleanUp(run: Run): Promise<void> {
  for (const child of run.processes) await child.stop('SIGTERM').catch(() => undefined)
  for (const proxy of run.proxies) await proxy.close().catch(() => undefined)
  for (const database of run.databases) await database.drop().catch(() => undefined)
  const redis = createRedis({ url: settings.REDIS_URL, logger })
  for (const prefix of run.redisPrefixes) await deleteRedisKeys(redis, prefix).catch(() => undefined)
  await redis.quit()
  const mongo = await createMongo({ url: settings.MONGO_URL, database: run.mongoDatabase, logger })
  await mongo.dropDatabase().catch(() => undefined)
  await mongo.close()
}

async function main(): Promise<void> {
  // Topics of its own (the Makefile gives a fresh prefix), so `make dev` never sees bench traffic.
  const bus = eventBusFromSettings(settings, 'bench-mypage', logger)
  const admin = await bus.admin()
  await applyCatalogTopics({
    brokers: settings.KAFKA_BROKERS,
    topicPrefix: settings.KAFKA_TOPIC_PREFIX,
    clientId: 'bench-mypage',
  })
  const run: Run = {
    databases: [],
    processes: [],
    proxies: [],
    redisPrefixes: [],
    mongoDatabase: uniqueName('timedeal_bench_mypage_chat'),
  }
  try {
    const count = settings.BENCH_MYPAGE_REQUESTS
    const timeoutMs = settings.MYPAGE_PART_TIMEOUT_MS
    say(`every service call delayed by ${settings.BENCH_MYPAGE_DELAY_MS} ms; ${count} requests per phase`)
    const { parallel, sequential, goodsService, proxies } = await startServices(run)
    const token = await preparedBuyer(parallel.url, goodsService.url)
    const parallelPage = pageOf(parallel.url, token)
    const sequentialPage = pageOf(sequential.url, token)
    const part = (url: string) => async () => {
      const { status } = await getJson(url, token)
      return { ok: status === 200, degraded: false }
    }

    say('warming up')
    await drive('warm-up', 50, parallelPage)
    await drive('warm-up', 50, sequentialPage)

    const partUrls = [
      `${proxies.orders.url}/api/orders?limit=5`,
      `${proxies.goods.url}/api/wishlist`,
      `${proxies.chat.url}/api/chat/notifications?limit=1&unread=true`,
    ] as const
    const parts = [
      await drive('orders alone (order-service)', count, part(partUrls[0])),
      await drive('wishlist alone (goods-service)', count, part(partUrls[1])),
      await drive('unread count alone (chat-service)', count, part(partUrls[2])),
    ]
    // The floor of any parallel page: the three calls at once, straight through the proxies.
    const together = await drive('the three parts at once, called directly', count, async () => {
      const answers = await Promise.all(partUrls.map((url) => part(url)()))
      return { ok: answers.every((answer) => answer.ok), degraded: false }
    })
    const inParallel = await drive('my page, parts in parallel', count, parallelPage)
    const inSequence = await drive('my page, parts one after another', count, sequentialPage)

    const down = settings.BENCH_MYPAGE_DOWN_CONCURRENCY
    // The same callers with every service up: what the machine gives them, to compare the outages with.
    const allUp = await drive(`my page, ${down} callers, every service up`, count, parallelPage, down)
    proxies.orders.cut = true
    const refused = await drive('my page, order-service refusing connections', count, parallelPage, down)
    proxies.orders.cut = false
    await eventually(async () => (await parallelPage()).degraded === false || undefined, 30_000, 'orders back')

    const delay = proxies.orders.delayMs
    proxies.orders.delayMs = 60_000
    const hanging = await drive('my page, order-service never answering', count, parallelPage, down)
    proxies.orders.delayMs = delay

    const slowestPart = Math.max(...parts.map((phase) => phase.p50Ms))
    const phases = [...parts, together, inParallel, inSequence, allUp, refused, hanging]
    const ratios = {
      'sequential p50 / parallel p50 (approaches 3, the remote parts)': inSequence.p50Ms / inParallel.p50Ms,
      'parallel p50 / slowest part p50 (goal ≤ 1.2)': inParallel.p50Ms / slowestPart,
      'parallel p50 / the three parts at once p50': inParallel.p50Ms / together.p50Ms,
      'p99 with order-service refusing / part timeout': refused.p99Ms / timeoutMs,
      'p99 with order-service never answering / part timeout': hanging.p99Ms / timeoutMs,
      'p99 with order-service never answering / p99 with every service up (same callers)': hanging.p99Ms / allUp.p99Ms,
    }
    const goalMet = inParallel.p50Ms <= 1.2 * slowestPart
    const notes = [
      `Goal (parallel p50 within 1.2× the slowest part): ${goalMet ? 'met' : 'not met'}.`,
      'The parts alone are the same routes called directly through the same proxies, with the same token and concurrency.',
      'The three parts at once are those calls made together per request: the slowest of three is slower than the slowest median, so this is the floor a parallel page can reach.',
      'The sequential page is a second user-service process with MYPAGE_SEQUENTIAL=true: the same code, awaiting one part after another.',
      'With order-service down, its breaker opens after a few failed calls; later pages skip it at once, and one trial call per half-open interval waits up to the part timeout.',
      'Every phase shares two CPU cores with the services it measures; the proxies add D ms before passing each request on.',
    ]
    const reportFile = await saveReport({
      name: 'mypage',
      svg: chartSvg(`My page with every service delayed ${settings.BENCH_MYPAGE_DELAY_MS} ms`, phases, timeoutMs),
      markdown: (chartFile, when) => markdown({ phases, ratios, chartFile, when, notes }),
    })
    say(`report: ${reportFile}`)
    const figures = {
      delayMs: settings.BENCH_MYPAGE_DELAY_MS,
      slowestPartP50Ms: round(slowestPart),
      partsAtOnceP50Ms: round(together.p50Ms),
      parallelP50Ms: round(inParallel.p50Ms),
      parallelP99Ms: round(inParallel.p99Ms),
      sequentialP50Ms: round(inSequence.p50Ms),
      sequentialP99Ms: round(inSequence.p99Ms),
      allUpP99Ms: round(allUp.p99Ms),
      refusingP99Ms: round(refused.p99Ms),
      hangingP99Ms: round(hanging.p99Ms),
      partTimeoutMs: timeoutMs,
      goalMet,
    }
    const roundedRatios = Object.fromEntries(Object.entries(ratios).map(([name, value]) => [name, round(value, 2)]))
    process.stdout.write(`${JSON.stringify({ bench: 'mypage', ...figures, ratios: roundedRatios })}\n`)
  } finally {
    await cleanUp(run)
    if (settings.KAFKA_TOPIC_PREFIX !== '') {
      await admin.deleteTopics(allTopics().map((topic) => topic.name)).catch(() => undefined)
    }
    await admin.close()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`[bench-mypage] ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
