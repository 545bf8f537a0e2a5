// The CRDs in crds/ on the real API server: kubectl applies them, `kubectl get timedeal` lists
// both kinds, the samples are accepted, and what the schemas and CEL rules forbid is refused
// by the API server itself, before any operator sees it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runCommand } from '@timedeal/platform/testing'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const stateDir = process.env.TIMEDEAL_STATE_DIR ?? join(repoRoot, '.state')
const kubeconfig = process.env.KUBECONFIG ?? join(stateDir, 'kubeconfig')
const kubectlPath = join(process.env.TIMEDEAL_CACHE ?? join(homedir(), '.cache', 'timedeal'), 'bin', 'kubectl')
const namespace = `crd-test-${randomBytes(3).toString('hex')}`

const kubectl = (args: string[], input?: string) =>
  runCommand(kubectlPath, ['--kubeconfig', kubeconfig, ...args], input === undefined ? {} : { input })

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input)
  assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout
}

/** kubectl must refuse the input, and its error must say why. */
async function refused(input: string, why: RegExp): Promise<void> {
  const result = await kubectl(['-n', namespace, 'apply', '-f', '-'], input)
  assert.notEqual(result.code, 0, `accepted:\n${input}`)
  assert.match(result.stderr, why)
}

before(async () => {
  assert.ok(
    existsSync(kubeconfig),
    `no kubeconfig at ${kubeconfig}: start the API server with hack/infra.sh up etcd kube`,
  )
  await kubectlOk(['apply', '-f', join(repoRoot, 'crds')])
  await kubectlOk([
    'wait',
    '--for=condition=Established',
    'crd/kafkatopics.timedeal.io',
    'crd/stockwarmups.timedeal.io',
    '--timeout=60s',
  ])
  await kubectlOk(['create', 'namespace', namespace])
})

after(async () => {
  // No controller-manager runs beside the local API server: empty and finalize the namespace here.
  await kubectl(['-n', namespace, 'delete', 'kafkatopics,stockwarmups', '--all', '--wait=false'])
  await kubectl(['delete', 'namespace', namespace, '--wait=false'])
  const finalize = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespace },
    spec: { finalizers: [] },
  })
  await kubectl(['replace', '--raw', `/api/v1/namespaces/${namespace}/finalize`, '-f', '-'], finalize)
})

const topic = (name: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: 'timedeal.io/v1alpha1', kind: 'KafkaTopic', metadata: { name }, spec })

const warmup = (name: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: 'timedeal.io/v1alpha1', kind: 'StockWarmup', metadata: { name }, spec })

test('the samples are accepted and `kubectl get timedeal` lists both kinds, with defaults filled in', async () => {
  await kubectlOk(['-n', namespace, 'apply', '-f', join(repoRoot, 'operator', 'samples')])
  const listed = await kubectlOk(['-n', namespace, 'get', 'timedeal', '-o', 'name'])
  assert.match(listed, /kafkatopic\.timedeal\.io\/sample-orders/)
  assert.match(listed, /stockwarmup\.timedeal\.io\/sample-noon-sale/)
  await kubectlOk(['-n', namespace, 'apply', '-f', '-'], topic('defaults', { partitions: 1 }))
  const stored = JSON.parse(await kubectlOk(['-n', namespace, 'get', 'kt', 'defaults', '-o', 'json'])) as {
    spec: Record<string, unknown>
  }
  assert.equal(stored.spec.deletionPolicy, 'Retain')
  assert.equal(stored.spec.replicationFactor, 1)
  const explained = await kubectlOk(['explain', 'kafkatopics.spec.deletionPolicy'])
  assert.match(explained, /Retain \(default\)\s+keeps it and holds no finalizer/)
})

test('refuses a KafkaTopic with fewer than one partition, a bad config key or an unknown deletion policy', async () => {
  await refused(topic('zero', { partitions: 0 }), /partitions/)
  await refused(
    topic('badkey', { partitions: 1, config: { 'Retention MS': '1' } }),
    /config keys are Kafka topic config names/,
  )
  await refused(topic('policy', { partitions: 1, deletionPolicy: 'Orphan' }), /deletionPolicy/)
  await refused(topic('badname', { partitions: 1, topicName: 'no spaces allowed' }), /topicName/)
})

test('refuses to change or add topicName once the topic is named (Kafka cannot rename)', async () => {
  await kubectlOk(['-n', namespace, 'apply', '-f', '-'], topic('named', { partitions: 1, topicName: 'first' }))
  await refused(topic('named', { partitions: 1, topicName: 'second' }), /topicName is immutable once set/)
  await refused(topic('named', { partitions: 1 }), /topicName is immutable once set/)
})

test('refuses a StockWarmup naming both or neither goods selection, a reversed window or a bad lead time', async () => {
  const window = { from: '2030-01-02T00:00:00Z', to: '2030-01-01T00:00:00Z' }
  await refused(
    warmup('both', { goods: { goodsIds: ['g1'], opensBetween: { from: window.to, to: window.from } } }),
    /exactly one of goodsIds and opensBetween/,
  )
  await refused(warmup('neither', { goods: {} }), /exactly one of goodsIds and opensBetween/)
  await refused(warmup('reversed', { goods: { opensBetween: window } }), /to must be after opensBetween.from/)
  await refused(
    warmup('wide', { goods: { opensBetween: { from: '2030-01-01T00:00:00Z', to: '2030-03-01T00:00:00Z' } } }),
    /at most 31 days/,
  )
  await refused(warmup('lead', { goods: { goodsIds: ['g1'] }, schedule: { leadTime: 'ten minutes' } }), /leadTime/)
  await refused(warmup('dupes', { goods: { goodsIds: ['g1', 'g1'] } }), /goodsIds/)
  await refused(warmup('mode', { goods: { goodsIds: ['g1'] }, policy: { mode: 'Always' } }), /mode/)
})
