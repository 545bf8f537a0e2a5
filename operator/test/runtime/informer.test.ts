// Informers against the real API server, reached through a proxy that fails on purpose: a watch
// whose version expired (the server's own 410 Gone) and a connection that breaks must both end
// in a cache that matches the server again, deletions made meanwhile included.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, testLogger } from '@timedeal/platform/testing'
import { type AnyResource, GROUP, VERSION } from '../../src/runtime/controller.ts'
import { type InformerEvent, ResourceInformer } from '../../src/runtime/informer.ts'
import { type ApiProxy, startApiProxy } from './api-proxy.ts'
import { adminKubeConfig, ensureCrds, freshNamespace } from './kube.ts'

let admin: KubeConfig
let proxy: ApiProxy

before(async () => {
  await ensureCrds()
  admin = adminKubeConfig()
  proxy = await startApiProxy(admin)
})

after(async () => {
  await proxy.close()
})

const plural = 'kafkatopics'

function topics(namespace: string) {
  const custom = admin.makeApiClient(CustomObjectsApi)
  const target = { group: GROUP, version: VERSION, plural, namespace }
  return {
    create: (name: string, partitions = 1) =>
      custom.createNamespacedCustomObject({
        ...target,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'KafkaTopic',
          metadata: { name },
          spec: { partitions, deletionPolicy: 'Retain' },
        },
      }),
    raise: (name: string, partitions: number) =>
      custom.patchNamespacedCustomObject(
        { ...target, name, body: [{ op: 'replace', path: '/spec/partitions', value: partitions }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      ),
    remove: (name: string) => custom.deleteNamespacedCustomObject({ ...target, name }),
  }
}

function watchedInformer(namespace: string, listTimeoutMs?: number) {
  const changes: { event: InformerEvent; name: string; partitions: number }[] = []
  const restarts: string[] = []
  const informer = new ResourceInformer({
    kubeConfig: proxy.kubeConfig,
    plural,
    namespace,
    logger: testLogger,
    onChange: (event, resource: AnyResource) =>
      changes.push({ event, name: resource.metadata.name, partitions: resource.spec?.partitions }),
    onRestart: (reason) => restarts.push(reason),
    restartBackoff: { initialMs: 50, maxMs: 200 },
    ...(listTimeoutMs ? { listTimeoutMs } : {}),
  })
  const cached = () =>
    Object.fromEntries(informer.list().map((resource) => [resource.metadata.name, resource.spec.partitions as number]))
  return { informer, changes, restarts, cached }
}

const sameAs = (expected: Record<string, number>, actual: () => Record<string, number>) => async () =>
  JSON.stringify(Object.entries(actual()).sort()) === JSON.stringify(Object.entries(expected).sort()) ? true : undefined

type SyncedInformer = ReturnType<typeof watchedInformer> & { api: ReturnType<typeof topics> }

/** Runs `body` with an informer synced over the topics `kept` and `dropped` in a namespace of its own. */
async function withSyncedInformer(purpose: string, body: (run: SyncedInformer) => Promise<void>): Promise<void> {
  const namespace = await freshNamespace(admin, purpose)
  const watched = watchedInformer(namespace.name)
  const api = topics(namespace.name)
  try {
    await api.create('kept')
    await api.create('dropped')
    watched.informer.start()
    await watched.informer.whenSynced()
    await body({ ...watched, api })
  } finally {
    await watched.informer.stop()
    await namespace.drop()
  }
}

/** Waits until the cache matches the server again, the deletion of `dropped` reported on the way. */
async function caughtUpWith(expected: Record<string, number>, { cached, changes }: SyncedInformer): Promise<void> {
  await eventually(sameAs(expected, cached), 15_000, 'the cache to match the server again')
  assert.ok(
    changes.some((change) => change.event === 'delete' && change.name === 'dropped'),
    'the deletion was reported',
  )
}

test('an informer whose watch version expired (410 Gone from the server) lists again and misses nothing', {
  timeout: 60_000,
}, async () => {
  await withSyncedInformer('gone', async (run) => {
    const { api, cached, restarts } = run
    await api.raise('kept', 2)
    await eventually(sameAs({ kept: 2, dropped: 1 }, cached), 10_000, 'the watch to deliver the change')

    // The watch ends as at its timeout; the resumed watch is sent from a version long gone,
    // while things change that only a new list can show.
    proxy.holdWatches()
    proxy.endWatches()
    await eventually(
      async () => (proxy.requests.filter((path) => path.includes('watch=true')).length >= 2 ? true : undefined),
      10_000,
      'the resumed watch',
    )
    await api.remove('dropped')
    await api.create('added')
    await api.raise('kept', 3)
    const listsBefore = proxy.requests.filter((path) => !path.includes('watch=true')).length
    proxy.releaseWatches({ expired: true })

    await caughtUpWith({ kept: 3, added: 1 }, run)
    assert.deepEqual(restarts, ['gone'], 'one restart, for the expired version')
    assert.ok(proxy.requests.filter((path) => !path.includes('watch=true')).length > listsBefore, 'it listed again')

    // And it keeps watching from the new list's version.
    await api.raise('added', 4)
    await eventually(sameAs({ kept: 3, added: 4 }, cached), 10_000, 'a change after the re-list')
  })
})

test('an informer restarts after its connection breaks, backs off while the server is unreachable, and catches up', {
  timeout: 60_000,
}, async () => {
  await withSyncedInformer('broken', async (run) => {
    const { api, cached, restarts } = run
    proxy.cut({ refuse: true })
    await api.remove('dropped')
    await api.create('added')
    await api.raise('kept', 5)
    await eventually(async () => (restarts.length >= 2 ? true : undefined), 10_000, 'failed attempts while refused')
    assert.deepEqual(cached(), { kept: 1, dropped: 1 }, 'nothing new seen while cut off')
    proxy.restore()

    await caughtUpWith({ kept: 5, added: 1 }, run)
    assert.ok(restarts.every((reason) => reason === 'error'))
    await api.raise('added', 2)
    await eventually(sameAs({ kept: 5, added: 2 }, cached), 10_000, 'a change after the restart')
  })
})

test('an informer whose list is never answered gives up on it and lists again', { timeout: 30_000 }, async () => {
  const namespace = await freshNamespace(admin, 'hang')
  const { informer, restarts, cached } = watchedInformer(namespace.name, 300)
  const api = topics(namespace.name)
  try {
    await api.create('kept')
    proxy.stall()
    informer.start()
    await eventually(async () => (restarts.length >= 2 ? true : undefined), 10_000, 'lists given up on')
    assert.equal(informer.synced, false)
    proxy.restore()
    await informer.whenSynced()
    assert.deepEqual(cached(), { kept: 1 })
  } finally {
    proxy.restore()
    await informer.stop()
    await namespace.drop()
  }
})

test('a stopped informer ends its watch and takes no more changes', { timeout: 30_000 }, async () => {
  const namespace = await freshNamespace(admin, 'stop')
  const { informer, cached } = watchedInformer(namespace.name)
  const api = topics(namespace.name)
  try {
    informer.start()
    await informer.whenSynced()
    await informer.stop()
    await api.create('late')
    await sleep(300)
    assert.deepEqual(cached(), {})
  } finally {
    await namespace.drop()
  }
})
