// The local Kubernetes API server (hack/infra.sh up etcd kube) behaves like a real cluster's:
// it validates custom resources against their schema, serves lists, watches and the status
// subresource, and enforces RBAC. The operator's own tests rely on all of that.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node'
import { freePort, runCommand } from '@timedeal/platform/testing'
import { deleteNamespace, kubeconfigWithToken } from './runtime/kube.ts'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const stateDir = process.env.TIMEDEAL_STATE_DIR ?? join(repoRoot, '.state')
const cacheDir = process.env.TIMEDEAL_CACHE ?? join(homedir(), '.cache', 'timedeal')
const kubeconfigPath = process.env.KUBECONFIG ?? join(stateDir, 'kubeconfig')
const kubectlPath = join(cacheDir, 'bin', 'kubectl')
const crdFile = fileURLToPath(new URL('./fixtures/sample-crd.yaml', import.meta.url))

const sample = { group: 'fixtures.timedeal.io', version: 'v1alpha1', plural: 'samples' } as const
const crdName = `${sample.plural}.${sample.group}`
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

type Sample = {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string }
  spec: { size: number; color: string; note?: string }
  status?: { observedGeneration?: number; phase?: string; conditions?: Record<string, string>[] }
}

const kc = new KubeConfig()
const namespaces: string[] = []

before(() => {
  assert.ok(
    existsSync(kubeconfigPath),
    `no kubeconfig at ${kubeconfigPath}: start the API server with hack/infra.sh up etcd kube`,
  )
  assert.ok(existsSync(kubectlPath), `no kubectl at ${kubectlPath}: run hack/kube/tools.sh`)
  kc.loadFromFile(kubeconfigPath)
})

after(async () => {
  for (const namespace of namespaces) await dropNamespace(namespace)
})

// ---------------------------------------------------------------------------------------------

const kubectl = (args: string[], input?: string) =>
  runCommand(kubectlPath, ['--kubeconfig', kubeconfigPath, ...args], input === undefined ? {} : { input })

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input)
  assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout
}

let crdReady: Promise<void> | undefined
/** Applies the fixture CRD once per run and waits until the API server serves it. */
function ensureSampleCrd(): Promise<void> {
  crdReady ??= (async () => {
    await kubectlOk(['apply', '-f', crdFile])
    await kubectlOk(['wait', '--for=condition=Established', `crd/${crdName}`, '--timeout=60s'])
  })()
  return crdReady
}

/** A fresh namespace for one test, removed again after the run. */
async function freshNamespace(purpose: string): Promise<string> {
  const name = `kube-test-${purpose}-${randomBytes(3).toString('hex')}`
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name, labels: { 'timedeal.io/test': 'kube-apiserver' } } } })
  namespaces.push(name)
  return name
}

/** Deletes the samples in a namespace, then everything else and the namespace itself. */
async function dropNamespace(namespace: string): Promise<void> {
  await kc
    .makeApiClient(CustomObjectsApi)
    .deleteCollectionNamespacedCustomObject({ ...sample, namespace })
    .catch((error: unknown) => {
      if (!(error instanceof ApiException && error.code === 404)) throw error
    })
  await deleteNamespace(kc, namespace)
}

const sampleObject = (name: string, spec: Sample['spec']): Sample => ({
  apiVersion: `${sample.group}/${sample.version}`,
  kind: 'Sample',
  metadata: { name },
  spec,
})

/** The HTTP status and message of a rejected call (fails the test if the call succeeded). */
async function rejection(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call
  } catch (error) {
    if (!(error instanceof ApiException)) throw error
    const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body
    const message = (body as { message?: string } | undefined)?.message ?? String(error.body)
    return { code: error.code, message }
  }
  assert.fail('the API server accepted a call it should have refused')
}

// ---------------------------------------------------------------------------------------------

test('a CRD with a structural schema and a status subresource becomes Established', async () => {
  await ensureSampleCrd()
  const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: crdName })
  const established = crd.status?.conditions?.find((c) => c.type === 'Established')
  assert.equal(established?.status, 'True')
  const names = crd.status?.conditions?.find((c) => c.type === 'NamesAccepted')
  assert.equal(names?.status, 'True')
  assert.deepEqual(crd.spec.versions[0]?.subresources?.status, {})
  const resources = await kubectlOk(['api-resources', '--api-group', sample.group, '-o', 'name'])
  assert.match(resources, new RegExp(`^${crdName.replaceAll('.', '\\.')}$`, 'm'))
})

test('the API server rejects resources that violate the schema', async () => {
  await ensureSampleCrd()
  const namespace = await freshNamespace('schema')
  const custom = kc.makeApiClient(CustomObjectsApi)

  const outOfRange = await rejection(
    custom.createNamespacedCustomObject({
      ...sample,
      namespace,
      body: sampleObject('too-big', { size: 11, color: 'purple' }),
    }),
  )
  assert.equal(outOfRange.code, 422)
  assert.match(outOfRange.message, /spec\.size/)
  assert.match(outOfRange.message, /spec\.color/)

  const missing = await rejection(
    custom.createNamespacedCustomObject({
      ...sample,
      namespace,
      body: { ...sampleObject('no-color', { size: 1, color: 'red' }), spec: { size: 1 } },
    }),
  )
  assert.equal(missing.code, 422)
  assert.match(missing.message, /spec\.color: Required value/)

  const celRule = await rejection(
    custom.createNamespacedCustomObject({
      ...sample,
      namespace,
      body: sampleObject('big-red', { size: 6, color: 'red' }),
    }),
  )
  assert.equal(celRule.code, 422)
  assert.match(celRule.message, /a red sample holds at most 5/)

  // kubectl reports the same refusal and leaves nothing behind.
  const viaKubectl = await kubectl(
    ['apply', '-n', namespace, '-f', '-'],
    JSON.stringify(sampleObject('zero', { size: 0, color: 'blue' })),
  )
  assert.notEqual(viaKubectl.code, 0)
  assert.match(viaKubectl.stderr, /Invalid value/)
  const list = (await custom.listNamespacedCustomObject({ ...sample, namespace })) as { items: Sample[] }
  assert.deepEqual(list.items, [])
})

test('a valid resource applied with kubectl is stored and listed by the client', async () => {
  await ensureSampleCrd()
  const namespace = await freshNamespace('list')
  await kubectlOk(
    ['apply', '-n', namespace, '-f', '-'],
    JSON.stringify(sampleObject('small-green', { size: 3, color: 'green', note: 'hello' })),
  )

  const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ ...sample, namespace })) as {
    items: Sample[]
  }
  assert.equal(list.items.length, 1)
  const [stored] = list.items
  assert.equal(stored?.metadata.name, 'small-green')
  assert.deepEqual(stored?.spec, { size: 3, color: 'green', note: 'hello' })
  assert.equal(stored?.metadata.generation, 1)

  const table = await kubectlOk(['get', 'samples', '-n', namespace])
  assert.match(table, /small-green\s+3/)
})

test('an update reaches a watcher as a MODIFIED event', async () => {
  await ensureSampleCrd()
  const namespace = await freshNamespace('watch')
  const custom = kc.makeApiClient(CustomObjectsApi)
  const created = (await custom.createNamespacedCustomObject({
    ...sample,
    namespace,
    body: sampleObject('watched', { size: 2, color: 'blue' }),
  })) as Sample

  let stopWatching: AbortController | undefined
  const modified = new Promise<Sample>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no MODIFIED event within 20s')), 20_000)
    new Watch(kc)
      .watch(
        `/apis/${sample.group}/${sample.version}/namespaces/${namespace}/${sample.plural}`,
        { resourceVersion: created.metadata.resourceVersion },
        (phase, object: Sample) => {
          if (phase === 'MODIFIED' && object.metadata.name === 'watched') {
            clearTimeout(timer)
            resolve(object)
          }
        },
        (error: unknown) => {
          if (error) {
            clearTimeout(timer)
            reject(error)
          }
        },
      )
      .then((controller) => {
        stopWatching = controller
      }, reject)
  })
  try {
    // The watch starts from the creation's resourceVersion, so an update made right away
    // is delivered even if it lands before the watch request is fully established.
    await custom.patchNamespacedCustomObject(
      { ...sample, namespace, name: 'watched', body: { spec: { size: 7 } } },
      mergePatch,
    )
    const event = await modified
    assert.equal(event.spec.size, 7)
    assert.equal(event.metadata.generation, 2)
  } finally {
    stopWatching?.abort()
  }
})

test('status is written through the status subresource and only there', async () => {
  await ensureSampleCrd()
  const namespace = await freshNamespace('status')
  const custom = kc.makeApiClient(CustomObjectsApi)
  await custom.createNamespacedCustomObject({
    ...sample,
    namespace,
    body: sampleObject('reported', { size: 4, color: 'green' }),
  })

  const status = {
    observedGeneration: 1,
    phase: 'Ready',
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Reconciled',
        message: 'all good',
        lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    ],
  }
  const patched = (await custom.patchNamespacedCustomObjectStatus(
    { ...sample, namespace, name: 'reported', body: { status, spec: { size: 9 } } },
    mergePatch,
  )) as Sample
  assert.deepEqual(patched.status, status)
  assert.equal(patched.spec.size, 4, 'the status subresource ignores spec changes')
  assert.equal(patched.metadata.generation, 1, 'a status write does not bump the generation')

  // Through the main resource, status changes are dropped.
  const updated = (await custom.patchNamespacedCustomObject(
    { ...sample, namespace, name: 'reported', body: { spec: { size: 5 }, status: { phase: 'Pending' } } },
    mergePatch,
  )) as Sample
  assert.equal(updated.spec.size, 5)
  assert.equal(updated.metadata.generation, 2)
  assert.equal(updated.status?.phase, 'Ready')

  // The status schema is enforced on the subresource too.
  const invalid = await rejection(
    custom.patchNamespacedCustomObjectStatus(
      { ...sample, namespace, name: 'reported', body: { status: { phase: 'Exploded' } } },
      mergePatch,
    ),
  )
  assert.equal(invalid.code, 422)
  assert.match(invalid.message, /status\.phase/)
})

test('a service account gets what its Role grants and a 403 for everything else', async () => {
  await ensureSampleCrd()
  const namespace = await freshNamespace('rbac')
  const core = kc.makeApiClient(CoreV1Api)
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api)
  const custom = kc.makeApiClient(CustomObjectsApi)

  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } })
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'sample-reader' },
      rules: [{ apiGroups: [sample.group], resources: [sample.plural], verbs: ['get', 'list', 'watch'] }],
    },
  })
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'reader-reads-samples' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sample-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
    },
  })
  await custom.createNamespacedCustomObject({
    ...sample,
    namespace,
    body: sampleObject('readable', { size: 1, color: 'red' }),
  })

  // The admin kubeconfig, impersonating the service account (kubectl --as does the same).
  const serviceAccount = `system:serviceaccount:${namespace}:reader`
  const asReader = new KubeConfig()
  asReader.loadFromOptions({
    clusters: kc.clusters,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
    users: kc.users.map((user) => ({ ...user, impersonateUser: serviceAccount })),
  })
  const readerCustom = asReader.makeApiClient(CustomObjectsApi)

  // RBAC changes reach the authorizer's cache shortly after they are written.
  let list: { items: Sample[] } | undefined
  for (let attempt = 0; attempt < 50 && list === undefined; attempt++) {
    list = await (
      readerCustom.listNamespacedCustomObject({ ...sample, namespace }) as Promise<{ items: Sample[] }>
    ).catch(async (error: unknown) => {
      if (!(error instanceof ApiException && error.code === 403)) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
      return undefined
    })
  }
  assert.deepEqual(
    list?.items.map((item) => item.metadata.name),
    ['readable'],
  )
  const got = (await readerCustom.getNamespacedCustomObject({ ...sample, namespace, name: 'readable' })) as Sample
  assert.equal(got.spec.color, 'red')

  const create = await rejection(
    readerCustom.createNamespacedCustomObject({
      ...sample,
      namespace,
      body: sampleObject('forged', { size: 1, color: 'blue' }),
    }),
  )
  assert.equal(create.code, 403)
  assert.match(create.message, new RegExp(`"${serviceAccount}" cannot create resource "samples"`))
  const remove = await rejection(readerCustom.deleteNamespacedCustomObject({ ...sample, namespace, name: 'readable' }))
  assert.equal(remove.code, 403)
  const secrets = await rejection(asReader.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace }))
  assert.equal(secrets.code, 403)
  const otherNamespace = await rejection(readerCustom.listNamespacedCustomObject({ ...sample, namespace: 'default' }))
  assert.equal(otherNamespace.code, 403)

  assert.equal(
    (await kubectl(['auth', 'can-i', 'list', crdName, '-n', namespace, '--as', serviceAccount])).stdout.trim(),
    'yes',
  )
  assert.equal(
    (await kubectl(['auth', 'can-i', 'patch', crdName, '-n', namespace, '--as', serviceAccount])).stdout.trim(),
    'no',
  )

  // A token the API server signs for the account authenticates as that account.
  const tokenRequest = await core.createNamespacedServiceAccountToken({
    namespace,
    name: 'reader',
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  })
  const token = tokenRequest.status?.token
  assert.ok(token)
  const { kubeConfig: withToken } = kubeconfigWithToken(kc, 'reader', token)
  const review = await withToken.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ ...sample, namespace })
  assert.equal((review as { items: Sample[] }).items.length, 1)
  const denied = await rejection(withToken.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace }))
  assert.equal(denied.code, 403)
})

// ---------------------------------------------------------------------------------------------

test('infra down stops the API server and etcd; a second up reuses the built binaries', {
  timeout: 240_000,
}, async () => {
  // A private pair on free ports and its own state folder: the shared servers keep running.
  const privateState = mkdtempSync(join(tmpdir(), 'timedeal-kube-restart-'))
  const [etcdPort, etcdPeerPort, kubePort] = [await freePort(), await freePort(), await freePort()]
  const env = {
    ...process.env,
    TIMEDEAL_STATE_DIR: privateState,
    TIMEDEAL_CACHE: cacheDir,
    TIMEDEAL_ETCD_PORT: String(etcdPort),
    TIMEDEAL_ETCD_PEER_PORT: String(etcdPeerPort),
    TIMEDEAL_KUBE_PORT: String(kubePort),
  }
  const infra = (...args: string[]) => runCommand(join(repoRoot, 'hack', 'infra.sh'), args, { env })
  const version = (await runCommand(join(repoRoot, 'hack', 'kube', 'build.sh'), ['version', 'kube'])).stdout.trim()
  const binary = join(cacheDir, `kube-${version}`, 'kube-apiserver')
  const privateKubeconfig = join(privateState, 'kubeconfig')
  const answers = async () =>
    (await runCommand(kubectlPath, ['--kubeconfig', privateKubeconfig, 'get', '--raw', '/readyz'])).stdout === 'ok'

  try {
    assert.ok(existsSync(binary), `${binary} is missing: hack/infra.sh up kube builds it`)
    const builtAt = statSync(binary).mtimeMs

    const first = await infra('up', 'etcd', 'kube')
    assert.equal(first.code, 0, first.stderr)
    assert.ok(await answers(), 'the private API server answers after up')

    const down = await infra('down', 'etcd', 'kube')
    assert.equal(down.code, 0, down.stderr)
    assert.ok(!existsSync(join(privateState, 'run', 'kube.pid')))
    assert.ok(!existsSync(join(privateState, 'run', 'etcd.pid')))
    assert.equal(await answers(), false, 'nothing answers after down')

    const started = Date.now()
    const second = await infra('up', 'etcd', 'kube')
    assert.equal(second.code, 0, second.stderr)
    assert.doesNotMatch(second.stderr, /building/)
    assert.equal(statSync(binary).mtimeMs, builtAt, 'the API server was not rebuilt')
    assert.ok(await answers(), 'the private API server answers after the second up')
    assert.ok(Date.now() - started < 60_000, `a warm up took ${Date.now() - started} ms`)
  } finally {
    await infra('down', 'etcd', 'kube')
    rmSync(privateState, { recursive: true, force: true })
  }
})
