// The Helm charts, without a cluster: helm lint and helm template with the development, the
// production-like and refused values; every rendered object (CRDs included) accepted by the
// real kube-apiserver `make test` runs (server-side dry run); the operator's RBAC checked by
// impersonating its ServiceAccount. Needs `hack/infra.sh up etcd kube`.
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { allTopics } from '@timedeal/contracts'
import { catalogTopicResource } from '@timedeal/operator/topic-catalog'
import { loadSettings, runtimeSettings } from '@timedeal/platform'
import { runCommand } from '@timedeal/platform/testing'
import { driftedChartFiles, repoRoot } from '../chart-files.ts'

const cacheDir = process.env.TIMEDEAL_CACHE ?? join(homedir(), '.cache', 'timedeal')
const helm = join(cacheDir, 'bin', 'helm')
const kubectl = join(cacheDir, 'bin', 'kubectl')
const kubeconfig = process.env.KUBECONFIG ?? join(repoRoot, '.state', 'kubeconfig')
const fixtures = join(repoRoot, 'hack', 'test', 'fixtures', 'charts')
const developmentValues = join(repoRoot, 'charts', 'timedeal', 'values-development.yaml')
const productionValues = join(fixtures, 'production-values.yaml')
const badValues = join(fixtures, 'bad-values.yaml')
const rulesFile = join('files', 'operator-clusterrole-rules.yaml')

interface KubeObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> }
  spec?: Record<string, unknown>
  data?: Record<string, string>
  rules?: { apiGroups?: string[]; resources?: string[]; verbs: string[] }[]
  roleRef?: unknown
  subjects?: unknown
}

interface Container {
  name: string
  securityContext?: {
    runAsNonRoot?: boolean
    readOnlyRootFilesystem?: boolean
    allowPrivilegeEscalation?: boolean
    capabilities?: { drop?: string[]; add?: string[] }
  }
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  readinessProbe?: unknown
  livenessProbe?: unknown
}

interface ContainerEnv {
  args?: string[]
  envFrom?: { configMapRef: { name: string } }[]
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { key: string } } }[]
}

interface NetworkRule {
  ports: { port: string | number }[]
  from?: { podSelector?: { matchLabels?: Record<string, string> } }[]
}

interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean }
  containers: Container[]
  initContainers?: Container[]
}

const namespace = `charts-${process.pid}-${Date.now().toString(36)}`
let workDir = ''
let timedealChart = ''
let infraChart = ''

/** Rendered manifests and the API server's dry-run answer for them, one per values set. */
interface Rendered {
  readonly manifests: string
  readonly objects: KubeObject[]
}
const rendered = new Map<string, Promise<Rendered>>()

/** Renders a chart and dry-runs it once per values set, however many tests look at it. */
function renderOnce(name: string, chart: () => string, ...args: string[]): Promise<Rendered> {
  let result = rendered.get(name)
  if (!result) {
    result = render(chart(), ...args).then(async (manifests) => ({ manifests, objects: await dryRun(manifests) }))
    rendered.set(name, result)
  }
  return result
}
// The example StockWarmup is off by default (it holds `helm --wait`); rendered here to check it too.
const development = () =>
  renderOnce('development', () => timedealChart, '-f', developmentValues, '--set', 'stockWarmupExample.enabled=true')
const production = () => renderOnce('production', () => timedealChart, '-f', productionValues)
const withoutGateway = () =>
  renderOnce('without-gateway', () => timedealChart, '-f', productionValues, '--set', 'services.gateway.enabled=false')
const infrastructure = () => renderOnce('infra', () => infraChart)

const find = (objects: KubeObject[], kind: string, nameEnd = ''): KubeObject => {
  const found = objects.find((object) => object.kind === kind && object.metadata.name.endsWith(nameEnd))
  assert.ok(found, `no ${kind} named *${nameEnd} rendered`)
  return found
}

async function run(command: string, args: string[], input?: string) {
  const result = await runCommand(command, args, {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    ...(input === undefined ? {} : { input }),
  })
  return result
}

async function ok(command: string, args: string[], input?: string): Promise<string> {
  const result = await run(command, args, input)
  assert.equal(result.code, 0, `${command} ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`)
  return result.stdout
}

const render = (chart: string, ...args: string[]) =>
  ok(helm, ['template', 'timedeal', chart, '--namespace', namespace, '--include-crds', ...args])

/** The objects as the API server would store them: a server-side dry run in the test namespace. */
async function dryRun(manifests: string): Promise<KubeObject[]> {
  const out = await ok(kubectl, ['apply', '--dry-run=server', '-n', namespace, '-o', 'json', '-f', '-'], manifests)
  const parsed = JSON.parse(out) as KubeObject | { kind: 'List'; items: KubeObject[] }
  return 'items' in parsed ? parsed.items : [parsed]
}

function podSpecOf(object: KubeObject): PodSpec | undefined {
  const spec = object.spec as { template?: { spec?: PodSpec } } | undefined
  return spec?.template?.spec
}

/** The chart as a user gets it, plus a stand-in for the operator's rules while they are absent. */
function prepareCharts(): void {
  workDir = mkdtempSync(join(tmpdir(), 'timedeal-charts-'))
  timedealChart = join(workDir, 'timedeal')
  infraChart = join(workDir, 'timedeal-infra')
  cpSync(join(repoRoot, 'charts', 'timedeal'), timedealChart, { recursive: true })
  cpSync(join(repoRoot, 'charts', 'timedeal-infra'), infraChart, { recursive: true })
  if (!existsSync(join(timedealChart, rulesFile))) {
    cpSync(join(fixtures, 'operator-clusterrole-rules.yaml'), join(timedealChart, rulesFile))
  }
}

/**
 * No controller-manager runs beside the local API server: the test deletes what it made and
 * finalizes its namespace itself, as the namespace controller would.
 */
async function dropNamespace(): Promise<void> {
  await run(kubectl, ['delete', 'clusterrolebinding,clusterrole', '-l', `timedeal.test/namespace=${namespace}`])
  await run(kubectl, ['delete', 'serviceaccount', '--all', '-n', namespace])
  await run(kubectl, ['delete', 'namespace', namespace, '--wait=false'])
  const finalize = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespace },
    spec: { finalizers: [] },
  })
  await run(kubectl, ['replace', '--raw', `/api/v1/namespaces/${namespace}/finalize`, '-f', '-'], finalize)
}

interface Access {
  readonly verb: string
  readonly group: string
  readonly resource: string
  readonly subresource?: string
}

function access(verb: string, group: string, resource: string): Access {
  const [name = resource, subresource] = resource.split('/')
  return { verb, group, resource: name, ...(subresource ? { subresource } : {}) }
}

const describeAccess = ({ verb, group, resource, subresource }: Access) =>
  `${verb} ${resource}${subresource ? `/${subresource}` : ''}${group ? `.${group}` : ''}`

/**
 * Asks the API server, as the impersonated identity, whether each access is allowed: one
 * SelfSubjectAccessReview per access, all in one request.
 */
async function reviewAs(as: string, accesses: readonly Access[], inNamespace = namespace): Promise<boolean[]> {
  const items = accesses.map(({ verb, group, resource, subresource }) => ({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: {
      resourceAttributes: { namespace: inNamespace, verb, group, resource, ...(subresource ? { subresource } : {}) },
    },
  }))
  const out = await ok(
    kubectl,
    ['create', '-o', 'json', '-f', '-', as],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  )
  // kubectl prints the created reviews one JSON document after another.
  const reviews = out
    .replace(/\n}\n{/g, '\n}\u0000{')
    .split('\u0000')
    .map((document) => JSON.parse(document) as { status: { allowed: boolean } })
  assert.equal(reviews.length, accesses.length)
  return reviews.map((review) => review.status.allowed)
}

/** The chart's CRDs (`helm show crds`, the files of crds/), applied for real: custom resources need them. */
async function establishCrds(): Promise<void> {
  const crds = await ok(helm, ['show', 'crds', timedealChart])
  assert.match(crds, /kafkatopics\.timedeal\.io/)
  assert.match(crds, /stockwarmups\.timedeal\.io/)
  // The same files `kubectl apply -f crds/` installs, so applying them again changes nothing.
  await ok(kubectl, ['apply', '-f', '-'], crds)
  await ok(kubectl, [
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    'crd/kafkatopics.timedeal.io',
    'crd/stockwarmups.timedeal.io',
  ])
}

describe('charts', () => {
  before(async () => {
    assert.ok(existsSync(helm) && existsSync(kubectl), 'helm and kubectl are missing: run hack/kube/tools.sh')
    const ready = await run(kubectl, ['get', '--raw', '/readyz'])
    assert.equal(ready.stdout, 'ok', `no API server for ${kubeconfig}: start it with hack/infra.sh up etcd kube`)
    prepareCharts()
    await ok(kubectl, ['create', 'namespace', namespace])
    await establishCrds()
    // The renders and dry runs are independent: all four start at once.
    await Promise.all([development(), production(), withoutGateway(), infrastructure()])
  })

  after(async () => {
    await dropNamespace()
    rmSync(workDir, { recursive: true, force: true })
  })

  test('the chart never ships generated files that drifted from the topic catalog or crds/', () => {
    assert.deepEqual(driftedChartFiles(), [], 'run hack/run.sh node hack/chart-files.ts')
  })

  test('helm lint passes for both charts with development and production-like values', async () => {
    await ok(helm, ['lint', '--strict', timedealChart, '-f', developmentValues])
    await ok(helm, ['lint', '--strict', timedealChart, '-f', productionValues])
    await ok(helm, ['lint', '--strict', infraChart])
  })

  test('installing without real secrets fails with a message that says what to set', async () => {
    const result = await run(helm, ['template', 'timedeal', timedealChart])
    assert.notEqual(result.code, 0, 'the default values must not render development secrets')
    assert.match(result.stderr, /no secrets given/)
    assert.match(result.stderr, /secrets\.existingSecret/)
    assert.match(result.stderr, /INTERNAL_API_SECRET, MYSQL_PASSWORD, DATA_KEYS and SMTP_URL/)
    assert.match(result.stderr, /values-development\.yaml/)
  })

  test('a bad values file is refused by the schema, naming every wrong value', async () => {
    const result = await run(helm, ['template', 'timedeal', timedealChart, '-f', badValues])
    assert.notEqual(result.code, 0)
    for (const path of [
      '/logLevel',
      '/serviceDefaults/replicas',
      '/services/order/port',
      '/kafka/brokers',
      '/ingress/host',
      '/kafkaTopics/deletionPolicy',
    ]) {
      assert.ok(result.stderr.includes(`'${path}'`), `the schema does not name ${path}:\n${result.stderr}`)
    }
    assert.match(result.stderr, /additional properties 'replicaCount' not allowed/)
  })

  test('the chart CRDs are established on the real API server and their custom resources accepted', async () => {
    const objects = (await development()).objects
    assert.ok(objects.some((object) => object.kind === 'CustomResourceDefinition'))
    assert.ok(objects.some((object) => object.kind === 'KafkaTopic'))
    assert.ok(objects.some((object) => object.kind === 'StockWarmup'))
  })

  test('every object of a development install is accepted by the API server', async () => {
    const { objects } = await development()
    const kinds = new Set(objects.map((object) => object.kind))
    for (const kind of [
      'Deployment',
      'Service',
      'ConfigMap',
      'Secret',
      'Job',
      'KafkaTopic',
      'StockWarmup',
      'Ingress',
    ]) {
      assert.ok(kinds.has(kind), `no ${kind} rendered`)
    }
    assert.equal(find(objects, 'Job', '-seed').metadata.annotations?.['helm.sh/hook'], 'post-install,post-upgrade')
    const gateway = find(objects, 'Service', '-gateway').spec as { type: string; ports: { nodePort?: number }[] }
    assert.equal(gateway.type, 'NodePort')
    assert.equal(gateway.ports[0]?.nodePort, 30080, 'the node port kind publishes on the host')
  })

  test('every object of a production-like install is accepted, with no development value in it', async () => {
    const { manifests, objects } = await production()
    assert.equal(
      objects.filter((object) => object.kind === 'Secret').length,
      0,
      'an existing Secret is used, none made',
    )
    assert.ok(!manifests.includes('timedeal-dev-internal-secret'))
    const shared = find(objects, 'ConfigMap', '-shared')
    assert.equal(shared.data?.TIMEDEAL_ENV, 'production')
    assert.equal(shared.data?.MIGRATE_ON_START, 'false', 'replicas never migrate')
    const topics = objects.filter((object) => object.kind === 'KafkaTopic')
    assert.deepEqual(
      topics.map((topic) => [topic.metadata.name, topic.spec?.topicName, topic.spec?.replicationFactor]).sort(),
      allTopics()
        .map((topic) => [catalogTopicResource(topic).metadata.name, topic.name, 3])
        .sort(),
      'one KafkaTopic per catalog topic, named as the operator names them',
    )
    const migrations = find(objects, 'Job', '-migrations')
    assert.equal(migrations.metadata.annotations?.['helm.sh/hook'], 'pre-install,pre-upgrade')
    const pod = podSpecOf(migrations) as PodSpec
    const migrating = [...(pod.initContainers ?? []), ...pod.containers].map((container) => container.name)
    assert.deepEqual(migrating, ['migrate-user', 'migrate-goods', 'migrate-order', 'migrate-payment', 'migrate-chat'])
    const ingress = find(objects, 'Ingress').spec as { tls: { secretName: string }[] }
    assert.equal(ingress.tls[0]?.secretName, 'shop-example-com-tls', 'TLS from the Secret named in the values')
  })

  test('a production-like install gives every deployable the settings its own production check demands, and none it never reads', async () => {
    const { objects } = await production()
    const configMaps = new Map(
      objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]),
    )
    // Stand-ins for what the existing Secret holds: real-looking, never a development default.
    const secretValues: Record<string, string> = {
      INTERNAL_API_SECRET: 'a-production-internal-secret-0123456789',
      MYSQL_PASSWORD: 'a-production-password',
      DATA_KEYS: `prod1:${Buffer.alloc(32, 7).toString('base64')}`,
      SMTP_URL: 'smtps://mailer:password@mail.example.com:465',
    }
    const deployments = objects.filter((object) => object.kind === 'Deployment')
    assert.equal(deployments.length, 7, 'six services and the operator')
    const readBySome = new Set<string>(Object.keys(runtimeSettings.shape))
    for (const deployment of deployments) {
      const container = (podSpecOf(deployment) as PodSpec & { containers: ContainerEnv[] })
        .containers[0] as ContainerEnv
      const env: Record<string, string> = {}
      for (const source of container.envFrom ?? []) Object.assign(env, configMaps.get(source.configMapRef.name))
      for (const entry of container.env ?? []) {
        if (entry.value !== undefined) env[entry.name] = entry.value
        const key = entry.valueFrom?.secretKeyRef?.key
        if (key && key in secretValues) env[entry.name] = secretValues[key] as string
      }
      const deployable = container.args?.[0] as string
      const module =
        deployable === 'operator' ? '../../operator/src/settings.ts' : `../../services/${deployable}/src/settings.ts`
      const { settingsSchema } = (await import(module)) as { settingsSchema: Parameters<typeof loadSettings>[0] }
      assert.equal(env.TIMEDEAL_ENV, 'production', `${deployable} runs in production mode`)
      assert.doesNotThrow(() => loadSettings(settingsSchema, env), `${deployable} refuses the chart's settings`)
      // Least privilege: a Secret key reaches only a deployable that has such a setting. And no
      // setting of its own is one it never reads (a removed setting left behind in the chart).
      const ownConfig = (container.envFrom ?? [])
        .map((source) => source.configMapRef.name)
        .filter((name) => !name.endsWith('-shared'))
        .flatMap((name) => Object.keys(configMaps.get(name) ?? {}))
      for (const name of [...(container.env ?? []).map((entry) => entry.name), ...ownConfig]) {
        assert.ok(name in settingsSchema.shape, `${deployable} is given ${name}, which it never reads`)
      }
      for (const name of Object.keys(settingsSchema.shape)) readBySome.add(name)
    }
    const shared = [...configMaps].filter(([name]) => name.endsWith('-shared')).flatMap(([, data]) => Object.keys(data))
    assert.ok(shared.length > 0, 'a shared ConfigMap')
    for (const name of shared) assert.ok(readBySome.has(name), `the shared ConfigMap sets ${name}, which nothing reads`)
  })

  test('every pod runs as non-root on a read-only root filesystem, without privileges, with resources', async () => {
    const objects = [...(await production()).objects, ...(await infrastructure()).objects]
    const workloads = objects.filter((object) => ['Deployment', 'StatefulSet', 'Job'].includes(object.kind))
    assert.ok(workloads.length >= 12, `only ${workloads.length} workloads rendered`)
    for (const workload of workloads) {
      const pod = podSpecOf(workload) as PodSpec
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${workload.metadata.name}: runAsNonRoot`)
      for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
        const where = `${workload.kind} ${workload.metadata.name}, container ${container.name}`
        assert.equal(container.securityContext?.readOnlyRootFilesystem, true, `${where}: read-only root`)
        assert.equal(container.securityContext?.allowPrivilegeEscalation, false, `${where}: privilege escalation`)
        assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL'], `${where}: capabilities`)
        assert.ok(container.resources?.requests?.memory && container.resources.limits?.memory, `${where}: resources`)
        if (workload.kind !== 'Job') {
          assert.ok(container.readinessProbe && container.livenessProbe, `${where}: probes`)
        }
      }
    }
  })

  test('the Ingress routes the public APIs and /ws/chat, never an internal route or port', async () => {
    for (const install of [production, withoutGateway]) {
      const ingress = find((await install()).objects, 'Ingress')
      const paths = (
        ingress.spec as {
          rules: { http: { paths: { path: string; backend: { service: { port: { name: string } } } }[] } }[]
        }
      ).rules.flatMap((rule) => rule.http.paths)
      const routed = paths.map((path) => path.path)
      assert.ok(routed.includes('/ws/chat'), `no /ws/chat route in ${routed.join(' ')}`)
      assert.ok(
        routed.some((path) => path.startsWith('/api')),
        `no /api route in ${routed.join(' ')}`,
      )
      assert.ok(!routed.some((path) => path.includes('internal')), `an internal route: ${routed.join(' ')}`)
      assert.ok(
        paths.every((path) => path.backend.service.port.name === 'http'),
        'every backend is a public listener',
      )
    }
  })

  test('an internal port admits only pods of the release, a public port anyone', async () => {
    const { objects } = await production()
    const policies = objects.filter((object) => object.kind === 'NetworkPolicy')
    assert.equal(policies.length, 6, 'one per service')
    for (const policy of policies) {
      const rules = (policy.spec as { ingress: NetworkRule[] }).ingress
      for (const rule of rules) {
        const ports = rule.ports.map((port) => port.port)
        if (ports.includes('internal')) {
          assert.deepEqual(
            rule.from?.map((peer) => peer.podSelector?.matchLabels),
            [{ 'app.kubernetes.io/name': 'timedeal', 'app.kubernetes.io/instance': 'timedeal' }],
          )
        } else {
          assert.deepEqual(ports, ['http'], `${policy.metadata.name} opens only the public port to everyone`)
        }
      }
    }
  })

  test("the operator's ServiceAccount may do what the operator needs and is refused anything more", async () => {
    const rbac = (await development()).objects.filter((object) =>
      ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(object.kind),
    )
    assert.deepEqual(
      rbac.map((object) => object.kind).sort(),
      ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount'],
      'a ServiceAccount, a ClusterRole and its binding, a Role for the Lease and its binding',
    )
    const items = rbac.map(({ apiVersion, kind, metadata, rules, roleRef, subjects }) => ({
      apiVersion,
      kind,
      metadata: { name: metadata.name, labels: { 'timedeal.test/namespace': namespace } },
      ...(rules ? { rules } : {}),
      ...(roleRef ? { roleRef, subjects } : {}),
    }))
    await ok(kubectl, ['apply', '-n', namespace, '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }))
    const account = find(rbac, 'ServiceAccount').metadata.name
    const as = `--as=system:serviceaccount:${namespace}:${account}`

    // Every rule the chart grants, verb by verb, then what the operator never needs.
    const grantedBy = (kind: string): Access[] =>
      (find(rbac, kind).rules ?? []).flatMap((rule) =>
        (rule.resources ?? []).flatMap((resource) =>
          rule.verbs.map((verb) => access(verb, rule.apiGroups?.[0] ?? '', resource)),
        ),
      )
    const leases = grantedBy('Role')
    const granted: Access[] = [...grantedBy('ClusterRole'), ...leases]
    assert.ok(granted.length > leases.length, 'the ClusterRole grants nothing')
    assert.ok(leases.length > 0 && leases.every(({ resource }) => resource === 'leases'), 'the Role grants Leases only')
    assert.ok(
      !grantedBy('ClusterRole').some(({ resource }) => resource === 'leases'),
      'Leases are not granted cluster-wide',
    )
    const refused: Access[] = [
      access('create', 'apps', 'deployments'),
      access('delete', '', 'pods'),
      access('create', '', 'pods/exec'),
      access('create', '', 'secrets'),
      access('list', '', 'nodes'),
      access('create', 'rbac.authorization.k8s.io', 'clusterrolebindings'),
      access('escalate', 'rbac.authorization.k8s.io', 'clusterroles'),
      access('impersonate', '', 'serviceaccounts'),
      access('update', 'apiextensions.k8s.io', 'customresourcedefinitions'),
    ]
    const answers = await reviewAs(as, [...granted, ...refused])
    granted.forEach((asked, index) => {
      assert.equal(answers[index], true, `the operator may not ${describeAccess(asked)}`)
    })
    refused.forEach((asked, index) => {
      assert.equal(answers[granted.length + index], false, `the operator may ${describeAccess(asked)}`)
    })
    // Its Lease lives in the release namespace; in any other it may not touch one.
    const elsewhere = await reviewAs(as, leases, 'default')
    leases.forEach((asked, index) => {
      assert.equal(elsewhere[index], false, `the operator may ${describeAccess(asked)} in another namespace`)
    })

    // And real requests under its identity: its own resources are served, the rest forbidden.
    await ok(kubectl, ['get', 'kafkatopics.timedeal.io,stockwarmups.timedeal.io', '-n', namespace, as])
    const forbidden = await run(kubectl, ['get', 'deployments', '-n', namespace, as])
    assert.notEqual(forbidden.code, 0)
    assert.match(forbidden.stderr, /forbidden/i)
  })

  test('the development infrastructure chart renders objects the API server accepts, with volumes', async () => {
    const { objects } = await infrastructure()
    const sets = objects.filter((object) => object.kind === 'StatefulSet').map((object) => object.metadata.name)
    assert.deepEqual(sets.sort(), ['timedeal-ferretdb', 'timedeal-kafka', 'timedeal-mariadb', 'timedeal-redis'])
    for (const set of objects.filter((object) => object.kind === 'StatefulSet')) {
      const claims = (set.spec as { volumeClaimTemplates?: unknown[] }).volumeClaimTemplates ?? []
      assert.equal(claims.length, 1, `${set.metadata.name} keeps its data on a PersistentVolumeClaim`)
    }
  })
})
