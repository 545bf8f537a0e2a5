import { TOPIC_PREFIX_PATTERN } from '@timedeal/contracts'
import { z } from 'zod'
import { DEFAULT_INBOX_RETENTION_MS } from './inbox.ts'

/** A setting that failed validation; its message is the one line printed before exiting. */
export class SettingsError extends Error {
  override name = 'SettingsError'
}

type Env = Record<string, string | undefined>

/**
 * Parses environment variables into typed settings once, at start-up. Empty values count as
 * unset, so defaults (chosen to work with `make dev`) apply.
 */
export function loadSettings<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  const input: Env = {}
  for (const key of Object.keys(schema.shape)) {
    const value = env[key]
    if (value !== undefined && value.trim() !== '') input[key] = value.trim()
  }
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  const key = String(issue?.path[0] ?? '?')
  const shown = input[key] === undefined ? 'is not set' : `=${JSON.stringify(input[key])}`
  throw new SettingsError(`invalid setting ${key}${shown === 'is not set' ? ' (not set)' : shown}: ${issue?.message}`)
}

/** Settings, or one clear line on stderr and exit code 1. For `main.ts` files. */
export function loadSettingsOrExit<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  try {
    return loadSettings(schema, env)
  } catch (error) {
    if (error instanceof SettingsError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(1)
    }
    throw error
  }
}

export const port = (fallback: number) =>
  z.coerce
    .number({ error: 'expected a port number' })
    .int('expected a whole port number')
    .min(1, 'expected a port number 1-65535')
    .max(65535, 'expected a port number 1-65535')
    .default(fallback)

export const positiveInt = (fallback: number) =>
  z.coerce.number({ error: 'expected a number' }).int('expected a whole number').positive().default(fallback)

export const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
    .transform((value) => value === 'true' || value === '1' || value === 'yes')
    .default(fallback)

export const logLevel = () =>
  z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'expected one of fatal, error, warn, info, debug, trace, silent',
  })

/** Settings every service has. */
export const serviceSettings = (service: string, httpPort: number) => ({
  SERVICE_NAME: z.string().default(service),
  HTTP_HOST: z.string().default('127.0.0.1'),
  HTTP_PORT: port(httpPort),
  LOG_LEVEL: logLevel().default('info'),
  SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
})

export const mysqlSettings = (database: string) => ({
  MYSQL_HOST: z.string().default('127.0.0.1'),
  MYSQL_PORT: port(3306),
  MYSQL_USER: z.string().default('timedeal'),
  MYSQL_PASSWORD: z.string().default('timedeal'),
  MYSQL_DATABASE: z
    .string()
    .regex(/^[A-Za-z0-9_]+$/, 'expected a database name (letters, digits, _)')
    .default(database),
  MYSQL_POOL_MAX: positiveInt(20),
})

const redisUrl = z.url({ protocol: /^rediss?$/, error: 'expected a redis:// or rediss:// URL' })
export const redisSettings = () => ({
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
})

const brokerList = z
  .string()
  .transform((value) => value.split(',').map((broker) => broker.trim()))
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port[,host:port...]')).min(1))
export const kafkaSettings = () => ({
  KAFKA_BROKERS: brokerList.default(['127.0.0.1:9092']),
  /** Put before every topic and consumer group name, so environments can share one broker. */
  KAFKA_TOPIC_PREFIX: z
    .string()
    .regex(TOPIC_PREFIX_PATTERN, "expected letters, digits, '.', '_' and '-' (at most 100)")
    .default(''),
})

/**
 * How a service's consumers retry and how long its inbox remembers handled ids. An event that
 * fails for an unavailable dependency is retried without limit, its backoff doubling from
 * `CONSUMER_RETRY_BACKOFF_MS` up to `CONSUMER_RETRY_MAX_BACKOFF_MS`; one that can never succeed
 * is dead-lettered after `CONSUMER_MAX_ATTEMPTS`. `INBOX_RETENTION_MS` must stay longer than any
 * record can be read from a topic (see `DEFAULT_INBOX_RETENTION_MS`).
 */
export const consumerSettings = () => ({
  CONSUMER_MAX_ATTEMPTS: positiveInt(5),
  CONSUMER_RETRY_BACKOFF_MS: positiveInt(200),
  CONSUMER_RETRY_MAX_BACKOFF_MS: positiveInt(10_000),
  INBOX_RETENTION_MS: positiveInt(DEFAULT_INBOX_RETENTION_MS),
})

const mongoUrl = z.url({ protocol: /^mongodb(\+srv)?$/, error: 'expected a mongodb:// URL' })
export const mongoSettings = (database: string) => ({
  MONGO_URL: mongoUrl.default('mongodb://127.0.0.1:27017'),
  MONGO_DATABASE: z.string().default(database),
})

/** How a service checks callers: user-service's JWKS, and the credential of internal routes. */
export const authSettings = () => ({
  JWT_JWKS_URL: z
    .url({ error: 'expected the URL of a JWKS document' })
    .default('http://127.0.0.1:8081/.well-known/jwks.json'),
  JWT_ISSUER: z.string().min(1).default('timedeal-user'),
  JWT_AUDIENCE: z.string().min(1).default('timedeal'),
  INTERNAL_API_SECRET: z.string().min(16, 'expected at least 16 characters').default('timedeal-dev-internal-secret'),
})
