/** Builds user-service in-process against the real local servers, each test file in its own database. */
import { randomBytes } from 'node:crypto'
import { INTERNAL_CREDENTIAL_HEADER, loadSettings, type Redis } from '@timedeal/platform'
import {
  type CallOptions,
  callApp,
  connectTestRedis,
  createTestDatabase as createPlatformTestDatabase,
  startInProcess,
  type TestDatabase,
  uniqueName,
} from '@timedeal/platform/testing'
import type { Hono } from 'hono'
import type { Sequelize } from 'sequelize'
import { migrations } from '../src/adapters/migrations.ts'
import { startUserService as startService, type UserService } from '../src/service.ts'
import { type Settings, settingsSchema } from '../src/settings.ts'

export const INTERNAL_SECRET = 'test-internal-secret-0123456789'

export type { TestDatabase }

/** A fresh, migrated database of its own. */
export const createTestDatabase = (): Promise<TestDatabase> => createPlatformTestDatabase('user', migrations)

/** A random 32-byte data key, as `DATA_KEYS` lists it. */
export const newDataKey = (id: string) => `${id}:${randomBytes(32).toString('base64')}`

export type { CallOptions }

export interface TestUserService {
  readonly app: Hono
  readonly service: UserService
  readonly settings: Settings
  readonly sequelize: Sequelize
  readonly redis: Redis
  /** The client address requests come from (through the trusted `X-Forwarded-For`), for the per-address limits. */
  readonly address: string
  /** The same service seen from another client address: tests do not share rate-limit counters. */
  newClient(): TestUserService
  /** A request to the public listener. */
  call(method: string, path: string, options?: CallOptions): Promise<Response>
  /** A request to the internal listener (`/internal/...`), as another service makes it. */
  callInternal(method: string, path: string, options?: CallOptions): Promise<Response>
  /** The newest mail the development sink holds for `to`, read the way a developer would. */
  latestMail(to: string): Promise<{ subject: string; text: string } | undefined>
  close(): Promise<void>
}

/** user-service built exactly as `main.ts` builds it, with settings from the environment plus `overrides`. */
export async function startUserService(
  database: TestDatabase,
  overrides: Record<string, string> = {},
): Promise<TestUserService> {
  const settings = loadSettings(settingsSchema, {
    ...process.env,
    MYSQL_DATABASE: database.name,
    INTERNAL_API_SECRET: INTERNAL_SECRET,
    TRUST_PROXY: 'true',
    MAILER: 'sink',
    // Rate-limit counters of the test's own, beside its database: never the development ones.
    RATE_LIMIT_KEY_PREFIX: `${database.name}:limit:`,
    ...overrides,
  })
  const redis = connectTestRedis()
  const { service, app, internalApp } = await startInProcess('user-service', ({ logger, metrics }) =>
    startService({ settings, sequelize: database.sequelize, redis, logger, metrics }),
  )
  if (!internalApp) throw new Error('user-service has internal routes')

  const client = (address: string): TestUserService => {
    const request = (target: Hono, method: string, path: string, options: CallOptions = {}) =>
      callApp(target, method, path, { ...options, headers: { 'x-forwarded-for': address, ...options.headers } })
    const call = (method: string, path: string, options: CallOptions = {}) =>
      request(app as unknown as Hono, method, path, options)
    const callInternal = (method: string, path: string, options: CallOptions = {}) =>
      request(internalApp as unknown as Hono, method, path, options)
    return {
      app: app as unknown as Hono,
      service,
      settings,
      sequelize: database.sequelize,
      redis,
      address,
      newClient: () => client(newAddress()),
      call,
      callInternal,
      async latestMail(to) {
        const response = await callInternal('GET', `/internal/dev/mail?to=${encodeURIComponent(to)}`, {
          headers: { [INTERNAL_CREDENTIAL_HEADER]: INTERNAL_SECRET },
        })
        const { messages } = (await response.json()) as { messages: { subject: string; text: string }[] }
        return messages[0]
      },
      async close() {
        await service.stop()
        await redis.quit()
      },
    }
  }
  return client(newAddress())
}

const newAddress = () => `client-${randomBytes(6).toString('hex')}`

/** The 6-digit code of a verification mail. */
export function codeIn(mail: { text: string } | undefined): string {
  const code = /\b(\d{6})\b/.exec(mail?.text ?? '')?.[1]
  if (!code) throw new Error(`no verification code in mail: ${mail?.text}`)
  return code
}

export const uniqueEmail = (label = 'user') => `${uniqueName(label).toLowerCase()}@example.test`

/** Signs up, reads the code from the mail sink and verifies: an account ready to sign in. */
export async function verifiedAccount(
  user: TestUserService,
  details: { role?: 'BUYER' | 'SELLER'; password?: string } = {},
): Promise<{ email: string; password: string }> {
  const email = uniqueEmail(details.role === 'SELLER' ? 'seller' : 'buyer')
  const password = details.password ?? 'correct horse battery'
  const signUp = await user.call('POST', '/api/users', {
    body: { email, password, name: 'Test User', role: details.role ?? 'BUYER' },
  })
  if (signUp.status !== 202) throw new Error(`sign-up answered ${signUp.status}: ${await signUp.text()}`)
  const verify = await user.call('POST', '/api/users/verify', {
    body: { email, code: codeIn(await user.latestMail(email)), password },
  })
  if (verify.status !== 200) throw new Error(`verification answered ${verify.status}: ${await verify.text()}`)
  return { email, password }
}

export interface SessionBody {
  tokenType: string
  accessToken: string
  expiresIn: number
  refreshToken?: string
  refreshTokenExpiresAt: string
  user: { id: string; email: string; name: string; role: string }
}

export async function signIn(user: TestUserService, email: string, password: string): Promise<SessionBody> {
  const response = await user.call('POST', '/api/auth/login', { body: { email, password } })
  if (response.status !== 200) throw new Error(`sign-in answered ${response.status}: ${await response.text()}`)
  return (await response.json()) as SessionBody
}
