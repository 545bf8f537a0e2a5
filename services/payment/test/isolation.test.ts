/**
 * A test run shares the local servers with `make dev`: it must leave nothing the development
 * services would consume, and never use their databases.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_ORDERS, TOPIC_PAYMENTS } from '@timedeal/contracts'
import {
  createTestDatabase,
  eventually,
  rawKafka,
  spawnService,
  testSettings,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { migrations } from '../src/adapters/migrations.ts'
import { orderPlaced } from './order-events.ts'
import { startGroupsAtEnd, testBus } from './support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const raw = rawKafka('isolation-test')

type Offsets = Map<number, bigint>

/** The end of each partition of `topic` right now; none when the topic does not exist. */
async function endsOf(topic: string): Promise<Offsets> {
  const admin = raw.admin()
  await admin.connect()
  try {
    if (!(await admin.listTopics()).includes(topic)) return new Map()
    return new Map((await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => [partition, BigInt(high)]))
  } finally {
    await admin.disconnect()
  }
}

/** The subjects of every record published on `topic` (a physical name) after `since`. */
async function subjectsSince(topic: string, since: Offsets): Promise<string[]> {
  const ends = await endsOf(topic)
  const grown = [...ends].filter(([partition, end]) => end > (since.get(partition) ?? 0n))
  if (grown.length === 0) return []
  const consumer = raw.consumer({ groupId: uniqueName('isolation-reader'), maxWaitTimeInMs: 100 })
  const subjects: string[] = []
  const reached = new Set<number>()
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const start = since.get(partition) ?? 0n
        const offset = BigInt(message.offset)
        if (offset >= start && offset < (ends.get(partition) ?? 0n)) {
          subjects.push(message.headers?.ce_subject?.toString() ?? '')
        }
        if (offset + 1n >= (ends.get(partition) ?? 0n)) reached.add(partition)
      },
    })
    for (const [partition] of grown) consumer.seek({ topic, partition, offset: String(since.get(partition) ?? 0n) })
    await eventually(
      async () => (grown.every(([partition]) => reached.has(partition)) ? true : undefined),
      30_000,
      `${topic} read to its end`,
    )
  } finally {
    await consumer.disconnect()
  }
  return subjects
}

describe('a test run beside make dev', () => {
  test("a spawned service and the test helpers use only the run's topics and groups, never those make dev consumes", async () => {
    const prefix = testSettings.KAFKA_TOPIC_PREFIX ?? ''
    const catalogTopics = [TOPIC_ORDERS, TOPIC_PAYMENTS]
    const devEnds = await Promise.all(catalogTopics.map(endsOf))
    const runEnds = await Promise.all(catalogTopics.map((topic) => endsOf(`${prefix}${topic}`)))
    const database = await createTestDatabase('payment_isolation', migrations)
    const groupId = uniqueName('payment-isolation')
    await startGroupsAtEnd([groupId], [TOPIC_ORDERS])
    const service = await spawnService(entry, { MYSQL_DATABASE: database.name, ORDER_EVENTS_GROUP: groupId })
    const publisher = await testBus('isolation-test').publisher()
    try {
      await waitUntilReady(service, 60_000)
      const placed = orderPlaced(1_000)
      await publisher.publish(TOPIC_ORDERS, [placed])
      // The spawned service consumed the helper's event and published its payment on the run's topic.
      await eventually(
        async () =>
          (await subjectsSince(`${prefix}${TOPIC_PAYMENTS}`, runEnds[1] ?? new Map())).includes(placed.data.orderId)
            ? true
            : undefined,
        30_000,
        `the payment of ${placed.data.orderId} on ${prefix}${TOPIC_PAYMENTS}`,
      )
      const onDevTopics = await Promise.all(
        catalogTopics.map(async (topic, index) =>
          (await subjectsSince(topic, devEnds[index] ?? new Map()))
            .filter((subject) => subject === placed.data.orderId)
            .map(() => topic),
        ),
      )
      assert.deepEqual(onDevTopics.flat(), [], 'events of this test on the topics make dev consumes')
      assert.match(prefix, /^test-/, 'the run has a topic prefix of its own')

      // The service's consumer group is the run's too: make dev's groups never see a test's member.
      const admin = raw.admin()
      await admin.connect()
      try {
        const [committed] = await admin.fetchOffsets({
          groupId: `${prefix}${groupId}`,
          topics: [`${prefix}${TOPIC_ORDERS}`],
        })
        assert.ok(
          committed?.partitions.some((partition) => Number(partition.offset) > 0),
          `group ${prefix}${groupId} committed on ${prefix}${TOPIC_ORDERS}`,
        )
      } finally {
        await admin.disconnect()
      }

      // Its log went to the run's folder, not to the test output.
      assert.ok(service.logFile && existsSync(service.logFile), `log file ${service.logFile}`)
      assert.match(service.logFile, /test-runs\/[^/]+\/payment-\d+\.log$/)
      assert.match(readFileSync(service.logFile, 'utf8'), /"service":"payment-service"/)
    } finally {
      await publisher.close()
      assert.equal(await service.stop('SIGTERM'), 0)
      await database.drop()
    }
  })

  test('a service spawned without a database of its own refuses to start instead of using the development one', async () => {
    const service = await spawnService(entry, { ORDER_EVENTS_ENABLED: 'false', MIGRATE_ON_START: 'false' })
    let timer: NodeJS.Timeout | undefined
    const ended = await Promise.race([
      service.exited,
      new Promise((resolve) => {
        timer = setTimeout(resolve, 20_000, 'running')
      }),
    ])
    clearTimeout(timer)
    if (ended === 'running') await service.stop('SIGKILL')
    assert.equal(ended, 1, 'the service exits with 1')
    assert.doesNotMatch(service.output().stderr, /timedeal_payment/)
    assert.match(service.output().stderr, /could not start: cannot reach MySQL/)
  })
})
