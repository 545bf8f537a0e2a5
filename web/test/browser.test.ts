/**
 * The whole platform through a real browser: Debian's Chromium (hack/browser/chromium.sh installs
 * it) driven by playwright-core, against every service started the way `make dev` starts them
 * (hack/platform.ts), each with a database, consumer group and Redis keys of its own, behind the
 * gateway serving this app. Screenshots go to the run's folder under .state/test-runs/.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TOPIC_CHAT_MESSAGES, TOPIC_ORDERS, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { createMongo } from '@timedeal/platform'
import {
  eventually,
  freePort,
  prepareServiceUnderTest,
  type ServiceUnderTest,
  testLogger,
  testRun,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { type Platform, SERVICE_NAMES, type ServiceName, seedPlatform, startPlatform } from '../../hack/platform.ts'
import { type CuttableProxy, startCuttableProxy } from './cuttable-proxy.ts'

const repoRoot = resolve(import.meta.dirname, '../..')
const INTERNAL_SECRET = 'web-e2e-internal-secret-0123456789'
const DESKTOP = { width: 1280, height: 860 }
const PHONE = { width: 390, height: 844 }
const artifacts = join(testRun?.logDir ?? join(repoRoot, '.state', 'test-runs', 'local'), 'screenshots')
const SELLER = { email: 'seller@timedeal.dev', password: 'timedeal-seller' }
const SECOND_BUYER = { email: 'buyer2@timedeal.dev', password: 'timedeal-buyer2' }

/** A free port whose +100 (the internal listener) is free too. */
async function servicePort(): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port + 100 > 65_535) continue
    const net = await import('node:net')
    const free = await new Promise<boolean>((done) => {
      const probe = net.createServer()
      probe.once('error', () => done(false))
      probe.listen(port + 100, '127.0.0.1', () => probe.close(() => done(true)))
    })
    if (free) return port
  }
}

let platform: Platform
let platformLog: WriteStream
let browser: Browser
let proxy: CuttableProxy
let gatewayUrl: string
let userInternalUrl: string
const owned: ServiceUnderTest[] = []
const mongoDatabase = uniqueName('timedeal_test_web_chat')
const contexts: BrowserContext[] = []

async function newPage(baseURL: string, options: { phone?: boolean; locale?: string } = {}): Promise<Page> {
  const context = await browser.newContext({
    baseURL,
    viewport: options.phone ? PHONE : DESKTOP,
    ...(options.phone ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
    locale: options.locale ?? 'en-US',
  })
  contexts.push(context)
  return context.newPage()
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true })
}

/** The code of the newest mail to `email`, from user-service's development mail sink. */
function mailedCode(email: string): Promise<string> {
  return eventually(
    async () => {
      const response = await fetch(`${userInternalUrl}/internal/dev/mail?to=${encodeURIComponent(email)}`, {
        headers: { 'x-timedeal-internal': INTERNAL_SECRET },
      })
      const { messages } = (await response.json()) as { messages: { text: string }[] }
      return messages[0]?.text.match(/\b(\d{6})\b/)?.[1]
    },
    15_000,
    `the verification mail to ${email}`,
  )
}

async function apiToken(account: { email: string; password: string }): Promise<string> {
  const response = await fetch(`${gatewayUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(account),
  })
  assert.equal(response.status, 200, await response.clone().text())
  return ((await response.json()) as { accessToken: string }).accessToken
}

async function signInThroughTheApp(page: Page, account: { email: string; password: string }): Promise<void> {
  await page.goto('/signin')
  await page.getByLabel('Email').fill(account.email)
  await page.getByLabel('Password').fill(account.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('button', { name: 'Sign out' }).waitFor()
}

/** The texts of a chat's message list, in order. */
const messageTexts = (page: Page) => page.locator('ol.messages li[data-message-id] .text').allTextContents()

before(async () => {
  mkdirSync(artifacts, { recursive: true })
  platformLog = createWriteStream(join(artifacts, '..', 'web-platform.log'), { flags: 'a' })
  const executablePath = execFileSync(join(repoRoot, 'hack/browser/chromium.sh'), { encoding: 'utf8' }).trim()
  // The app as `make build` builds it, into the run's folder: a web/dist in use stays as it is.
  const webDist = join(artifacts, '..', 'web-dist')
  execFileSync(
    process.execPath,
    ['node_modules/vite/bin/vite.js', 'build', 'web', '--outDir', webDist, '--emptyOutDir'],
    {
      cwd: repoRoot,
      stdio: 'ignore',
    },
  )

  const own = async (options: Parameters<typeof prepareServiceUnderTest>[0]) => {
    const prepared = await prepareServiceUnderTest(options)
    owned.push(prepared)
    return prepared
  }
  const [user, goods, order, payment, chat, gateway] = await Promise.all([
    own({ name: 'web_user', redisPrefixSetting: 'RATE_LIMIT_KEY_PREFIX' }),
    own({
      name: 'web_goods',
      redisPrefixSetting: 'STOCK_KEY_PREFIX',
      consumes: { groupSetting: 'ORDER_EVENTS_GROUP', topics: [TOPIC_ORDERS] },
    }),
    own({ name: 'web_order', consumes: { groupSetting: 'PAYMENT_EVENTS_GROUP', topics: [TOPIC_PAYMENTS] } }),
    own({
      name: 'web_payment',
      consumes: { groupSetting: 'ORDER_EVENTS_GROUP', topics: [TOPIC_ORDERS, TOPIC_PAYMENTS] },
    }),
    own({
      name: 'web_chat',
      redisPrefixSetting: 'CHAT_REDIS_PREFIX',
      consumes: { groupSetting: 'CHAT_MESSAGES_GROUP', topics: [TOPIC_CHAT_MESSAGES] },
    }),
    own({ name: 'web_gateway', redisPrefixSetting: 'RATE_LIMIT_KEY_PREFIX' }),
  ])
  const ports = Object.fromEntries(
    await Promise.all(SERVICE_NAMES.map(async (name) => [name, await servicePort()] as const)),
  ) as Record<ServiceName, number>
  const common = { INTERNAL_API_SECRET: INTERNAL_SECRET, LOG_LEVEL: 'warn', TIMEDEAL_ENV: 'development' }
  const options = {
    ports,
    // The services' logs, for a failure's story; the test output stays quiet.
    print: (line: string) => platformLog.write(`${line}\n`),
    env: {
      user: {
        ...common,
        ...user.env,
        MAILER: 'sink',
        TRUST_PROXY: 'true',
        RATE_LIMIT_KEY_PREFIX: `${user.redisPrefix}:`,
      },
      goods: { ...common, ...goods.env },
      order: { ...common, ...order.env },
      payment: { ...common, ...payment.env },
      chat: { ...common, ...chat.env, MONGO_DATABASE: mongoDatabase },
      gateway: {
        ...common,
        ...gateway.env,
        RATE_LIMIT_KEY_PREFIX: `${gateway.redisPrefix}:`,
        WEB_DIST_DIR: webDist,
      },
    },
  }
  await seedPlatform(options)
  platform = await startPlatform(options)
  for (const name of SERVICE_NAMES) assert.ok(platform.ready[name], `${name} did not become ready`)
  gatewayUrl = platform.services.gateway.url
  userInternalUrl = `http://127.0.0.1:${ports.user + 100}`
  proxy = await startCuttableProxy(ports.gateway)
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
})

after(async () => {
  for (const context of contexts) await context.close().catch(() => {})
  await browser?.close()
  await proxy?.close()
  await platform?.stop()
  await Promise.all(owned.map((prepared) => prepared.release()))
  platformLog?.end()
  const mongo = await createMongo({ url: testSettings.MONGO_URL, database: mongoDatabase, logger: testLogger })
  await mongo.dropDatabase()
  await mongo.close()
})

describe('the web app in a real browser, on the whole platform', () => {
  let goodsId: string
  let buyer: Page
  let roomId: string

  it('a buyer signs up with the mailed code, waits for the sale to open, buys and sees the order PAID', async () => {
    const sellerToken = await apiToken(SELLER)
    const opensAt = Date.now() + 12_000
    const created = await fetch(`${gatewayUrl}/api/goods`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${sellerToken}` },
      body: JSON.stringify({
        name: 'Desk lamp (browser test)',
        description: 'One unit, one per buyer.',
        price: 39_000,
        initialStock: 1,
        saleStartsAt: new Date(opensAt).toISOString(),
        saleEndsAt: new Date(opensAt + 3_600_000).toISOString(),
        purchaseLimit: 1,
      }),
    })
    assert.equal(created.status, 201, await created.clone().text())
    goodsId = ((await created.json()) as { id: string }).id

    // The buyer's browser reaches the gateway through the proxy the chat test cuts later.
    buyer = await newPage(proxy.url)
    const email = `${uniqueName('buyer')}@example.com`
    await buyer.goto('/signup')
    await buyer.getByLabel('Email').fill(email)
    await buyer.getByLabel('Name').fill('Browser Buyer')
    await buyer.getByLabel('Password').fill('correct horse battery')
    await buyer.getByRole('button', { name: 'Sign up' }).click()
    await buyer.waitForURL(/\/verify\?/)
    await buyer.getByLabel('Code from the mail').fill(await mailedCode(email))
    await buyer.getByRole('button', { name: 'Confirm' }).click()
    await buyer.getByRole('button', { name: 'Sign out' }).waitFor()

    await buyer.goto('/')
    await buyer.locator(`li[data-goods-id="${goodsId}"]`).getByText('Opens in').waitFor()
    await screenshot(buyer, 'sales-desktop')
    await buyer.goto(`/goods/${goodsId}`)
    await buyer.getByText('Opens in').waitFor()
    // The state comes from the live stock the page polls: no reload.
    await buyer.locator('.state', { hasText: 'On sale' }).waitFor({ timeout: 30_000 })
    await buyer.getByRole('button', { name: 'Buy now' }).click()
    await buyer.locator('[data-order-state="PAID"]').waitFor({ timeout: 60_000 })
    assert.match((await buyer.locator('.outcome').textContent()) ?? '', /Paid/)
    await screenshot(buyer, 'goods-paid-desktop')

    // A reload signs back in from the httpOnly refresh cookie.
    await buyer.reload()
    await buyer.getByRole('button', { name: 'Sign out' }).waitFor()
  })

  it('the live stock a page polls is revalidated with a conditional request: unchanged is a 304', async () => {
    const stockUrl = `/api/goods/${goodsId}/stock`
    const first = await fetch(`${gatewayUrl}${stockUrl}`)
    const tag = first.headers.get('etag')
    assert.ok(tag, 'the stock answer has an ETag')
    const again = await fetch(`${gatewayUrl}${stockUrl}`, { headers: { 'if-none-match': tag } })
    assert.equal(again.status, 304)

    // The browser sends the validator on its own: the page asks with `cache: 'no-cache'`.
    const page = await newPage(gatewayUrl)
    const conditional: string[] = []
    page.on('request', (request) => {
      if (!request.url().endsWith(stockUrl)) return
      void request
        .allHeaders()
        .then((headers) => {
          if (headers['if-none-match']) conditional.push(headers['if-none-match'])
        })
        .catch(() => {})
    })
    await page.goto(`/goods/${goodsId}`)
    await eventually(async () => (conditional.length >= 2 ? true : undefined), 15_000, 'conditional polls')
    await page.context().close()
  })

  it('a second buyer gets a clear sold-out message', async () => {
    const second = await newPage(gatewayUrl)
    await signInThroughTheApp(second, SECOND_BUYER)
    await second.goto(`/goods/${goodsId}`)
    await second.getByRole('button', { name: 'Buy now' }).click()
    const alert = second.getByRole('alert')
    await alert.waitFor()
    assert.match((await alert.textContent()) ?? '', /Sold out/)
    await screenshot(second, 'goods-sold-out-desktop')
  })

  it('buyer and seller chat, the buyer loses the network and comes back seeing every message exactly once', async () => {
    await buyer.goto(`/goods/${goodsId}`)
    await buyer.getByRole('button', { name: 'Ask the seller' }).click()
    await buyer.waitForURL(/\/chat\/[0-9a-f-]{36}$/)
    roomId = buyer.url().split('/').at(-1) ?? ''
    const seller = await newPage(gatewayUrl)
    await signInThroughTheApp(seller, SELLER)
    await seller.goto(`/chat/${roomId}`)
    for (const page of [buyer, seller]) await page.getByText('Connected', { exact: true }).waitFor()

    const send = async (page: Page, text: string) => {
      await page.getByLabel('Message').fill(text)
      await page.getByRole('button', { name: 'Send' }).click()
    }
    await send(buyer, 'Is the lamp dimmable?')
    await send(seller, 'Yes, in three steps.')
    for (const page of [buyer, seller]) {
      await eventually(
        async () => ((await messageTexts(page)).length === 2 ? true : undefined),
        15_000,
        'both messages',
      )
    }

    proxy.cut()
    await buyer.getByText('Reconnecting…').waitFor()
    const whileAway = ['It ships tomorrow.', 'With a warm white bulb.', 'Any other question?']
    for (const text of whileAway) await send(seller, text)
    await eventually(async () => ((await messageTexts(seller)).length === 5 ? true : undefined), 15_000, 'sent')
    assert.deepEqual(await messageTexts(buyer), ['Is the lamp dimmable?', 'Yes, in three steps.'])

    proxy.restore()
    await buyer.getByText('Connected', { exact: true }).waitFor({ timeout: 30_000 })
    const expected = ['Is the lamp dimmable?', 'Yes, in three steps.', ...whileAway]
    await eventually(async () => ((await messageTexts(buyer)).length >= 5 ? true : undefined), 20_000, 'the replay')
    await send(buyer, 'Thanks!')
    // Each page shows a message when the chat echoes it back, the sender's own included; the two
    // echoes leave at their own pace, so each page is waited for.
    for (const page of [seller, buyer]) {
      await eventually(async () => ((await messageTexts(page)).length >= 6 ? true : undefined), 15_000, 'the reply')
    }
    // Exactly once: the replay after the reconnect and the live messages never overlap on screen.
    assert.deepEqual(await messageTexts(buyer), [...expected, 'Thanks!'])
    const ids = await buyer
      .locator('ol.messages li[data-message-id]')
      .evaluateAll((items) => items.map((item) => item.getAttribute('data-message-id')))
    assert.equal(new Set(ids).size, ids.length)
    await screenshot(buyer, 'chat-buyer-desktop')

    // Away from the room the seller is notified: the header shows the unread count.
    await seller.getByRole('link', { name: 'Sales' }).click()
    await seller.waitForURL(/\/$/)
    await send(buyer, 'One more thing: is the bulb included?')
    await seller.getByTestId('unread-total').filter({ hasText: '1 unread' }).waitFor({ timeout: 15_000 })
  })

  it("a room's history loads older pages as the reader scrolls up, each message once", async () => {
    await buyer.goto(`/chat/${roomId}`)
    await buyer.getByText('Connected', { exact: true }).waitFor()
    // Connected says nothing of the history: count once its newest page is shown.
    await buyer.locator('ol.messages[aria-busy="false"]').waitFor()
    const before = (await messageTexts(buyer)).length
    // Each one waits for its own echo: well under the chat's per-user send rate.
    for (let n = 1; n <= 30; n += 1) {
      await buyer.getByLabel('Message').fill(`Note ${n}`)
      await buyer.getByRole('button', { name: 'Send' }).click()
      await buyer.locator('ol.messages li[data-message-id] .text', { hasText: new RegExp(`^Note ${n}$`) }).waitFor()
    }
    const total = before + 30
    await buyer.reload()
    await buyer.getByText('Connected', { exact: true }).waitFor()
    await eventually(async () => ((await messageTexts(buyer)).length === 30 ? true : undefined), 15_000, 'one page')
    await buyer.locator('ol.messages').evaluate((list) => {
      list.scrollTop = 0
    })
    await eventually(async () => ((await messageTexts(buyer)).length === total ? true : undefined), 15_000, 'older')
    const texts = await messageTexts(buyer)
    assert.equal(texts[0], 'Is the lamp dimmable?')
    assert.equal(texts.at(-1), 'Note 30')
    assert.equal(new Set(texts).size, texts.length)
  })

  it('my page shows the orders and says which part is missing, and why, while goods-service is stopped', async () => {
    await platform.services.goods.stop()
    try {
      await buyer.goto('/my')
      await buyer
        .getByTestId('degraded')
        .filter({ hasText: /Wishlist \(goods-service [^)]+\)/ })
        .waitFor({ timeout: 30_000 })
      await buyer
        .getByRole('region', { name: 'Wishlist' })
        .locator('.degraded-reason', { hasText: 'goods-service' })
        .waitFor()
      await buyer.locator('.order', { hasText: 'PAID' }).waitFor()
      await screenshot(buyer, 'my-page-degraded-desktop')
    } finally {
      assert.ok(await platform.services.goods.start(), 'goods-service came back')
      // The gateway's breaker for goods-service opened meanwhile; the next tests start once it lets requests through.
      await eventually(
        async () => ((await fetch(`${gatewayUrl}/api/goods?limit=1`)).status === 200 ? true : undefined),
        30_000,
        'the gateway routing to goods-service again',
      )
    }
  })

  it('a seller creates a time deal on the seller page and watches it count down with its stock', async () => {
    const seller = await newPage(gatewayUrl)
    await signInThroughTheApp(seller, SELLER)
    await seller.getByRole('link', { name: 'My shop' }).click()
    await seller.getByLabel('Name', { exact: true }).fill('Reading chair (browser test)')
    await seller.getByLabel('Price (won)').fill('120000')
    await seller.getByLabel('Stock', { exact: true }).fill('7')
    await seller.getByRole('button', { name: 'Create' }).click()
    await seller.getByRole('status').filter({ hasText: 'Created: Reading chair (browser test)' }).waitFor()
    const card = seller.locator('.card', { hasText: 'Reading chair (browser test)' })
    await card.getByText('7 of 7 left').waitFor()
    await card.getByText('Opens in').waitFor()
    await screenshot(seller, 'seller-desktop')
  })

  it('the sale list and the goods page fit a phone screen, in Korean', async () => {
    const phone = await newPage(gatewayUrl, { phone: true, locale: 'ko-KR' })
    await phone.goto('/')
    await phone.getByRole('heading', { name: '타임딜', level: 1 }).waitFor()
    await phone.locator('li[data-goods-id]').first().waitFor()
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`)
    await screenshot(phone, 'sales-phone-ko')
    await phone.goto(`/goods/${goodsId}`)
    await phone.getByText('품절').first().waitFor()
    await screenshot(phone, 'goods-phone-ko')
  })

  it('the API reference at /api/docs renders every service from the gateway alone, with no CSP violation or console error', async () => {
    const page = await newPage(gatewayUrl)
    const origin = new URL(gatewayUrl).origin
    const problems: string[] = []
    const foreign: string[] = []
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()} (${message.location().url})`)
    })
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
    page.on('request', (request) => {
      const url = request.url()
      if (!url.startsWith('data:') && !url.startsWith('blob:') && new URL(url).origin !== origin) foreign.push(url)
    })
    // Registered before any script of the page runs, so a violation during start-up is seen too.
    await page.addInitScript(() => {
      const seen: string[] = []
      Object.assign(window, { cspViolations: seen })
      document.addEventListener('securitypolicyviolation', (event) => {
        seen.push(
          `${event.effectiveDirective} blocked ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`,
        )
      })
    })
    const response = await page.goto('/api/docs')
    assert.equal(response?.status(), 200)
    assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self' 'nonce-/)
    // Rendered: every service's section and an operation's path are on screen, not only in the markup.
    const visible = (text: string | RegExp, exact = false) =>
      page.getByText(text, { exact }).filter({ visible: true }).first().waitFor({ timeout: 30_000 })
    const rendered = await Promise.all([
      ...['user', 'goods', 'order', 'payment', 'chat'].map((service) => visible(service, true)),
      visible(/^\/api\/[a-z]/),
    ]).then(
      () => true,
      () => false,
    )
    await screenshot(page, 'api-docs-desktop')
    const violations = await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)
    // What went wrong first, then whether the reference rendered at all.
    assert.deepEqual(violations, [])
    assert.deepEqual(problems, [])
    assert.deepEqual(foreign, [])
    assert.ok(rendered, 'the reference shows the operations of the merged document')
  })

  it('a buyer cancels the paid order from my page and sees it CANCELLED', async () => {
    await buyer.goto('/my')
    const row = buyer.locator('.order', { hasText: 'PAID' })
    await row.getByRole('button', { name: 'Cancel' }).click()
    await buyer.locator('.order', { hasText: 'CANCELLED' }).waitFor({ timeout: 30_000 })
  })
})
