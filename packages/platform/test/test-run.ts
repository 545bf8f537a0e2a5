/**
 * One test run beside `make dev` on the same local servers. A run has an id; its Kafka topics and
 * consumer groups live behind a prefix made from that id, its service logs in a folder of its own,
 * and every process it starts gets settings that keep it away from the development databases and
 * Redis keys. `npm test` loads this file with `--test-global-setup`, so one run id (and one set of
 * topics) serves every test file; a suite run on its own gets a run of its own from `support.ts`.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { allTopics } from '@timedeal/contracts'
import { Kafka, logLevel } from 'kafkajs'
import { createLogger, routeProcessWarnings } from '../src/logger.ts'
import { startTestRedisCluster, stopTestRedisCluster } from './redis-cluster.ts'

const repoRoot = resolve(import.meta.dirname, '../../..')
const HOUR_MS = 3_600_000
/** A run's topics left behind (a run killed before its end) are deleted by a later run after this. */
const STALE_TOPICS_AFTER_MS = 6 * HOUR_MS
/** Log folders of earlier runs are kept this long. */
const KEEP_LOGS_MS = 7 * 24 * HOUR_MS

export interface TestRun {
  readonly id: string
  /** Put before every topic and consumer group of the run (`KAFKA_TOPIC_PREFIX`). */
  readonly kafkaPrefix: string
  /** Where the run's service logs go. */
  readonly logDir: string
}

/** `20261201T215334-a1b2c3`: sorts by start time and says when the run began. */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '')
  return `${stamp}-${randomBytes(3).toString('hex')}`
}

const RUN_PREFIX = /^test-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})-[0-9a-f]{6}\./

/** When the run a topic or group name belongs to began; undefined for names of no test run. */
export function runStartOf(name: string): Date | undefined {
  const match = RUN_PREFIX.exec(name)
  if (!match) return undefined
  const [, year, month, day, hour, minute, second] = match
  return new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}Z`)
}

const stateDir = () => resolve(repoRoot, process.env.TIMEDEAL_STATE_DIR ?? '.state')
export const testRunsDir = () => join(stateDir(), 'test-runs')

export function testRunOf(id: string, env: NodeJS.ProcessEnv = process.env): TestRun {
  return { id, kafkaPrefix: env.KAFKA_TOPIC_PREFIX ?? `test-${id}.`, logDir: join(testRunsDir(), id) }
}

/**
 * Settings every process of a test run gets unless the environment already sets them: services
 * spawned by tests inherit them, so one that a test forgot to configure still stays off the
 * development topics, groups, databases and keys.
 */
export function testRunDefaults(id: string): Record<string, string> {
  return {
    TIMEDEAL_TEST_RUN: id,
    KAFKA_TOPIC_PREFIX: `test-${id}.`,
    // Tests make databases of their own; a service not given one fails to start (unknown
    // database) instead of opening a development database.
    MYSQL_DATABASE: 'test_without_own_database',
    MONGO_DATABASE: 'timedeal_test',
    STOCK_KEY_PREFIX: 'test-stock',
    RATE_LIMIT_KEY_PREFIX: 'test:user:limit:',
  }
}

/** Joins the run named by `TIMEDEAL_TEST_RUN`, or starts one; `started` says which. */
export function joinOrStartTestRun(env: NodeJS.ProcessEnv = process.env): { run: TestRun; started: boolean } {
  const given = env.TIMEDEAL_TEST_RUN?.trim()
  const id = given || newRunId()
  for (const [name, value] of Object.entries(testRunDefaults(id))) {
    if (!env[name]?.trim()) env[name] = value
  }
  return { run: testRunOf(id, env), started: !given }
}

const brokersOf = (env: NodeJS.ProcessEnv) =>
  (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((broker) => broker.trim())

const rawKafka = (env: NodeJS.ProcessEnv) =>
  new Kafka({ clientId: 'test-run', brokers: brokersOf(env), logLevel: logLevel.NOTHING, retry: { retries: 2 } })

/** A topic deleted a moment ago can still be listed; deleting it again says it is unknown. */
const alreadyGone = (error: unknown) => {
  const { type, cause } = error as { type?: string; cause?: { type?: string } }
  return [type, cause?.type].includes('UNKNOWN_TOPIC_OR_PARTITION')
}

/** Runs `step` again while Kafka answers with a retriable error (a topic just created settling in). */
async function retrying<T>(step: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step()
    } catch (error) {
      const { retriable, cause } = error as { retriable?: boolean; cause?: { retriable?: boolean } }
      if (attempt >= attempts || !(retriable || cause?.retriable)) throw error
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt))
    }
  }
}

/** The operator's `apply` for KafkaTopic files, loaded at run time (the operator builds on this package). */
interface OperatorApply {
  applyTopicFiles(
    files: readonly string[],
    target: { brokers: readonly string[]; clientId: string; topicPrefix: string },
    print: (line: string) => void,
  ): Promise<number>
}
const operatorApply = new URL('../../../operator/src/cli/apply.ts', import.meta.url).href
/** The KafkaTopic manifests generated from the topic catalog (what `make dev` applies). */
const catalogManifests = join(repoRoot, 'operator', 'topics')

/**
 * Creates the catalog's topics (and dead-letter topics) behind the run's prefix through the
 * operator's `apply` and the generated KafkaTopic manifests, as `make dev` does, and waits until
 * each one answers: right after creation kafkajs can read metadata without the new topics, or
 * partitions without a known leader.
 */
export async function createRunTopics(run: TestRun, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const { applyTopicFiles } = (await import(operatorApply)) as OperatorApply
  const target = { brokers: brokersOf(env), clientId: 'test-run', topicPrefix: run.kafkaPrefix }
  await retrying(async () => {
    const lines: string[] = []
    const notReady = await applyTopicFiles([catalogManifests], target, (line) => lines.push(line))
    if (notReady > 0) {
      throw Object.assign(new Error(`the run's topics are not ready:\n${lines.join('\n')}`), { retriable: true })
    }
  }, 3)
  const raw = rawKafka(env).admin()
  await raw.connect()
  try {
    for (const spec of allTopics()) await retrying(() => raw.fetchTopicOffsets(`${run.kafkaPrefix}${spec.name}`))
  } finally {
    await raw.disconnect()
  }
}

/**
 * Deletes the topics and consumer groups `belongs` picks among those on the broker. Groups that
 * still have members stay (a run that is still going); they expire with their offsets.
 */
async function deleteKafkaNames(env: NodeJS.ProcessEnv, belongs: (name: string) => boolean): Promise<string[]> {
  const admin = rawKafka(env).admin()
  await admin.connect()
  try {
    const topics = (await admin.listTopics()).filter(belongs)
    await Promise.all(
      topics.map((topic) =>
        admin.deleteTopics({ topics: [topic] }).catch((error: unknown) => {
          if (!alreadyGone(error)) throw error
        }),
      ),
    )
    const groups = (await admin.listGroups()).groups.map((group) => group.groupId).filter(belongs)
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined)
    return topics
  } finally {
    await admin.disconnect()
  }
}

/** Deletes everything the run left on the broker: its topics and its consumer groups. */
export const deleteRunTopics = (run: TestRun, env: NodeJS.ProcessEnv = process.env): Promise<string[]> =>
  deleteKafkaNames(env, (name) => name.startsWith(run.kafkaPrefix))

/** Deletes what runs that began long ago left behind (killed before they could clean up). */
export function deleteStaleRuns(now = Date.now(), env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  removeOldLogFolders(now)
  return deleteKafkaNames(env, (name) => {
    const started = runStartOf(name)
    return started !== undefined && now - started.getTime() > STALE_TOPICS_AFTER_MS
  })
}

function removeOldLogFolders(now: number): void {
  let folders: string[]
  try {
    folders = readdirSync(testRunsDir())
  } catch {
    return
  }
  for (const folder of folders) {
    const path = join(testRunsDir(), folder)
    if (now - statSync(path).mtimeMs > KEEP_LOGS_MS) rmSync(path, { recursive: true, force: true })
  }
}

let globalRun: TestRun | undefined
let startedRedisCluster = false

/** `node --test --test-global-setup`: one run for every test file of this invocation. */
export async function globalSetup(): Promise<void> {
  routeProcessWarnings(createLogger('test-run', 'warn'))
  const { run } = joinOrStartTestRun()
  globalRun = run
  mkdirSync(run.logDir, { recursive: true })
  await deleteStaleRuns()
  await createRunTopics(run)
  // The stock suites run on one Redis and on a Redis Cluster; one cluster serves the whole run.
  startedRedisCluster = (await startTestRedisCluster()).started
  const logs = relative(process.cwd(), run.logDir)
  process.stdout.write(
    `test run ${run.id}: Kafka topics and groups under ${run.kafkaPrefix}, service logs in ${logs}/\n`,
  )
}

export async function globalTeardown(): Promise<void> {
  if (globalRun) await deleteRunTopics(globalRun)
  if (startedRedisCluster) await stopTestRedisCluster()
}
