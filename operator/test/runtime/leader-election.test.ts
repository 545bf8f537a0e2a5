// Leader election in one process with two candidates, one of them reaching the API server
// through a proxy that can be cut: a leader that cannot renew stops acting before anyone else
// may take over, so two replicas never reconcile at the same time.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node'
import { eventually, testLogger } from '@timedeal/platform/testing'
import { LeaderElector } from '../../src/runtime/leader.ts'
import { type ApiProxy, startApiProxy } from './api-proxy.ts'
import { adminKubeConfig, freshNamespace } from './kube.ts'

let admin: KubeConfig
let proxy: ApiProxy

before(async () => {
  admin = adminKubeConfig()
  proxy = await startApiProxy(admin)
})

after(async () => {
  await proxy.close()
})

const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250 }

function candidate(kubeConfig: KubeConfig, namespace: string, identity: string, log: string[]) {
  return new LeaderElector({
    kubeConfig,
    leaseName: 'election',
    namespace,
    identity,
    ...timing,
    logger: testLogger,
    onStartedLeading: () => log.push(`${identity} leads`),
    onStoppedLeading: () => {
      log.push(`${identity} stops`)
    },
  })
}

for (const [how, cutOffTheLeader] of [
  ['refused', () => proxy.cut({ refuse: true })],
  ['hanging', () => proxy.stall()],
] as const) {
  test(`a leader whose requests are ${how} steps down before the other candidate takes over`, {
    timeout: 60_000,
  }, async () => {
    const namespace = await freshNamespace(admin, 'election')
    const log: string[] = []
    const cutOff = candidate(proxy.kubeConfig, namespace.name, 'cut-off', log)
    const direct = candidate(admin, namespace.name, 'direct', log)
    try {
      cutOff.start()
      await eventually(async () => (cutOff.leading ? true : undefined), 10_000, 'the first candidate to lead')
      direct.start()
      // The second candidate keeps trying for longer than a lease duration and does not win.
      await new Promise((resolve) => setTimeout(resolve, timing.leaseDurationMs + 1_000))
      assert.equal(direct.leading, false)
      assert.deepEqual(log, ['cut-off leads'])

      cutOffTheLeader()
      await eventually(async () => (direct.leading ? true : undefined), 20_000, 'the other candidate to take over')
      assert.equal(cutOff.leading, false)
      assert.deepEqual(log, ['cut-off leads', 'cut-off stops', 'direct leads'], 'the old leader stopped first')
      const lease = await admin
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ namespace: namespace.name, name: 'election' })
      assert.equal(lease.spec?.holderIdentity, 'direct')
      assert.equal(lease.spec?.leaseTransitions, 1)

      // Back online, the old leader stays a follower while the new one renews.
      proxy.restore()
      await new Promise((resolve) => setTimeout(resolve, timing.leaseDurationMs + 1_000))
      assert.equal(cutOff.leading, false)
      assert.equal(direct.leading, true)
    } finally {
      proxy.restore()
      await Promise.all([cutOff.stop(), direct.stop()])
      await namespace.drop()
    }
  })
}

test('a leader steps down while its renewal hangs even when its timer fires before its clock reaches the deadline', {
  timeout: 60_000,
}, async () => {
  const namespace = await freshNamespace(admin, 'election')
  const log: string[] = []
  // A clock running at 90% of the timers' pace: every watchdog timer fires "early" by this clock.
  const startedAt = Date.now()
  const slowClock = () => startedAt + Math.floor((Date.now() - startedAt) * 0.9)
  const leader = new LeaderElector({
    kubeConfig: proxy.kubeConfig,
    leaseName: 'election',
    namespace: namespace.name,
    identity: 'slow-clock',
    ...timing,
    now: slowClock,
    logger: testLogger,
    onStartedLeading: () => log.push('leads'),
    onStoppedLeading: () => {
      log.push('stops')
    },
  })
  try {
    leader.start()
    await eventually(async () => (leader.leading ? true : undefined), 10_000, 'the candidate to lead')
    proxy.stall()
    await eventually(async () => (leader.leading ? undefined : true), 10_000, 'the leader to step down')
    assert.deepEqual(log, ['leads', 'stops'])
  } finally {
    proxy.restore()
    await leader.stop()
    await namespace.drop()
  }
})
