import { TOPIC_PREFIX_PATTERN } from '@timedeal/contracts'
import { z } from 'zod'
import { DEFAULT_INBOX_RETENTION_MS } from './inbox.ts'

/** A setting that failed validation; its message is the one line printed before exiting. */
export class SettingsError extends Error {
  override name = 'SettingsError'
}

type Env = Record<string, string | undefined>

/** What a setting marked by {@link developmentDefault} carries. */
interface DevelopmentValue {
  /** The value that makes `make dev` work out of the box, and that production refuses. */
  readonly value: string
  /** A secret is never printed, not even when it is invalid. */
  readonly secret: boolean
}

const developmentValues = z.registry<DevelopmentValue>()

/**
 * A setting whose default only suits development (a secret, a key, a password, the mail sink).
 * With `TIMEDEAL_ENV=production` the process refuses to start while the setting is unset or
 * holds this very value.
 */
export function developmentDefault<T extends z.ZodType<unknown, string>>(
  schema: T,
  value: string,
  options: { secret: boolean } = { secret: true },
) {
  const withDefault = schema.prefault(value as z.input<T>)
  developmentValues.add(withDefault as z.ZodType, { value, secret: options.secret })
  return withDefault
}

/** Where a process runs; production refuses every development default. */
export const environment = () =>
  z.enum(['development', 'production'], { error: 'expected development or production' }).default('development')

/**
 * Parses environment variables into typed settings once, at start-up. Empty values count as
 * unset, so defaults (chosen to work with `make dev`) apply. With `TIMEDEAL_ENV=production`,
 * a development default is an error too.
 */
export function loadSettings<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  const input: Env = {}
  for (const key of Object.keys(schema.shape)) {
    const value = env[key]
    if (value !== undefined && value.trim() !== '') input[key] = value.trim()
  }
  const shape = schema.shape as Record<string, z.ZodType>
  const shown = (key: string) => {
    if (input[key] === undefined) return ' (not set)'
    return developmentValues.get(shape[key] as z.ZodType)?.secret ? ' (hidden)' : `=${JSON.stringify(input[key])}`
  }
  const where = environment().safeParse(env.TIMEDEAL_ENV?.trim() || undefined)
  if (!where.success) {
    throw new SettingsError(
      `invalid setting TIMEDEAL_ENV=${JSON.stringify(env.TIMEDEAL_ENV)}: ${where.error.issues[0]?.message}`,
    )
  }
  const result = schema.safeParse(input)
  if (!result.success) {
    const issue = result.error.issues[0]
    const key = String(issue?.path[0] ?? '?')
    throw new SettingsError(`invalid setting ${key}${shown(key)}: ${issue?.message}`)
  }
  if (where.data === 'production') refuseDevelopmentValues(shape, input)
  return result.data
}

function refuseDevelopmentValues(shape: Record<string, z.ZodType>, input: Env): void {
  for (const [key, setting] of Object.entries(shape)) {
    const development = developmentValues.get(setting)
    if (!development) continue
    if (input[key] === undefined) {
      throw new SettingsError(
        `invalid setting ${key} (not set): its default is for development only; TIMEDEAL_ENV=production needs a value of its own`,
      )
    }
    if (input[key] === development.value) {
      const what = development.secret ? '' : `=${JSON.stringify(input[key])}`
      throw new SettingsError(
        `invalid setting ${key}${what}: this is the development default, refused when TIMEDEAL_ENV=production`,
      )
    }
  }
}

/** Settings, or one clear line on stderr and exit code 1. For `main.ts` files. */
export function loadSettingsOrExit<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  return orExit(() => loadSettings(schema, env))
}

/** The result of `read`, or, when it throws a {@link SettingsError}, its one line on stderr and exit code 1. */
export function orExit<T>(read: () => T): T {
  try {
    return read()
  } catch (error) {
    if (error instanceof SettingsError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(1)
    }
    throw error
  }
}

const portNumber = z.coerce
  .number({ error: 'expected a port number' })
  .int('expected a whole port number')
  .min(1, 'expected a port number 1-65535')
  .max(65535, 'expected a port number 1-65535')

export const port = (fallback: number) => portNumber.default(fallback)

export const positiveInt = (fallback: number) =>
  z.coerce.number({ error: 'expected a number' }).int('expected a whole number').positive().default(fallback)

export const nonNegativeInt = (fallback: number) =>
  z.coerce.number({ error: 'expected a number' }).int('expected a whole number').min(0).default(fallback)

export const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
    .transform((value) => value === 'true' || value === '1' || value === 'yes')
    .default(fallback)

export const logLevel = () =>
  z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'expected one of fatal, error, warn, info, debug, trace, silent',
  })

/** Settings every process has, with or without HTTP (services, workers, relays). */
export const processSettings = (service: string) => ({
  SERVICE_NAME: z.string().default(service),
  TIMEDEAL_ENV: environment(),
  LOG_LEVEL: logLevel().default('info'),
  /** The whole shutdown, from the signal to the last client closed; past it the process exits 1. */
  SHUTDOWN_TIMEOUT_MS: positiveInt(25_000),
})

/** Settings every service has. */
export const serviceSettings = (service: string, httpPort: number) => ({
  ...processSettings(service),
  HTTP_HOST: z.string().default('127.0.0.1'),
  HTTP_PORT: port(httpPort),
  /** The listener of `/internal/*` routes; defaults to HTTP_HOST. */
  INTERNAL_HOST: z.string().min(1).optional(),
  /** Defaults to HTTP_PORT + 100. */
  INTERNAL_PORT: portNumber.optional(),
  HTTP_BODY_LIMIT_BYTES: positiveInt(64 * 1024),
  /** How long a stopping service stays not-ready but still serving, so load balancers move away first. */
  SHUTDOWN_DRAIN_MS: nonNegativeInt(5_000),
})

type ListenerSettings = {
  readonly HTTP_HOST: string
  readonly HTTP_PORT: number
  readonly INTERNAL_HOST?: string | undefined
  readonly INTERNAL_PORT?: number | undefined
}

/** Where `/internal/*` routes listen: INTERNAL_HOST:INTERNAL_PORT, by default HTTP_HOST and HTTP_PORT + 100. */
export function internalListener(settings: ListenerSettings): { host: string; port: number } {
  const host = settings.INTERNAL_HOST ?? settings.HTTP_HOST
  if (settings.INTERNAL_PORT === undefined) {
    const port = settings.HTTP_PORT + 100
    if (port > 65535) {
      throw new SettingsError(
        'invalid setting INTERNAL_PORT (not set): HTTP_PORT + 100 is past 65535; set INTERNAL_PORT',
      )
    }
    return { host, port }
  }
  if (settings.INTERNAL_PORT === settings.HTTP_PORT) {
    throw new SettingsError(
      `invalid setting INTERNAL_PORT="${settings.INTERNAL_PORT}": expected another port than HTTP_PORT; internal routes never share the public listener`,
    )
  }
  return { host, port: settings.INTERNAL_PORT }
}

/** The drain period and the overall deadline of a shutdown; the drain must end before the deadline. */
export function shutdownTimings(settings: {
  readonly SHUTDOWN_DRAIN_MS: number
  readonly SHUTDOWN_TIMEOUT_MS: number
}) {
  if (settings.SHUTDOWN_DRAIN_MS >= settings.SHUTDOWN_TIMEOUT_MS) {
    throw new SettingsError(
      `invalid setting SHUTDOWN_DRAIN_MS="${settings.SHUTDOWN_DRAIN_MS}": expected less than SHUTDOWN_TIMEOUT_MS (${settings.SHUTDOWN_TIMEOUT_MS})`,
    )
  }
  return { drainMs: settings.SHUTDOWN_DRAIN_MS, deadlineMs: settings.SHUTDOWN_TIMEOUT_MS }
}

export const mysqlSettings = (database: string) => ({
  MYSQL_HOST: z.string().default('127.0.0.1'),
  MYSQL_PORT: port(3306),
  MYSQL_USER: z.string().default('timedeal'),
  MYSQL_PASSWORD: developmentDefault(z.string(), 'timedeal'),
  MYSQL_DATABASE: z
    .string()
    .regex(/^[A-Za-z0-9_]+$/, 'expected a database name (letters, digits, _)')
    .default(database),
  MYSQL_POOL_MAX: positiveInt(20),
})

const redisUrl = z.url({ protocol: /^rediss?$/, error: 'expected a redis:// or rediss:// URL' })
/** A comma-separated setting: entries trimmed, empty ones dropped, each checked by `entry`. */
export const commaList = <T extends z.ZodType<unknown, string>>(entry: T) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== ''),
    )
    .pipe(z.array(entry))

/** Browser origins (`scheme://host[:port]`), comma-separated: whom CORS or a WebSocket upgrade admits. */
export const originList = () =>
  commaList(z.url({ error: 'expected origins such as https://shop.example.com, comma-separated' }))

const redisNodeList = commaList(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port[,host:port...]'))
export const redisSettings = () => ({
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  /**
   * Seed nodes of a Redis Cluster (`host:port,...`). Set, it replaces REDIS_URL's single Redis;
   * empty or absent, REDIS_URL is used.
   */
  REDIS_CLUSTER_NODES: redisNodeList.default([]),
  /** Commands issued at once share one socket write (ioredis auto-pipelining; one Redis only). */
  REDIS_AUTO_PIPELINING: bool(true),
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
 * How a service's consumers retry and where a new consumer group starts. An event that fails
 * for an unavailable dependency is retried without limit, its backoff doubling from
 * `CONSUMER_RETRY_BACKOFF_MS` up to `CONSUMER_RETRY_MAX_BACKOFF_MS`; one that can never succeed
 * is dead-lettered after `CONSUMER_MAX_ATTEMPTS`. `consumeEvents` reads them as they are.
 */
export const consumerSettings = () => ({
  CONSUMER_MAX_ATTEMPTS: positiveInt(5),
  CONSUMER_RETRY_BACKOFF_MS: positiveInt(200),
  CONSUMER_RETRY_MAX_BACKOFF_MS: positiveInt(10_000),
  /** Where a brand-new group starts: the oldest record kept, or only what arrives from now on. */
  CONSUMER_FROM_BEGINNING: bool(true),
  /** The most events a batch consumer handles in one transaction. */
  CONSUMER_BATCH_MAX: positiveInt(200),
})

/**
 * Whether a service consumes one stream of events (`<EVENTS>_EVENTS_ENABLED`), under which
 * consumer group (`<EVENTS>_EVENTS_GROUP`, also the key of its inbox records), and how its
 * consumers retry (`consumerSettings()`).
 */
export function eventConsumerSettings<const Events extends string>(events: Events, group: string) {
  const stream = {
    [`${events}_EVENTS_ENABLED`]: bool(true),
    [`${events}_EVENTS_GROUP`]: z.string().min(1).default(group),
  } as Record<`${Events}_EVENTS_ENABLED`, ReturnType<typeof bool>> &
    Record<`${Events}_EVENTS_GROUP`, z.ZodDefault<z.ZodString>>
  return { ...stream, ...consumerSettings() }
}

/**
 * How the outbox relay publishes, and how long the database's inbox remembers handled ids
 * (the leading relay forgets older ones). `INBOX_RETENTION_MS` must stay longer than any
 * record can be read from a topic (see `DEFAULT_INBOX_RETENTION_MS`).
 */
export const relaySettings = () => ({
  OUTBOX_POLL_INTERVAL_MS: positiveInt(1_000),
  OUTBOX_BATCH_SIZE: positiveInt(500),
  /** How long a woken relay waits so a burst of commits leaves in one batch; 0 = at once. */
  OUTBOX_LINGER_MS: nonNegativeInt(2),
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
  INTERNAL_API_SECRET: developmentDefault(
    z.string().min(16, 'expected at least 16 characters'),
    'timedeal-dev-internal-secret',
  ),
})
