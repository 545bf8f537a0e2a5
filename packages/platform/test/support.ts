/**
 * Helpers for tests that talk to the real local servers started by `hack/infra.sh up`.
 * Settings come from the same environment variables the services read. Under `node --test`, a
 * process joins the test run (`test-run.ts`): its Kafka names carry the run's prefix and its logs,
 * and those of the services it spawns, go to the run's folder, shown only for a failing test.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, relative, resolve } from 'node:path'
import { after } from 'node:test'
import { type CloudEvent, createEvent, topicNamespace } from '@timedeal/contracts'
import { Kafka, logLevel as kafkaLogLevel } from 'kafkajs'
import type { Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import { z } from 'zod'
import { createTokenVerifier, type TokenVerifier } from '../src/auth.ts'
import { createServiceApps, type ServiceRoutes } from '../src/http.ts'
import { createEventBus, type DeliveredEvent, type EventBus } from '../src/kafka.ts'
import { createLogger, type Logger, routeProcessWarnings } from '../src/logger.ts'
import { createMetricsRegistry } from '../src/metrics.ts'
import { createSequelize, type Migration, migrate } from '../src/mysql.ts'
import { createRedis, type Redis } from '../src/redis.ts'
import { kafkaSettings, loadSettings, logLevel, mongoSettings, mysqlSettings, redisSettings } from '../src/settings.ts'
import { freePort, listenOnFreePort, spawnCaptured } from './processes.ts'
import { type LogFile, logNameOf, openLogFile, reportLogsOfFailingTests, tailOf } from './test-logs.ts'
import { createRunTopics, deleteRunTopics, joinOrStartTestRun, type TestRun } from './test-run.ts'

export { type DelayProxy, startDelayProxy } from './delay-proxy.ts'
export {
  createPrivateKafka,
  type PrivateKafka,
  type PrivateKafkaOptions,
  privateKafkaAvailable,
} from './private-kafka.ts'
export {
  type CapturedProcess,
  type CommandResult,
  freePort,
  listenOnFreePort,
  runCommand,
  spawnCaptured,
  takenPort,
} from './processes.ts'

// Benchmarks use these helpers too; only a process of the test runner joins a test run.
const underTestRunner = process.env.NODE_TEST_CONTEXT !== undefined || process.execArgv.includes('--test')
const joined = underTestRunner ? joinOrStartTestRun() : undefined

/** The test run this process belongs to (undefined outside `node --test`). */
export const testRun: TestRun | undefined = joined?.run

export const testSettings = loadSettings(
  z.object({
    ...mysqlSettings('timedeal_test'),
    ...redisSettings(),
    ...kafkaSettings(),
    ...mongoSettings('timedeal_test'),
    TEST_LOG_LEVEL: logLevel().default('warn'),
  }),
)

/** `services/payment/test/flow.test.ts` → `test-payment-flow`. */
const testFileLogName = () => {
  const file = process.argv[1] ?? 'test'
  const owner = basename(resolve(file, '../..'))
  return `test-${owner}-${basename(file).replace(/(\.test)?\.[cm]?[jt]s$/, '')}`
}

/** The test process's own log, opened at its first line. */
function testFileLog(run: TestRun): { write(line: string): void } {
  let file: LogFile | undefined
  return {
    write: (line) => {
      file ??= openLogFile(run.logDir, testFileLogName())
      file.write(Buffer.from(line))
    },
  }
}

export const testLogger: Logger = createLogger(
  'test',
  testSettings.TEST_LOG_LEVEL,
  testRun ? testFileLog(testRun) : undefined,
)
routeProcessWarnings(testLogger)

if (testRun) reportLogsOfFailingTests()

/** The run's Kafka names: tests that use kafkajs directly put topics and groups through it. */
export const testKafkaNames = topicNamespace(testSettings.KAFKA_TOPIC_PREFIX)

let runTopics: Promise<void> | undefined
let runUsedKafka = false
/**
 * Makes sure the catalog's topics exist behind the run's prefix (`npm test` creates them up front;
 * a suite run on its own creates them on first use and deletes them when its tests are done).
 */
function ensureRunTopics(brokers: readonly string[]): Promise<void> {
  if (!testRun || brokers.join(',') !== testSettings.KAFKA_BROKERS.join(',')) return Promise.resolve()
  runUsedKafka = true
  runTopics ??= createRunTopics(testRun)
  return runTopics
}

/**
 * Creates the catalog's topics behind the run's prefix on another broker (a test's private one)
 * through the operator's `apply`, as the run's topics are created on the shared broker.
 */
export async function createRunTopicsOn(brokers: readonly string[]): Promise<void> {
  if (!testRun) throw new Error('createRunTopicsOn runs under node --test only (it needs the test run)')
  await createRunTopics(testRun, { ...process.env, KAFKA_BROKERS: brokers.join(',') })
}

if (testRun && joined?.started) {
  const run = testRun
  after(async () => {
    if (!runUsedKafka) return
    await deleteRunTopics(run).catch((error: unknown) =>
      testLogger.warn({ err: error }, 'could not delete the topics of this test run; a later run will'),
    )
  })
}

/** An event bus on the run's topics and groups, as the services under test use them. */
export function testEventBus(clientId: string, brokers: readonly string[] = testSettings.KAFKA_BROKERS): EventBus {
  const bus = createEventBus({ brokers, clientId, logger: testLogger, topicPrefix: testSettings.KAFKA_TOPIC_PREFIX })
  return {
    ...bus,
    publisher: async () => {
      await ensureRunTopics(brokers)
      return bus.publisher()
    },
    subscribe: async (options) => {
      await ensureRunTopics(brokers)
      return bus.subscribe(options)
    },
  }
}

/**
 * Topics of a suite's own on `bus` (three partitions each), a publisher, and every event
 * published to them, recorded from the beginning by a consumer group of the suite's own;
 * `close` undoes it all.
 */
export async function recordedTopics(bus: EventBus, topics: readonly string[], group: string) {
  const admin = await bus.admin()
  await admin.ensureTopics(topics.map((name) => ({ name, partitions: 3, replicationFactor: 1, config: {} })))
  const publisher = await bus.publisher()
  const received: DeliveredEvent[] = []
  const subscription = await bus.subscribe({
    groupId: uniqueName(group),
    topics: [...topics],
    fromBeginning: true,
    handle: async (delivery) => {
      received.push(delivery)
    },
  })
  await subscription.joined
  return {
    publisher,
    received,
    async close() {
      await subscription.close()
      await publisher.close()
      await admin.deleteTopics([...topics])
      await admin.close()
    },
  }
}

/**
 * A plain kafkajs client, for what the event bus does not do (offsets, raw records). It takes
 * names as they are on the broker: put catalog names through {@link testKafkaNames}.
 */
export const rawKafka = (clientId: string, brokers: readonly string[] = testSettings.KAFKA_BROKERS): Kafka =>
  new Kafka({ clientId, brokers: [...brokers], logLevel: kafkaLogLevel.NOTHING })

/** A name no other test (or earlier run) uses: tests never share rows, keys or topics. */
export const uniqueName = (prefix: string): string =>
  `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      lastError = error
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError })
}

export interface ServiceProcess {
  /** The public listener (`HTTP_PORT`). */
  readonly url: string
  /** The listener of `/internal/*` routes (`INTERNAL_PORT`). */
  readonly internalUrl: string
  readonly output: () => { stdout: string; stderr: string }
  /** Where its stdout and stderr are written in the test run's folder (none outside `node --test`). */
  readonly logFile: string | undefined
  /** Sends a signal and resolves with the exit code once the process ended. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
  readonly exited: Promise<number | null>
}

/**
 * Runs a service's `main.ts` as a real process on free ports (public and internal), as `make dev`
 * would. It stops without a drain period unless `env` asks for one: nothing balances load here.
 */
export async function spawnService(
  entry: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<ServiceProcess> {
  const port = env.HTTP_PORT ? Number(env.HTTP_PORT) : await freePort()
  let internalPort = env.INTERNAL_PORT ? Number(env.INTERNAL_PORT) : await freePort()
  while (internalPort === port) internalPort = await freePort()
  // Its output goes to the run's folder, not to the test output: shown when a test fails.
  const log = testRun ? openLogFile(testRun.logDir, logNameOf(entry)) : undefined
  runUsedKafka = true
  const started = spawnCaptured(process.execPath, [entry, ...args], {
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      SHUTDOWN_DRAIN_MS: '0',
      ...env,
      HTTP_PORT: String(port),
      INTERNAL_PORT: String(internalPort),
    },
    onOutput: (chunk) => log?.write(chunk),
  })
  const { child, exited } = started
  let exitedAt: number | undefined
  child.once('exit', () => {
    exitedAt = Date.now()
  })
  // Output can still arrive after the exit; the file closes once both streams have ended.
  child.once('close', () => log?.close(exitedAt))
  return {
    logFile: log?.path,
    url: `http://127.0.0.1:${port}`,
    internalUrl: `http://127.0.0.1:${internalPort}`,
    output: started.output,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
}

/**
 * Waits until the process answers `/readyz` with 200; fails early if it exits. The failure
 * carries the end of the process's log.
 */
export async function waitUntilReady(service: ServiceProcess, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  let exitCode: number | null | undefined
  void service.exited.then((code) => {
    exitCode = code
  })
  const logEnd = () =>
    service.logFile ? `\n--- ${relative(process.cwd(), service.logFile)} (last lines)\n${tailOf(service.logFile)}` : ''
  const ready = await eventually(
    async () => {
      if (exitCode !== undefined) return 'exited' as const
      const response = await fetch(`${service.url}/readyz`)
      return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined
    },
    timeoutMs,
    `${service.url}/readyz`,
  ).catch((error: Error) => {
    throw new Error(`${error.message}${logEnd()}`, { cause: error.cause })
  })
  if (ready === 'exited') throw new Error(`service exited with ${exitCode}: ${service.output().stderr}${logEnd()}`)
  return ready
}

/** {@link spawnService}, then {@link waitUntilReady}; a process that never gets ready is killed. */
export async function spawnReadyService(
  entry: string,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const service = await spawnService(entry, env)
  try {
    await waitUntilReady(service, timeoutMs)
  } catch (error) {
    await service.stop('SIGKILL')
    throw error
  }
  return service
}

export interface CallOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string
  /** Sent as JSON (a string as it is). */
  readonly body?: unknown
  readonly headers?: Record<string, string>
}

/** A request to an app built in-process (no listener), as a client would send it. */
export function callApp(
  app: { request(path: string, init: RequestInit): Response | Promise<Response> },
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  let body: string | undefined
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json'
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
  }
  return Promise.resolve(app.request(path, { method, headers, body }))
}

export interface InProcessService<S> {
  readonly service: S
  readonly metrics: Registry
  /** The public listener's app. */
  readonly app: ReturnType<typeof createServiceApps>['publicApp']
  /** The internal listener's app, where the service has internal routes. */
  readonly internalApp: ReturnType<typeof createServiceApps>['internalApp']
}

/**
 * A service built in this process the way its `main.ts` builds it: `start` gets the test logger
 * and a metrics registry of its own, and the apps of both listeners are built around its routes.
 */
export async function startInProcess<S extends ServiceRoutes>(
  name: string,
  start: (deps: { logger: Logger; metrics: Registry }) => Promise<S>,
): Promise<InProcessService<S>> {
  const metrics = createMetricsRegistry(name)
  const service = await start({ logger: testLogger, metrics })
  const { publicApp, internalApp } = createServiceApps({ service: name, logger: testLogger, metrics }, service)
  return { service, metrics, app: publicApp, internalApp }
}

export interface TestIssuer {
  readonly jwksUrl: string
  readonly issuer: string
  readonly audience: string
  /** Signs an access token for `sub` with the current key. */
  sign(
    claims: { sub: string; role: string },
    /** `expiresIn: null` leaves out `exp`, as a careless issuer would. */
    options?: { expiresIn?: string | number | null; audience?: string },
  ): Promise<string>
  /** Makes a new current key; the JWKS then lists only the new one. */
  rotate(): Promise<void>
  /** A verifier that trusts this issuer, as a service configured for it would build. */
  verifier(): TokenVerifier
  close(): Promise<void>
}

/**
 * A stand-in token issuer for tests of services other than user-service: an EdDSA key pair and
 * its JWKS served over real HTTP, so the verifier's fetching and caching run for real.
 */
export async function startTestIssuer(): Promise<TestIssuer> {
  const { createServer } = await import('node:http')
  const { exportJWK, generateKeyPair, SignJWT } = await import('jose')
  const issuer = 'timedeal-user'
  const audience = 'timedeal'
  let current = await newKey()
  async function newKey() {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true })
    const kid = randomBytes(6).toString('hex')
    return { privateKey, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } }
  }
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ keys: [current.jwk] }))
  })
  const port = await listenOnFreePort(server)
  const jwksUrl = `http://127.0.0.1:${port}/.well-known/jwks.json`
  return {
    jwksUrl,
    issuer,
    audience,
    sign: (claims, options = {}) => {
      const token = new SignJWT({ role: claims.role })
        .setProtectedHeader({ alg: 'EdDSA', kid: current.kid, typ: 'at+jwt' })
        .setSubject(claims.sub)
        .setIssuer(issuer)
        .setAudience(options.audience ?? audience)
        .setIssuedAt()
      if (options.expiresIn !== null) token.setExpirationTime(options.expiresIn ?? '5m')
      return token.sign(current.privateKey)
    },
    rotate: async () => {
      current = await newKey()
    },
    verifier: () => createTokenVerifier({ jwksUrl, issuer, audience }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** A Sequelize client on a database of the local MariaDB, as tests use it. */
export function connectTestMysql(database: string, poolMax = 6): Sequelize {
  return createSequelize({
    host: testSettings.MYSQL_HOST,
    port: testSettings.MYSQL_PORT,
    user: testSettings.MYSQL_USER,
    password: testSettings.MYSQL_PASSWORD,
    database,
    poolMax,
    logger: testLogger,
  })
}

/** A client of the local Redis, as tests use it; keys of a test's own go under a prefix of its own. */
export const connectTestRedis = (connectionName?: string): Redis =>
  createRedis({ url: testSettings.REDIS_URL, logger: testLogger, ...(connectionName ? { connectionName } : {}) })

export interface TestDatabase {
  readonly name: string
  readonly sequelize: Sequelize
  /** Drops the database and closes the client. */
  drop(): Promise<void>
}

/** A database of the test's own (`timedeal_test_<prefix>_…`), migrated, to drop afterwards. */
export async function createTestDatabase(prefix: string, migrations: readonly Migration[] = []): Promise<TestDatabase> {
  const name = uniqueName(`timedeal_test_${prefix}`)
  // A database every user can open, so no development database is ever touched.
  const bootstrap = connectTestMysql('information_schema', 1)
  try {
    await bootstrap.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`)
  } finally {
    await bootstrap.close()
  }
  const sequelize = connectTestMysql(name)
  await migrate(sequelize, migrations, testLogger)
  return {
    name,
    sequelize,
    async drop() {
      await sequelize.query(`DROP DATABASE \`${name}\``)
      await sequelize.close()
    },
  }
}

export interface ServiceUnderTest {
  /** A database of its own, migrated with the given migrations (a spawned service migrates its own). */
  readonly database: TestDatabase
  /** A consumer group of its own, starting at the current end of the topics it consumes. */
  readonly groupId: string
  /** A Redis key prefix of its own. */
  readonly redisPrefix: string
  /** The settings that point the service at all of the above and at the test's token issuer. */
  readonly env: Record<string, string>
  /** Drops its database and deletes its Redis keys. */
  release(): Promise<void>
}

/**
 * What one service under test owns, so tests never see each other's rows, keys or events:
 * `consumes` names the setting of its consumer group and the topics the group reads;
 * `redisPrefixSetting` the setting of its key prefix, where it uses Redis.
 */
export async function prepareServiceUnderTest(options: {
  name: string
  migrations?: readonly Migration[]
  issuer?: TestIssuer
  consumes?: { groupSetting: string; topics: readonly string[] }
  redisPrefixSetting?: string
}): Promise<ServiceUnderTest> {
  const groupId = uniqueName(`${options.name}-test`)
  const redisPrefix = uniqueName(`test-${options.name}`)
  const database = await createTestDatabase(options.name, options.migrations)
  try {
    if (options.consumes) await startGroupsAtEnd([groupId], options.consumes.topics)
  } catch (error) {
    await database.drop()
    throw error
  }
  const env: Record<string, string> = { MYSQL_DATABASE: database.name }
  if (options.issuer) env.JWT_JWKS_URL = options.issuer.jwksUrl
  if (options.consumes) env[options.consumes.groupSetting] = groupId
  if (options.redisPrefixSetting) env[options.redisPrefixSetting] = redisPrefix
  return {
    database,
    groupId,
    redisPrefix,
    env,
    async release() {
      await database.drop()
      if (!options.redisPrefixSetting) return
      const redis = connectTestRedis()
      try {
        await deleteRedisKeys(redis, redisPrefix)
      } finally {
        await redis.quit()
      }
    },
  }
}

/** Deletes every Redis key under `prefix:` (SCAN, so it never blocks the server). */
export async function deleteRedisKeys(redis: import('ioredis').Redis, prefix: string): Promise<void> {
  const primaries = redis.isCluster
    ? (redis as unknown as { nodes(role: 'master'): import('ioredis').Redis[] }).nodes('master')
    : [redis]
  for (const primary of primaries) {
    let cursor = '0'
    do {
      const [next, keys] = await primary.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      // One key per command: a node's keys span many slots, and a cluster refuses a DEL across slots.
      if (keys.length > 0) {
        const pipeline = primary.pipeline()
        for (const key of keys) pipeline.unlink(key)
        await pipeline.exec()
      }
      cursor = next
    } while (cursor !== '0')
  }
}

/**
 * Commits the current end of `topics` (catalog names; the run's prefix is applied here, as the
 * event bus applies it) as the offsets of new consumer groups, so each reads
 * exactly what is published from now on: not the topic's history (other runs' events) and not
 * a moment late (a group that joins "at latest" can miss the first events).
 */
export async function startGroupsAtEnd(
  groups: readonly string[],
  topics: readonly string[],
  brokers: readonly string[] = testSettings.KAFKA_BROKERS,
): Promise<void> {
  await ensureRunTopics(brokers)
  // Catalog names in, the run's names on the broker.
  const brokerTopics = topics.map(testKafkaNames.topic)
  const brokerGroups = groups.map(testKafkaNames.group)
  const kafka = rawKafka('test-offsets', brokers)
  const admin = kafka.admin()
  await admin.connect()
  try {
    const ends = (
      await Promise.all(
        brokerTopics.map(async (topic) =>
          (await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => ({ topic, partition, offset: high })),
        ),
      )
    ).flat()
    // A member that fetches nothing commits the offsets and leaves: quicker than the admin's
    // setOffsets, which waits out a whole fetch.
    await Promise.all(
      brokerGroups.map(async (groupId) => {
        const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 })
        const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve))
        await consumer.connect()
        try {
          await consumer.subscribe({ topics: brokerTopics })
          await consumer.run({ autoCommit: false, eachMessage: async () => {} })
          consumer.pause(brokerTopics.map((topic) => ({ topic })))
          await joined
          await consumer.commitOffsets(ends)
        } finally {
          await consumer.disconnect()
        }
      }),
    )
  } finally {
    await admin.disconnect()
  }
}

/**
 * Waits until every group has committed an offset past `record`: each has handled it (and
 * everything before it in its partition). Groups and topic are catalog names.
 */
export async function waitForGroupsPast(
  groups: readonly string[],
  record: { topic: string; partition: number; offset: string },
  timeoutMs = 30_000,
): Promise<void> {
  const admin = rawKafka('test-progress').admin()
  await admin.connect()
  try {
    for (const groupId of groups) {
      await eventually(
        async () => {
          const [topic] = await admin.fetchOffsets({
            groupId: testKafkaNames.group(groupId),
            topics: [testKafkaNames.topic(record.topic)],
          })
          const committed = topic?.partitions.find((partition) => partition.partition === record.partition)?.offset
          return committed !== undefined && BigInt(committed) > BigInt(record.offset) ? true : undefined
        },
        timeoutMs,
        `group ${groupId} past ${record.topic}/${record.partition}@${record.offset}`,
      )
    }
  } finally {
    await admin.disconnect()
  }
}

export interface PrivateRedis {
  readonly url: string
  /** Kills it with SIGKILL, as a crash would; its folder keeps what it had written. */
  kill(): Promise<void>
  /** Starts it again (after {@link kill}) on the same port and folder. */
  restart(): Promise<void>
  /** Kills it and deletes its folder. */
  stop(): Promise<void>
}

/**
 * A Redis of the test's own on a free port and in a folder of its own (the shared one serves
 * everyone else), append-only with the given fsync policy, for tests that crash it.
 */
export async function startPrivateRedis(appendfsync: 'always' | 'everysec'): Promise<PrivateRedis> {
  const dir = await mkdtemp(resolve(tmpdir(), 'timedeal-redis-'))
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir]
  args.push('--appendonly', 'yes', '--appendfsync', appendfsync, '--save', '', '--daemonize', 'no')
  const start = async () => {
    const started = spawn('redis-server', args, { stdio: 'ignore' })
    // Its connection errors while it starts are expected.
    const probe = createRedis({ url, logger: createLogger('private-redis-probe', 'silent') })
    try {
      await eventually(async () => ((await probe.ping()) === 'PONG' ? true : undefined), 15_000, 'the private Redis')
    } catch (error) {
      started.kill('SIGKILL')
      throw error
    } finally {
      probe.disconnect()
    }
    return started
  }
  let server = await start()
  const kill = async () => {
    if (server.exitCode !== null || server.signalCode !== null) return
    server.kill('SIGKILL')
    await once(server, 'exit')
  }
  return {
    url,
    kill,
    restart: async () => {
      await kill()
      server = await start()
    },
    stop: async () => {
      await kill()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface DeadLetter {
  readonly headers: Record<string, string>
}

/**
 * Reads a dead-letter topic (a catalog name) from its current end, keeping records by their
 * event id; `onLetter` hears each one as it arrives.
 */
export async function watchDeadLetters(
  topic: string,
  onLetter?: (eventId: string, letter: DeadLetter) => void,
): Promise<{ byId: Map<string, DeadLetter>; close(): Promise<void> }> {
  const groupId = uniqueName('test-dlq')
  await startGroupsAtEnd([groupId], [topic])
  const consumer = rawKafka('test-dlq').consumer({ groupId: testKafkaNames.group(groupId), maxWaitTimeInMs: 200 })
  const byId = new Map<string, DeadLetter>()
  const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve))
  await consumer.connect()
  await consumer.subscribe({ topics: [testKafkaNames.topic(topic)] })
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))
      if (!headers.ce_id) return
      byId.set(headers.ce_id, { headers })
      onLetter?.(headers.ce_id, { headers })
    },
  })
  await joined
  return { byId, close: () => consumer.disconnect() }
}

export interface EventWatch {
  /** Every event that arrived, in arrival order. */
  readonly events: CloudEvent[]
  /** How many times each event id arrived. */
  readonly seen: Map<string, number>
  close(): Promise<void>
}

/** Keeps every event arriving on `topic` (a catalog name) from now on, or from its beginning, in a group of its own. */
export async function watchEvents(
  topic: string,
  brokers: readonly string[] = testSettings.KAFKA_BROKERS,
  fromBeginning = false,
): Promise<EventWatch> {
  const groupId = uniqueName('test-watch')
  if (!fromBeginning) await startGroupsAtEnd([groupId], [topic], brokers)
  const events: CloudEvent[] = []
  const seen = new Map<string, number>()
  const subscription = await testEventBus('test-watch', brokers).subscribe({
    groupId,
    topics: [topic],
    fromBeginning: true,
    handle: async ({ event }) => {
      events.push(event)
      seen.set(event.id, (seen.get(event.id) ?? 0) + 1)
    },
  })
  await subscription.joined
  return { events, seen, close: () => subscription.close() }
}

/** An OrderPaid event for order `orderId`, its ids numbered by `sequence`: a stand-in payload for outbox tests. */
export const testOrderPaid = (orderId: string, sequence: number): CloudEvent =>
  createEvent('orderPaid', {
    source: '/test',
    subject: orderId,
    data: {
      orderId,
      buyerId: 'b',
      goodsId: 'g',
      reservationId: `r-${sequence}`,
      quantity: 1,
      paymentId: `p-${sequence}`,
      paidAt: new Date().toISOString(),
    },
  })
