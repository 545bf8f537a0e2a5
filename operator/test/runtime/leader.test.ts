// Two operator processes against one API server: only the Lease holder reconciles; when it is
// killed (no chance to hand the Lease back) the other takes over once the Lease runs out.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import { eventually, rawKafka, testKafkaNames } from '@timedeal/platform/testing'
import { GROUP, VERSION } from '../../src/runtime/controller.ts'
import {
  adminKubeConfig,
  ensureCrds,
  freshNamespace,
  metricValue,
  type OperatorProcess,
  spawnOperator,
  waitReady,
} from './kube.ts'

type Topic = { status?: { conditions?: { type: string; status: string }[] } }

async function createTopic(kc: KubeConfig, namespace: string, name: string): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'kafkatopics',
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'KafkaTopic',
      metadata: { name },
      spec: { partitions: 1, deletionPolicy: 'Retain' },
    },
  })
}

async function waitTopicReady(kc: KubeConfig, namespace: string, name: string): Promise<void> {
  await eventually(
    async () => {
      const topic = (await kc
        .makeApiClient(CustomObjectsApi)
        .getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'kafkatopics', namespace, name })) as Topic
      return topic.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined
    },
    60_000,
    `KafkaTopic ${name} to be Ready`,
  )
}

/** Which replicas posted Events about a resource (their reporting instance). */
async function reporters(kc: KubeConfig, namespace: string, name: string): Promise<Set<string>> {
  const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace })
  return new Set(
    events.items.filter((event) => event.involvedObject.name === name).map((event) => event.reportingInstance ?? ''),
  )
}

const reconciles = async (operator: OperatorProcess) =>
  metricValue(await operator.metrics(), 'operator_reconciles_total', { kind: 'KafkaTopic' }) ?? 0
const leads = async (operator: OperatorProcess) => metricValue(await operator.metrics(), 'operator_leader') === 1

test('of two operator processes only the leader reconciles, and the other takes over when the leader is killed', {
  timeout: 180_000,
}, async () => {
  await ensureCrds()
  const kc = adminKubeConfig()
  const namespace = await freshNamespace(kc, 'leader')
  const kafka = rawKafka('operator-leader-test').admin()
  await kafka.connect()
  const names = [`first-${namespace.name.slice(-6)}`, `second-${namespace.name.slice(-6)}`]
  const replicas: Record<string, OperatorProcess> = {}
  try {
    for (const identity of ['replica-a', 'replica-b']) {
      replicas[identity] = await spawnOperator({
        WATCH_NAMESPACES: namespace.name,
        LEADER_ELECTION_NAMESPACE: namespace.name,
        LEADER_ELECTION_IDENTITY: identity,
      })
    }
    const [a, b] = [replicas['replica-a'] as OperatorProcess, replicas['replica-b'] as OperatorProcess]
    await Promise.all([waitReady(a), waitReady(b)])
    const leases = kc.makeApiClient(CoordinationV1Api)
    const holder = await eventually(
      async () =>
        (await leases.readNamespacedLease({ namespace: namespace.name, name: 'timedeal-operator' })).spec
          ?.holderIdentity || undefined,
      20_000,
      'a Lease holder',
    )
    const leader = replicas[holder] as OperatorProcess
    const standbyName = holder === 'replica-a' ? 'replica-b' : 'replica-a'
    const standby = replicas[standbyName] as OperatorProcess
    await eventually(async () => ((await leads(leader)) ? true : undefined), 10_000, 'the leader to report leading')
    assert.equal(await leads(standby), false, 'the standby does not lead')

    await createTopic(kc, namespace.name, names[0] as string)
    await waitTopicReady(kc, namespace.name, names[0] as string)
    // The count rises once the reconcile has also posted its Events, just after the status write.
    await eventually(async () => ((await reconciles(leader)) >= 1 ? true : undefined), 10_000, 'the leader to count it')
    assert.equal(await reconciles(standby), 0, 'the standby reconciled nothing')
    assert.deepEqual(await reporters(kc, namespace.name, names[0] as string), new Set([holder]))

    // Killed outright: the Lease is not handed back and must run out first.
    await leader.stop('SIGKILL')
    await eventually(async () => ((await leads(standby)) ? true : undefined), 30_000, 'the standby to take over')
    const lease = await leases.readNamespacedLease({ namespace: namespace.name, name: 'timedeal-operator' })
    assert.equal(lease.spec?.holderIdentity, standbyName)
    assert.ok((lease.spec?.leaseTransitions ?? 0) >= 1)

    await createTopic(kc, namespace.name, names[1] as string)
    await waitTopicReady(kc, namespace.name, names[1] as string)
    assert.deepEqual(await reporters(kc, namespace.name, names[1] as string), new Set([standbyName]))
    assert.ok((await kafka.listTopics()).includes(testKafkaNames.topic(names[1] as string)))

    // Stopped gracefully, the new leader hands the Lease back at once.
    assert.equal(await standby.stop('SIGTERM'), 0)
    const released = await leases.readNamespacedLease({ namespace: namespace.name, name: 'timedeal-operator' })
    assert.equal(released.spec?.holderIdentity ?? '', '', 'the Lease was handed back on shutdown')
  } finally {
    await Promise.all(Object.values(replicas).map((replica) => replica.stop('SIGKILL')))
    const topics = names.map((name) => testKafkaNames.topic(name))
    const existing = (await kafka.listTopics()).filter((topic) => topics.includes(topic))
    if (existing.length > 0) await kafka.deleteTopics({ topics: existing }).catch(() => undefined)
    await kafka.disconnect()
    await namespace.drop()
  }
})
