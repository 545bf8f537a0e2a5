// The local API server for the runtime's tests: the CRDs applied once per run, a namespace of
// each test's own (emptied and finalized afterwards, as no namespace controller runs here),
// tokens of service accounts, and the operator run as a real process.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { eventually, freePort, runCommand, type ServiceProcess, spawnService } from '@timedeal/platform/testing'
import kafkajs, { type Admin } from 'kafkajs'
import { GROUP, VERSION } from '../../src/runtime/controller.ts'

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const stateDir = process.env.TIMEDEAL_STATE_DIR ?? join(repoRoot, '.state')
const cacheDir = process.env.TIMEDEAL_CACHE ?? join(homedir(), '.cache', 'timedeal')
export const kubeconfigPath = process.env.KUBECONFIG ?? join(stateDir, 'kubeconfig')
const kubectlPath = join(cacheDir, 'bin', 'kubectl')
export const operatorEntry = fileURLToPath(new URL('../../src/main.ts', import.meta.url))
export const PLURALS = ['kafkatopics', 'stockwarmups'] as const
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export function adminKubeConfig(): KubeConfig {
  assert.ok(
    existsSync(kubeconfigPath),
    `no kubeconfig at ${kubeconfigPath}: start the API server with hack/infra.sh up etcd kube`,
  )
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfigPath)
  return kc
}

export async function kubectl(args: string[], input?: string): Promise<string> {
  const result = await runCommand(
    kubectlPath,
    ['--kubeconfig', kubeconfigPath, ...args],
    input === undefined ? {} : { input },
  )
  assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout
}

let crdsReady: Promise<void> | undefined
/** Applies the operator's CRDs (crds/) once per process and waits until they are served. */
export function ensureCrds(): Promise<void> {
  crdsReady ??= (async () => {
    await kubectl(['apply', '-f', join(repoRoot, 'crds')])
    for (const plural of PLURALS) {
      await kubectl(['wait', '--for=condition=Established', `crd/${plural}.${GROUP}`, '--timeout=60s'])
    }
  })()
  return crdsReady
}

const ignoreMissing = (error: unknown) => {
  if (!(error instanceof ApiException && error.code === 404)) throw error
}

/** A fresh namespace; `drop` lets go of every resource in it (finalizers too) and removes it. */
export async function freshNamespace(
  kc: KubeConfig,
  purpose: string,
): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `op-${purpose}-${randomBytes(3).toString('hex')}`
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name, labels: { 'timedeal.io/test': 'operator-runtime' } } } })
  return { name, drop: () => dropNamespace(kc, name) }
}

async function dropNamespace(kc: KubeConfig, namespace: string): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi)
  for (const plural of PLURALS) {
    const list = (await custom
      .listNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace })
      .catch(() => ({ items: [] }))) as { items: { metadata: { name: string } }[] }
    for (const item of list.items) {
      await custom
        .patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            plural,
            namespace,
            name: item.metadata.name,
            body: { metadata: { finalizers: null } },
          },
          mergePatch,
        )
        .catch(ignoreMissing)
    }
    await custom
      .deleteCollectionNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace })
      .catch(ignoreMissing)
  }
  await deleteNamespace(kc, namespace)
}

/**
 * Deletes the RBAC objects and service accounts in a namespace, then the namespace. No
 * controller-manager runs next to the local API server, so nobody else empties and finalizes
 * a deleted namespace: this does both, as the namespace controller would.
 */
export async function deleteNamespace(kc: KubeConfig, namespace: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api)
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api)
  await rbac.deleteCollectionNamespacedRoleBinding({ namespace }).catch(ignoreMissing)
  await rbac.deleteCollectionNamespacedRole({ namespace }).catch(ignoreMissing)
  await core.deleteCollectionNamespacedServiceAccount({ namespace }).catch(ignoreMissing)
  await core.deleteNamespace({ name: namespace }).catch(ignoreMissing)
  const current = await core.readNamespace({ name: namespace }).catch(() => undefined)
  if (current?.spec?.finalizers?.length) {
    await core
      .replaceNamespaceFinalize({ name: namespace, body: { ...current, spec: { ...current.spec, finalizers: [] } } })
      .catch(ignoreMissing)
  }
}

/** A kubeconfig file that authenticates with `token` against the local API server. */
export function kubeconfigWithToken(
  kc: KubeConfig,
  user: string,
  token: string,
): { file: string; kubeConfig: KubeConfig } {
  const cluster = kc.getCurrentCluster()
  assert.ok(cluster)
  const withToken = new KubeConfig()
  withToken.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  })
  const file = join(mkdtempSync(join(tmpdir(), 'timedeal-operator-kubeconfig-')), 'kubeconfig')
  writeFileSync(file, withToken.exportConfig(), { mode: 0o600 })
  return { file, kubeConfig: withToken }
}

export interface OperatorProcess extends ServiceProcess {
  readonly metrics: () => Promise<string>
}

/** `timedeal-operator run` as a real process, on a free OPERATOR_PORT; `env` completes its settings. */
export async function spawnOperator(env: Record<string, string>): Promise<OperatorProcess> {
  const port = await freePort()
  const service = await spawnService(
    operatorEntry,
    {
      KUBECONFIG: kubeconfigPath,
      OPERATOR_HOST: '127.0.0.1',
      LEADER_ELECTION_LEASE_DURATION_MS: '4000',
      LEADER_ELECTION_RENEW_DEADLINE_MS: '3000',
      LEADER_ELECTION_RETRY_PERIOD_MS: '500',
      ...env,
      HTTP_PORT: String(port),
      OPERATOR_PORT: String(port),
    },
    ['run'],
  )
  return { ...service, metrics: async () => (await fetch(`${service.url}/metrics`)).text() }
}

/** Waits until `/readyz` answers 200. */
export async function waitReady(operator: OperatorProcess, timeoutMs = 60_000): Promise<void> {
  let exited: number | null | undefined
  void operator.exited.then((code) => {
    exited = code
  })
  await eventually(
    async () => {
      if (exited !== undefined) throw new Error(`the operator exited with ${exited}: ${operator.output().stderr}`)
      const response = await fetch(`${operator.url}/readyz`).catch(() => undefined)
      return response?.status === 200 ? true : undefined
    },
    timeoutMs,
    `${operator.url}/readyz`,
  )
}

/** The value of a metric line (first match), or undefined. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (!(rest.startsWith('{') || rest.startsWith(' '))) continue
    if (!Object.entries(labels).every(([key, value]) => rest.includes(`${key}="${value}"`))) continue
    return Number(line.split(' ').at(-1))
  }
  return undefined
}

/** A topic as the broker has it: its partition count and its configuration, key by key. */
export async function topicOnBroker(
  raw: Admin,
  topic: string,
): Promise<{ partitions: number | undefined; config: Record<string, string> }> {
  const [metadata] = (await raw.fetchTopicMetadata({ topics: [topic] })).topics
  const described = await raw.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }],
  })
  const config = Object.fromEntries(
    (described.resources[0]?.configEntries ?? []).map((entry) => [entry.configName, entry.configValue]),
  )
  return { partitions: metadata?.partitions.length, config }
}
