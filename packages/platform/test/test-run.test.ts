import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { TOPIC_ORDERS } from '@timedeal/contracts'
import { Kafka, logLevel } from 'kafkajs'
import { eventually, testSettings } from './support.ts'
import { createRunTopics, deleteRunTopics, deleteStaleRuns, newRunId, runStartOf, testRunOf } from './test-run.ts'

const HOUR_MS = 3_600_000

async function topicsOnBroker(): Promise<string[]> {
  const admin = new Kafka({
    clientId: 'test-run-test',
    brokers: [...testSettings.KAFKA_BROKERS],
    logLevel: logLevel.NOTHING,
  }).admin()
  await admin.connect()
  try {
    return await admin.listTopics()
  } finally {
    await admin.disconnect()
  }
}

describe('test runs on the shared broker', () => {
  test('a run id says when the run began; names of no run have no start', () => {
    const id = newRunId(new Date('2026-03-04T05:06:07.890Z'))
    assert.match(id, /^20260304T050607-[0-9a-f]{6}$/)
    assert.deepEqual(runStartOf(`test-${id}.${TOPIC_ORDERS}`), new Date('2026-03-04T05:06:07Z'))
    assert.equal(runStartOf(TOPIC_ORDERS), undefined)
    assert.equal(runStartOf('test-stock'), undefined)
  })

  test("a run's topics are gone after its end, and a run killed long ago is cleaned up by a later one", async () => {
    const old = testRunOf(newRunId(new Date(Date.now() - 7 * HOUR_MS)), {})
    const recent = testRunOf(newRunId(new Date(Date.now() - HOUR_MS)), {})
    await Promise.all([createRunTopics(old), createRunTopics(recent)])
    try {
      const ofRun = (run: typeof old, topics: string[]) => topics.filter((topic) => topic.startsWith(run.kafkaPrefix))
      assert.ok(ofRun(old, await topicsOnBroker()).includes(`${old.kafkaPrefix}${TOPIC_ORDERS}`))

      // Deleting a topic takes a moment to show in the broker's metadata.
      const gone = (run: typeof old) =>
        eventually(
          async () => (ofRun(run, await topicsOnBroker()).length === 0 ? true : undefined),
          15_000,
          `${run.kafkaPrefix}* deleted`,
        )

      await deleteStaleRuns()
      await gone(old)
      assert.equal(ofRun(recent, await topicsOnBroker()).length, 6, 'a run that may still be going keeps its topics')

      await deleteRunTopics(recent)
      await gone(recent)
    } finally {
      await Promise.allSettled([deleteRunTopics(old), deleteRunTopics(recent)])
    }
  })
})
