// The operator's own RBAC: a ServiceAccount bound to exactly the rules the chart ships
// (charts/timedeal/files/operator-clusterrole-rules.yaml: the ClusterRole's `rules`, and the
// `leaseRules` of a Role in the namespace of its Lease) runs the operator with its own token. The
// operator does its whole job with it, and the token is refused everything else.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  ApiException,
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1PolicyRule,
} from '@kubernetes/client-node'
import { eventually, rawKafka, testKafkaNames } from '@timedeal/platform/testing'
import { parse } from 'yaml'
import { FINALIZER, GROUP, VERSION } from '../../src/runtime/controller.ts'
import {
  adminKubeConfig,
  ensureCrds,
  freshNamespace,
  kubeconfigWithToken,
  metricValue,
  repoRoot,
  spawnOperator,
  waitReady,
} from './kube.ts'

const rulesFile = join(repoRoot, 'charts', 'timedeal', 'files', 'operator-clusterrole-rules.yaml')

type Topic = {
  metadata: { name: string; finalizers?: string[] }
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason: string }[] }
}

async function refusal(call: Promise<unknown>): Promise<number> {
  try {
    await call
  } catch (error) {
    if (error instanceof ApiException) return error.code
    throw error
  }
  return 200
}

test('the operator with exactly the chart ClusterRole and Lease Role reconciles, writes status, finalizers, Events and its Lease, and is refused anything more', {
  timeout: 180_000,
}, async () => {
  await ensureCrds()
  const kc = adminKubeConfig()
  const namespace = await freshNamespace(kc, 'rbac')
  const core = kc.makeApiClient(CoreV1Api)
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api)
  const custom = kc.makeApiClient(CustomObjectsApi)
  const roleName = `timedeal-operator-${namespace.name}`
  const foreignLease = `forged-${namespace.name}`
  const kafka = rawKafka('operator-rbac-test').admin()
  await kafka.connect()
  let operator: Awaited<ReturnType<typeof spawnOperator>> | undefined
  try {
    const { rules, leaseRules } = parse(readFileSync(rulesFile, 'utf8')) as {
      rules: V1PolicyRule[]
      leaseRules: V1PolicyRule[]
    }
    assert.ok(rules.length > 0)
    assert.ok(leaseRules?.length > 0, 'the Role for the Lease has rules')
    await core.createNamespacedServiceAccount({
      namespace: namespace.name,
      body: { metadata: { name: 'timedeal-operator' } },
    })
    await rbac.createClusterRole({ body: { metadata: { name: roleName }, rules } })
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: roleName },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
        subjects: [{ kind: 'ServiceAccount', name: 'timedeal-operator', namespace: namespace.name }],
      },
    })
    // Leader election: a Role in the Lease's namespace (the release's), not the whole cluster.
    await rbac.createNamespacedRole({
      namespace: namespace.name,
      body: { metadata: { name: 'timedeal-operator-lease' }, rules: leaseRules },
    })
    await rbac.createNamespacedRoleBinding({
      namespace: namespace.name,
      body: {
        metadata: { name: 'timedeal-operator-lease' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'timedeal-operator-lease' },
        subjects: [{ kind: 'ServiceAccount', name: 'timedeal-operator', namespace: namespace.name }],
      },
    })
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      namespace: namespace.name,
      name: 'timedeal-operator',
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    })
    const token = tokenRequest.status?.token
    assert.ok(token)
    const asOperator = kubeconfigWithToken(kc, 'timedeal-operator', token)

    operator = await spawnOperator({
      KUBECONFIG: asOperator.file,
      WATCH_NAMESPACES: namespace.name,
      LEADER_ELECTION_NAMESPACE: namespace.name,
    })
    await waitReady(operator)

    // It works: a KafkaTopic gets its topic, its finalizer, a Ready status and an Event.
    const name = `rbac-${namespace.name.slice(-6)}`
    const topicOnBroker = testKafkaNames.topic(name)
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'kafkatopics',
      namespace: namespace.name,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'KafkaTopic',
        metadata: { name },
        spec: { partitions: 2, deletionPolicy: 'Delete' },
      },
    })
    const reconciled = await eventually(
      async () => {
        const topic = (await custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: 'kafkatopics',
          namespace: namespace.name,
          name,
        })) as Topic
        const ready = topic.status?.conditions?.find((condition) => condition.type === 'Ready')
        return ready?.status === 'True' && topic.metadata.finalizers?.includes(FINALIZER) ? topic : undefined
      },
      60_000,
      'the KafkaTopic to be Ready with the finalizer',
    )
    assert.equal(reconciled.status?.observedGeneration, 1)
    assert.ok((await kafka.listTopics()).includes(topicOnBroker), 'the topic exists on the broker')
    await eventually(
      async () => {
        const events = await core.listNamespacedEvent({ namespace: namespace.name })
        return events.items.some((event) => event.involvedObject.name === name) ? true : undefined
      },
      15_000,
      'an Event about the KafkaTopic',
    )
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace: namespace.name, name: 'timedeal-operator' })
    assert.ok(lease.spec?.holderIdentity, 'the operator holds its Lease')
    const running = operator
    const metrics = await eventually(
      async () => {
        const text = await running.metrics()
        const count = metricValue(text, 'operator_reconciles_total', { kind: 'KafkaTopic', result: 'success' }) ?? 0
        return count >= 1 ? text : undefined
      },
      10_000,
      'a successful reconcile in the metrics',
    )
    assert.equal(metricValue(metrics, 'operator_leader'), 1)

    // Deleting the resource: the operator deletes the topic and lets go of the finalizer.
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'kafkatopics',
      namespace: namespace.name,
      name,
    })
    await eventually(
      async () => {
        const gone = await custom
          .getNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: 'kafkatopics',
            namespace: namespace.name,
            name,
          })
          .then(
            () => false,
            (error: unknown) => error instanceof ApiException && error.code === 404,
          )
        return gone ? true : undefined
      },
      60_000,
      'the KafkaTopic to be gone',
    )
    assert.ok(!(await kafka.listTopics()).includes(topicOnBroker), 'the topic is deleted on the broker')
    const log = operator.output()
    assert.doesNotMatch(`${log.stdout}${log.stderr}`, /forbidden/i, 'the operator was never refused a call it makes')

    // A Secret is readable by name (a StockWarmup's source), but nothing more.
    await core.createNamespacedSecret({
      namespace: namespace.name,
      body: { metadata: { name: 'warmup-source' }, stringData: { MYSQL_HOST: '127.0.0.1' } },
    })
    const as = asOperator.kubeConfig
    assert.equal(
      (await as.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: namespace.name, name: 'warmup-source' }))
        .metadata?.name,
      'warmup-source',
    )

    // Refused anything more.
    const customAs = as.makeApiClient(CustomObjectsApi)
    const coreAs = as.makeApiClient(CoreV1Api)
    const target = { group: GROUP, version: VERSION, plural: 'kafkatopics', namespace: namespace.name }
    const refusals: Record<string, number> = {
      'list secrets': await refusal(coreAs.listNamespacedSecret({ namespace: namespace.name })),
      'create a KafkaTopic': await refusal(
        customAs.createNamespacedCustomObject({
          ...target,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'KafkaTopic',
            metadata: { name: 'forged' },
            spec: { partitions: 1 },
          },
        }),
      ),
      'delete KafkaTopics': await refusal(customAs.deleteCollectionNamespacedCustomObject(target)),
      'update a StockWarmup': await refusal(
        customAs.replaceNamespacedCustomObject({ ...target, plural: 'stockwarmups', name: 'any', body: {} }),
      ),
      'list namespaces': await refusal(coreAs.listNamespace()),
      'list pods': await refusal(coreAs.listNamespacedPod({ namespace: namespace.name })),
      'create a secret': await refusal(
        coreAs.createNamespacedSecret({ namespace: namespace.name, body: { metadata: { name: 'forged' } } }),
      ),
      'delete a Lease': await refusal(
        as
          .makeApiClient(CoordinationV1Api)
          .deleteNamespacedLease({ namespace: namespace.name, name: 'timedeal-operator' }),
      ),
      'create a Lease in another namespace': await refusal(
        as.makeApiClient(CoordinationV1Api).createNamespacedLease({
          namespace: 'default',
          body: { metadata: { name: foreignLease }, spec: { holderIdentity: 'forged' } },
        }),
      ),
      'read a Lease in another namespace': await refusal(
        as.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: 'default', name: foreignLease }),
      ),
      'bind a ClusterRole': await refusal(
        as.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
          body: {
            metadata: { name: `${roleName}-escalate` },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
            subjects: [{ kind: 'ServiceAccount', name: 'timedeal-operator', namespace: namespace.name }],
          },
        }),
      ),
      'delete a CRD': await refusal(
        as.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: `kafkatopics.${GROUP}` }),
      ),
    }
    assert.deepEqual(
      Object.entries(refusals).filter(([, code]) => code !== 403),
      [],
      'every call beyond the rules is refused with 403',
    )
  } finally {
    await operator?.stop()
    await kafka.disconnect()
    await kc
      .makeApiClient(CoordinationV1Api)
      .deleteNamespacedLease({ namespace: 'default', name: foreignLease })
      .catch(() => undefined)
    await rbac.deleteClusterRoleBinding({ name: roleName }).catch(() => undefined)
    await rbac.deleteClusterRole({ name: roleName }).catch(() => undefined)
    await namespace.drop()
  }
})
