// StockWarmup end to end: resources on the real API server, `timedeal-operator run` as a process,
// the source named by a Secret (a catalog database of the test's own), Redis under a prefix of
// the test's own. Before a sale opens stock is loaded; after, live stock is left as it is.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import { connectTestRedis, deleteRedisKeys, eventually, testSettings } from '@timedeal/platform/testing'
import { createStockStore } from '@timedeal/stock'
import { findCondition } from '../../src/conditions.ts'
import { GROUP, VERSION } from '../../src/runtime/controller.ts'
import { createGoodsCatalog } from '../../src/stock-warmup/goods-catalog.ts'
import type { StockWarmup, StockWarmupSpec } from '../../src/stock-warmup/types.ts'
import { adminKubeConfig, ensureCrds, freshNamespace, metricValue, spawnOperator, waitReady } from '../runtime/kube.ts'

const HOUR = 3_600_000

test('the operator warms stock named by StockWarmups before a sale opens and leaves the live stock of an opened sale alone', {
  timeout: 240_000,
}, async () => {
  await ensureCrds()
  const kc = adminKubeConfig()
  const core = kc.makeApiClient(CoreV1Api)
  const custom = kc.makeApiClient(CustomObjectsApi)
  const namespace = await freshNamespace(kc, 'warmup')
  const server = {
    host: testSettings.MYSQL_HOST,
    port: testSettings.MYSQL_PORT,
    user: testSettings.MYSQL_USER,
    password: testSettings.MYSQL_PASSWORD,
  }
  const catalog = await createGoodsCatalog(server, 'warmup_kube')
  const redis = connectTestRedis('warmup-kube-test')
  const prefix = `test-warmup-kube-${randomBytes(4).toString('hex')}`
  const store = createStockStore(redis, { prefix, holdMs: 60_000, retentionMs: 60_000 })
  let operator: Awaited<ReturnType<typeof spawnOperator>> | undefined
  try {
    const now = Date.now()
    await catalog.insert([
      { id: 'upcoming', stockOnHand: 50, saleStartsAt: now + HOUR, saleEndsAt: now + 2 * HOUR },
      { id: 'open', stockOnHand: 20, saleStartsAt: now - HOUR, saleEndsAt: now + HOUR },
    ])
    // The open sale's stock is live and 5 units are reserved; the catalog still says 20.
    await store.loadIfAbsent({
      goodsId: 'open',
      onHand: 20,
      startsAt: now - HOUR,
      endsAt: now + HOUR,
      purchaseLimit: null,
      initialStock: 20,
      version: 1,
    })
    assert.ok((await store.reserve({ reservationId: 'r-1', goodsId: 'open', userId: 'u-1', quantity: 5 })).ok)
    // The write-behind has taken every entry of every shard.
    for (const stream of store.keys.ledgers) await redis.xgroup('CREATE', stream, 'ledger-writer', '$', 'MKSTREAM')

    await core.createNamespacedSecret({
      namespace: namespace.name,
      body: {
        metadata: { name: 'catalog' },
        stringData: {
          host: server.host,
          port: String(server.port),
          user: server.user,
          password: server.password,
          database: catalog.source.database,
        },
      },
    })
    const create = (name: string, spec: StockWarmupSpec) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'stockwarmups',
        namespace: namespace.name,
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'StockWarmup', metadata: { name }, spec },
      })
    const read = async (name: string) =>
      (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'stockwarmups',
        namespace: namespace.name,
        name,
      })) as StockWarmup
    const settled = (name: string, phases: string[]) =>
      eventually(
        async () => {
          const resource = await read(name)
          return resource.status?.observedGeneration === resource.metadata.generation &&
            phases.includes(resource.status?.phase ?? '')
            ? resource
            : undefined
        },
        60_000,
        `StockWarmup ${name} in ${phases.join(' or ')}`,
      )
    const target = { keyPrefix: prefix }
    const source = { secretRef: { name: 'catalog' } }

    operator = await spawnOperator({
      LEADER_ELECTION_ENABLED: 'false',
      WATCH_NAMESPACES: namespace.name,
      REDIS_URL: testSettings.REDIS_URL,
      KAFKA_BROKERS: testSettings.KAFKA_BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: testSettings.KAFKA_TOPIC_PREFIX,
      // The operator's own default source is a database that does not exist: only the Secret works.
      MYSQL_DATABASE: 'timedeal_no_such_database',
      STOCK_WARMUP_RETRY_BASE_MS: '200',
    })
    await waitReady(operator)

    await create('both', { goods: { goodsIds: ['upcoming', 'open'] }, source, target })
    await create('overwrite-open', { goods: { goodsIds: ['open'] }, source, target, policy: { mode: 'Overwrite' } })
    await create('later', {
      goods: { goodsIds: ['upcoming'] },
      source,
      target,
      schedule: { opensAt: new Date(now + 2 * HOUR).toISOString(), leadTime: '10m' },
    })
    await create('no-secret', { goods: { goodsIds: ['upcoming'] }, source: { secretRef: { name: 'missing' } }, target })

    const both = await settled('both', ['Ready'])
    assert.deepEqual([both.status?.total, both.status?.loaded, both.status?.skipped], [2, 1, 1])
    assert.equal(findCondition(both.status?.conditions, 'DeadlinePassed')?.status, 'True')
    assert.equal((await store.read('upcoming'))?.available, 50)
    assert.equal((await store.read('open'))?.available, 15)

    const refused = await settled('overwrite-open', ['Failed'])
    assert.equal(findCondition(refused.status?.conditions, 'OverwriteRefused')?.status, 'True')
    assert.equal(refused.status?.refused, 1)
    assert.equal((await store.read('open'))?.available, 15)
    assert.equal(await store.holding('open', 'u-1'), 5)

    const later = await settled('later', ['Scheduled'])
    assert.equal(
      later.status?.scheduledAt,
      new Date(now + 2 * HOUR - 10 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z'),
    )

    const noSecret = await settled('no-secret', ['Failed'])
    assert.match(findCondition(noSecret.status?.conditions, 'SourceError')?.message ?? '', /missing does not exist/)

    const metrics = await operator.metrics()
    assert.equal(metricValue(metrics, 'operator_stockwarmup_goods_total', { result: 'loaded' }), 1)
    assert.equal(metricValue(metrics, 'operator_stockwarmup_goods_total', { result: 'refused' }), 1)
    assert.equal(
      metricValue(metrics, 'operator_stockwarmup_runs_total', { outcome: 'source_error' }) !== undefined,
      true,
    )

    const events = await core.listNamespacedEvent({ namespace: namespace.name })
    const reasons = events.items
      .filter((event) => event.involvedObject.name === 'overwrite-open')
      .map((event) => `${event.type}/${event.reason}`)
    assert.ok(reasons.includes('Warning/OverwriteRefused'), reasons.join(', '))
  } finally {
    await operator?.stop()
    await namespace.drop()
    await deleteRedisKeys(redis, prefix)
    await redis.quit()
    await catalog.drop()
  }
})
