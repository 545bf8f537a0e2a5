// `timedeal-operator` as a process: clear refusals of bad commands and settings, and `run`
// serving health, readiness and metrics on OPERATOR_PORT until a graceful stop; `apply` on the
// samples.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { rawKafka, runCommand, testKafkaNames, uniqueName } from '@timedeal/platform/testing'
import {
  adminKubeConfig,
  ensureCrds,
  freshNamespace,
  metricValue,
  operatorEntry,
  repoRoot,
  spawnOperator,
  waitReady,
} from './kube.ts'

const operator = (args: string[], env: Record<string, string> = {}) =>
  runCommand(process.execPath, [operatorEntry, ...args], { env: { ...process.env, ...env } })

test('an unknown command, a bad argument or a bad setting is one clear line and a failing exit code', async () => {
  // Started side by side: each is a process of its own.
  const [unknown, noFiles, badFlag, deadline, namespaces] = await Promise.all([
    operator(['serve']),
    operator(['apply']),
    operator(['apply', '--force', '-f', 'x.yaml']),
    operator(['run'], { LEADER_ELECTION_RENEW_DEADLINE_MS: '20000' }),
    operator(['run'], { WATCH_NAMESPACES: 'shop, Not_A_Namespace' }),
  ])
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /unknown command 'serve': expected run or apply/)

  assert.equal(noFiles.code, 2)
  assert.match(noFiles.stderr, /apply needs at least one -f/)

  assert.equal(badFlag.code, 2)
  assert.match(badFlag.stderr, /--force/)

  assert.equal(deadline.code, 1)
  assert.match(
    deadline.stderr,
    /LEADER_ELECTION_RENEW_DEADLINE_MS="20000": expected less than LEADER_ELECTION_LEASE_DURATION_MS/,
  )
  assert.equal(deadline.stderr.trim().split('\n').length, 1, deadline.stderr)

  assert.equal(namespaces.code, 1)
  assert.match(namespaces.stderr, /WATCH_NAMESPACES/)
  assert.doesNotMatch(namespaces.stderr, /\n\s+at /, 'no stack trace')
})

test('run serves /healthz, /readyz and /metrics on OPERATOR_PORT and stops gracefully on SIGTERM', {
  timeout: 90_000,
}, async () => {
  await ensureCrds()
  const namespace = await freshNamespace(adminKubeConfig(), 'main')
  const running = await spawnOperator({ WATCH_NAMESPACES: namespace.name, LEADER_ELECTION_NAMESPACE: namespace.name })
  try {
    await waitReady(running)
    const health = await fetch(`${running.url}/healthz`)
    assert.equal(health.status, 200)
    const ready = (await (await fetch(`${running.url}/readyz`)).json()) as {
      checks: Record<string, { status: string }>
    }
    assert.equal(ready.checks.informers?.status, 'up')
    const metrics = await running.metrics()
    assert.equal(metricValue(metrics, 'operator_workqueue_depth'), 0)
    assert.notEqual(metricValue(metrics, 'operator_leader'), undefined)
    assert.match(metrics, /process_resident_memory_bytes/)
    assert.equal(await running.stop('SIGTERM'), 0)
    assert.match(running.output().stdout, /"msg":"stopped"/)
  } finally {
    await running.stop('SIGKILL')
    await namespace.drop()
  }
})

test('apply -f on the samples folder creates the sample topic and reports the sample warm-up Scheduled once, exit code 0', async () => {
  const topicPrefix = testKafkaNames.topic(`${uniqueName('samples')}.`)
  const kafka = rawKafka('operator-main-test').admin()
  await kafka.connect()
  try {
    const applied = await operator([
      'apply',
      '-f',
      join(repoRoot, 'operator', 'samples'),
      '--topic-prefix',
      topicPrefix,
    ])
    assert.equal(applied.code, 0, `${applied.stdout}${applied.stderr}`)
    const lines = applied.stdout.trim().split('\n')
    assert.equal(lines[0], 'applying 1 KafkaTopic and 1 StockWarmup resources')
    assert.ok(
      lines.includes(
        `kafkatopic/sample-orders: Ready ${topicPrefix}sample.orders (created topic ${topicPrefix}sample.orders with 6 partitions)`,
      ),
      applied.stdout,
    )
    // The opening in the sample is years away: Scheduled, said once, not "Scheduled Scheduled".
    assert.ok(lines.includes('stockwarmup/sample-noon-sale: Scheduled: warms at 2030-06-01T11:50:00Z'), applied.stdout)
    assert.doesNotMatch(applied.stdout, /Scheduled Scheduled/)
    assert.equal(lines.at(-1), 'done')
    assert.ok((await kafka.listTopics()).includes(`${topicPrefix}sample.orders`))
  } finally {
    const mine = (await kafka.listTopics()).filter((topic) => topic.startsWith(topicPrefix))
    if (mine.length > 0) await kafka.deleteTopics({ topics: mine })
    await kafka.disconnect()
  }
})
