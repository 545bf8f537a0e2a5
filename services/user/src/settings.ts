import {
  authSettings,
  bool,
  developmentDefault,
  mysqlSettings,
  positiveInt,
  redisSettings,
  serviceSettings,
} from '@timedeal/platform'
import { z } from 'zod'
import { parseDataKeys } from './adapters/data-cipher.ts'

const { JWT_ISSUER, JWT_AUDIENCE, INTERNAL_API_SECRET } = authSettings()

// A fixed key so `make dev` and the tests work out of the box; production refuses it.
const DEVELOPMENT_DATA_KEY = 'dev1:dGltZWRlYWwtZGV2ZWxvcG1lbnQta2V5LTMyYnl0ZXM='

const dataKeys = developmentDefault(
  z.string().transform((value, ctx) => {
    try {
      return parseDataKeys(value)
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) })
      return z.NEVER
    }
  }),
  DEVELOPMENT_DATA_KEY,
)

const nonNegativeInt = (fallback: number) =>
  z.coerce.number({ error: 'expected a number' }).int('expected a whole number').min(0).default(fallback)

/** Every setting of user-service, read from environment variables once at start. */
export const settingsSchema = z
  .object({
    ...serviceSettings('user-service', 8081),
    ...mysqlSettings('timedeal_user'),
    ...redisSettings(),
    JWT_ISSUER,
    JWT_AUDIENCE,
    INTERNAL_API_SECRET,
    ACCESS_TOKEN_TTL_SECONDS: positiveInt(15 * 60),
    REFRESH_TOKEN_TTL_SECONDS: positiveInt(14 * 24 * 60 * 60),
    SIGNING_KEY_LIFETIME_HOURS: positiveInt(30 * 24),
    SIGNING_KEY_PUBLISH_AHEAD_SECONDS: nonNegativeInt(60),
    DATA_KEYS: dataKeys,
    // The sink keeps mails in MySQL for developers to read; production refuses it.
    MAILER: developmentDefault(z.enum(['sink', 'smtp'], { error: 'expected sink or smtp' }), 'sink', { secret: false }),
    SMTP_URL: z.url({ protocol: /^smtps?$/, error: 'expected an smtp:// or smtps:// URL' }).optional(),
    MAIL_FROM: z.string().min(3).default('Timedeal <no-reply@timedeal.dev>'),
    TRUST_PROXY: bool(false),
    /** Where the rate-limit counters live in Redis; separate deployments sharing a Redis differ. */
    RATE_LIMIT_KEY_PREFIX: z.string().min(1).default('user:limit:'),
    LOGIN_LIMIT_PER_ACCOUNT: positiveInt(10),
    LOGIN_LIMIT_PER_ADDRESS: positiveInt(30),
    LOGIN_LIMIT_WINDOW_SECONDS: positiveInt(15 * 60),
    SIGNUP_LIMIT_PER_EMAIL: positiveInt(5),
    SIGNUP_LIMIT_PER_ADDRESS: positiveInt(20),
    SIGNUP_LIMIT_WINDOW_SECONDS: positiveInt(60 * 60),
    // My page: where the other services are, and the policies each call to them goes through.
    ORDER_URL: z.url().default('http://127.0.0.1:8083'),
    GOODS_URL: z.url().default('http://127.0.0.1:8082'),
    CHAT_URL: z.url().default('http://127.0.0.1:8085'),
    MYPAGE_PART_TIMEOUT_MS: positiveInt(800),
    MYPAGE_RETRIES: nonNegativeInt(2),
    MYPAGE_RETRY_BACKOFF_MS: positiveInt(25),
    MYPAGE_MAX_CONCURRENT_CALLS: positiveInt(64),
    MYPAGE_MAX_QUEUED_CALLS: nonNegativeInt(128),
    MYPAGE_BREAKER_FAILURES: positiveInt(5),
    MYPAGE_BREAKER_HALF_OPEN_MS: positiveInt(5000),
    MYPAGE_LIST_LIMIT: positiveInt(5),
    /** Fetches the parts one after another: for the benchmark's comparison only, never for serving. */
    MYPAGE_SEQUENTIAL: bool(false),
  })
  .superRefine((settings, ctx) => {
    if (settings.MAILER === 'smtp' && !settings.SMTP_URL) {
      ctx.addIssue({ code: 'custom', path: ['SMTP_URL'], message: 'required when MAILER=smtp' })
    }
  })

export type Settings = z.infer<typeof settingsSchema>
