// The work queue between informers and controllers, without any server.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { TokenBucket, WorkQueue } from '../../src/runtime/work-queue.ts'

const generous = { perSecond: 10_000, burst: 10_000 }

function deferred() {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

test('a key added many times while it waits is handled once', async () => {
  const queue = new WorkQueue({ concurrency: 1, retry: { initialMs: 10, maxMs: 100 }, rate: generous })
  const handled: string[] = []
  for (let i = 0; i < 5; i += 1) queue.add('a')
  queue.add('b')
  queue.add('a')
  assert.equal(queue.depth, 2)
  queue.start(async (key) => {
    handled.push(key)
    return undefined
  })
  await until(() => handled.length >= 2 && queue.activeCount === 0, 'both keys')
  await sleep(20)
  assert.deepEqual(handled, ['a', 'b'])
  await queue.stop()
})

test('never handles one key twice at once; a key added while in hand is handled again afterwards', async () => {
  const queue = new WorkQueue({ concurrency: 4, retry: { initialMs: 10, maxMs: 100 }, rate: generous })
  let inHand = 0
  let mostAtOnce = 0
  let calls = 0
  const release = deferred()
  queue.start(async () => {
    calls += 1
    inHand += 1
    mostAtOnce = Math.max(mostAtOnce, inHand)
    if (calls === 1) await release.promise
    inHand -= 1
    return undefined
  })
  queue.add('same')
  await until(() => calls === 1, 'the first turn')
  queue.add('same')
  queue.add('same')
  await sleep(30)
  assert.equal(calls, 1, 'the second add waits for the turn in hand')
  release.resolve()
  await until(() => calls === 2 && queue.activeCount === 0, 'the second turn')
  await sleep(30)
  assert.equal(calls, 2, 'two adds during one turn make one more turn')
  assert.equal(mostAtOnce, 1)
  await queue.stop()
})

test('different keys are handled side by side up to the concurrency', async () => {
  const queue = new WorkQueue({ concurrency: 3, retry: { initialMs: 10, maxMs: 100 }, rate: generous })
  let inHand = 0
  let mostAtOnce = 0
  const release = deferred()
  queue.start(async () => {
    inHand += 1
    mostAtOnce = Math.max(mostAtOnce, inHand)
    await release.promise
    inHand -= 1
    return undefined
  })
  for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key)
  await until(() => inHand === 3, 'three in hand')
  await sleep(20)
  assert.equal(mostAtOnce, 3)
  assert.equal(queue.depth, 2)
  release.resolve()
  await until(() => queue.depth === 0 && queue.activeCount === 0, 'the rest')
  await queue.stop()
})

test('a failing key is retried after a per-key backoff that doubles up to the maximum and resets on success', async () => {
  const initialMs = 40
  const maxMs = 160
  const queue = new WorkQueue({ concurrency: 2, retry: { initialMs, maxMs }, rate: generous })
  const attempts: number[] = []
  const retryDelays: number[] = []
  let otherHandled = 0
  queue.start(
    async (key) => {
      if (key === 'other') {
        otherHandled += 1
        return undefined
      }
      attempts.push(Date.now())
      if (attempts.length <= 5) throw new Error('Kafka is unavailable')
      return undefined
    },
    (handled) => {
      if (handled.retryInMs !== undefined) retryDelays.push(handled.retryInMs)
    },
  )
  queue.add('flaky')
  queue.add('other')
  await until(() => attempts.length === 6, 'six attempts', 10_000)
  assert.equal(otherHandled, 1, 'another key is not held up by the failing one')
  // Half jitter: each delay lies in [d/2, d) for d = initial * 2^n, capped at the maximum.
  const nominal = [40, 80, 160, 160, 160]
  retryDelays.forEach((delay, index) => {
    const d = nominal[index] as number
    assert.ok(delay >= d / 2 && delay <= d, `retry ${index + 1} after ${delay} ms, expected ${d / 2}-${d}`)
  })
  for (let index = 1; index < attempts.length; index += 1) {
    const gap = (attempts[index] as number) - (attempts[index - 1] as number)
    assert.ok(gap >= (retryDelays[index - 1] as number) - 2, `attempt ${index + 1} came early: ${gap} ms`)
  }
  // After the success the next failure starts from the first step again.
  queue.start(
    async () => {
      throw new Error('down again')
    },
    (handled) => {
      if (handled.retryInMs !== undefined) retryDelays.push(handled.retryInMs)
    },
  )
  queue.add('flaky')
  await until(() => retryDelays.length === 6, 'a fresh failure')
  assert.ok((retryDelays[5] as number) <= initialMs, `backoff was reset: ${retryDelays[5]} ms`)
  await queue.stop()
})

test('a requeue after a delay keeps the earliest of several pending delays', async () => {
  const queue = new WorkQueue({ concurrency: 1, retry: { initialMs: 10, maxMs: 100 }, rate: generous })
  const handled: number[] = []
  const started = Date.now()
  queue.start(async () => {
    handled.push(Date.now() - started)
    return undefined
  })
  queue.addAfter('later', 10_000)
  queue.addAfter('later', 50)
  queue.addAfter('later', 5_000)
  assert.equal(queue.delayedCount, 1)
  await until(() => handled.length === 1, 'the early turn')
  assert.ok((handled[0] as number) >= 45)
  await sleep(50)
  assert.equal(queue.delayedCount, 0)
  await queue.stop()
})

test('a paused queue collects keys and hands them out on start; stop waits for the keys in hand', async () => {
  const queue = new WorkQueue({ concurrency: 2, retry: { initialMs: 10, maxMs: 100 }, rate: generous })
  const handled: string[] = []
  const release = deferred()
  queue.start(async (key) => {
    await release.promise
    handled.push(key)
    return undefined
  })
  queue.add('in-hand')
  await until(() => queue.activeCount === 1, 'the key in hand')
  const paused = queue.pause()
  queue.add('collected')
  release.resolve()
  await paused
  assert.deepEqual(handled, ['in-hand'], 'pause resolved after the key in hand finished')
  await sleep(20)
  assert.equal(queue.depth, 1, 'the new key waits while paused')
  queue.start(async (key) => {
    handled.push(key)
    return undefined
  })
  await until(() => handled.length === 2, 'the collected key')
  await queue.stop()
})

test('the token bucket lets a burst through, then one token per 1/rate seconds', () => {
  let now = 0
  const bucket = new TokenBucket(10, 3, () => now)
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [0, 0, 0])
  assert.equal(Math.round(bucket.take()), 100, 'the fourth waits for a refill')
  now += 50
  assert.equal(Math.round(bucket.take()), 50)
  now += 50
  assert.equal(bucket.take(), 0)
  now += 10_000
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [0, 0, 0], 'never more than the burst saved up')
  assert.ok(bucket.take() > 0)
})

test('the global rate limit spaces keys beyond the burst', async () => {
  const queue = new WorkQueue({
    concurrency: 10,
    retry: { initialMs: 10, maxMs: 100 },
    rate: { perSecond: 20, burst: 2 },
  })
  const handledAt: number[] = []
  const started = Date.now()
  queue.start(async () => {
    handledAt.push(Date.now() - started)
    return undefined
  })
  for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key)
  await until(() => handledAt.length === 5, 'five keys')
  // Two at once from the burst, then one every 50 ms: the fifth no earlier than ~150 ms.
  assert.ok((handledAt[4] as number) >= 140, `the fifth key came after ${handledAt[4]} ms`)
  await queue.stop()
})
