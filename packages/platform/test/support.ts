/**
 * Helpers for tests that talk to the real local servers started by `hack/infra.sh up`.
 * Settings come from the same environment variables the services read.
 */
import { randomBytes } from 'node:crypto'
import type { Sequelize } from 'sequelize'
import { z } from 'zod'
import { createTokenVerifier, type TokenVerifier } from '../src/auth.ts'
import { createLogger, type Logger, routeProcessWarnings } from '../src/logger.ts'
import { createSequelize, type Migration, migrate } from '../src/mysql.ts'
import { kafkaSettings, loadSettings, logLevel, mongoSettings, mysqlSettings, redisSettings } from '../src/settings.ts'

export const testSettings = loadSettings(
  z.object({
    ...mysqlSettings('timedeal_test'),
    ...redisSettings(),
    ...kafkaSettings(),
    ...mongoSettings('timedeal_test'),
    TEST_LOG_LEVEL: logLevel().default('warn'),
  }),
)

export const testLogger: Logger = createLogger('test', testSettings.TEST_LOG_LEVEL)
routeProcessWarnings(testLogger)

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

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net')
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

export interface ServiceProcess {
  readonly url: string
  readonly output: () => { stdout: string; stderr: string }
  /** Sends a signal and resolves with the exit code once the process ended. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
  readonly exited: Promise<number | null>
}

/** Runs a service's `main.ts` as a real process on a free port, as `make dev` would. */
export async function spawnService(
  entry: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<ServiceProcess> {
  const { spawn } = await import('node:child_process')
  const port = env.HTTP_PORT ? Number(env.HTTP_PORT) : await freePort()
  const child = spawn(process.execPath, [entry, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env, HTTP_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => ({ stdout, stderr }),
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
}

/** Waits until the process answers `/readyz` with 200; fails early if it exits. */
export async function waitUntilReady(service: ServiceProcess, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  let exitCode: number | null | undefined
  void service.exited.then((code) => {
    exitCode = code
  })
  return eventually(
    async () => {
      if (exitCode !== undefined) {
        throw new Error(`service exited with ${exitCode}: ${service.output().stderr}`)
      }
      const response = await fetch(`${service.url}/readyz`)
      return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined
    },
    timeoutMs,
    `${service.url}/readyz`,
  )
}

export interface TestIssuer {
  readonly jwksUrl: string
  readonly issuer: string
  readonly audience: string
  /** Signs an access token for `sub` with the current key. */
  sign(
    claims: { sub: string; role: string },
    options?: { expiresIn?: string | number; audience?: string },
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const jwksUrl = `http://127.0.0.1:${port}/.well-known/jwks.json`
  return {
    jwksUrl,
    issuer,
    audience,
    sign: (claims, options = {}) =>
      new SignJWT({ role: claims.role })
        .setProtectedHeader({ alg: 'EdDSA', kid: current.kid, typ: 'at+jwt' })
        .setSubject(claims.sub)
        .setIssuer(issuer)
        .setAudience(options.audience ?? audience)
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '5m')
        .sign(current.privateKey),
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

export interface TestDatabase {
  readonly name: string
  readonly sequelize: Sequelize
  /** Drops the database and closes the client. */
  drop(): Promise<void>
}

/** A database of the test's own (`timedeal_test_<prefix>_…`), migrated, to drop afterwards. */
export async function createTestDatabase(prefix: string, migrations: readonly Migration[] = []): Promise<TestDatabase> {
  const name = uniqueName(`timedeal_test_${prefix}`)
  // Any database the test user can reach serves to create the new one.
  const bootstrap = connectTestMysql('timedeal_user', 1)
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

/** Deletes every Redis key under `prefix:` (SCAN, so it never blocks the server). */
export async function deleteRedisKeys(redis: import('ioredis').Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    if (keys.length > 0) await redis.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

/**
 * Commits the current end of `topics` as the offsets of new consumer groups, so each reads
 * exactly what is published from now on: not the topic's history (other runs' events) and not
 * a moment late (a group that joins "at latest" can miss the first events).
 */
export async function startGroupsAtEnd(
  groups: readonly string[],
  topics: readonly string[],
  brokers: readonly string[] = testSettings.KAFKA_BROKERS,
): Promise<void> {
  const { Kafka, logLevel } = await import('kafkajs')
  const kafka = new Kafka({ clientId: 'test-offsets', brokers: [...brokers], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const ends = (
      await Promise.all(
        topics.map(async (topic) =>
          (await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => ({ topic, partition, offset: high })),
        ),
      )
    ).flat()
    // A member that fetches nothing commits the offsets and leaves: quicker than the admin's
    // setOffsets, which waits out a whole fetch.
    await Promise.all(
      groups.map(async (groupId) => {
        const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 })
        const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve))
        await consumer.connect()
        try {
          await consumer.subscribe({ topics: [...topics] })
          await consumer.run({ autoCommit: false, eachMessage: async () => {} })
          consumer.pause(topics.map((topic) => ({ topic })))
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
