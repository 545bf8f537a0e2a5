import assert from 'node:assert/strict'
import { test } from 'node:test'
import { allFulfilled, createBatcher } from '../src/batcher.ts'

const doubled = (inputs: readonly number[]) => Promise.resolve(allFulfilled(inputs.map((input) => input * 2)))

test('calls of one turn go to one run, and each caller gets its own answer', async () => {
  const batches: number[][] = []
  const call = createBatcher<number, number>({
    run: (inputs) => {
      batches.push([...inputs])
      return doubled(inputs)
    },
    maxBatch: 100,
  })
  assert.deepEqual(await Promise.all([1, 2, 3].map(call)), [2, 4, 6])
  assert.deepEqual(batches, [[1, 2, 3]])
})

test('a full batch goes at once, and calls made while the only slot is busy form the next batch', async () => {
  const batches: number[][] = []
  let release: () => void = () => undefined
  const call = createBatcher<number, number>({
    run: async (inputs) => {
      batches.push([...inputs])
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve))
      return doubled(inputs)
    },
    maxBatch: 2,
    lingerMs: 60_000,
  })
  const first = [call(1), call(2)]
  await new Promise((resolve) => setImmediate(resolve))
  const later = [call(3), call(4), call(5)]
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(batches, [[1, 2]], 'the second batch waits for the slot, not for the linger')
  release()
  assert.deepEqual(await Promise.all([...first, ...later]), [2, 4, 6, 8, 10])
  assert.deepEqual(batches, [[1, 2], [3, 4], [5]])
})

test('a run that throws fails every call of its batch; an outcome that is rejected fails only its own call', async () => {
  const failing = createBatcher<number, number>({
    run: () => Promise.reject(new Error('outage')),
    maxBatch: 10,
  })
  const outcomes = await Promise.allSettled([failing(1), failing(2)])
  assert.deepEqual(
    outcomes.map((outcome) => outcome.status),
    ['rejected', 'rejected'],
  )

  const oddRefused = createBatcher<number, number>({
    run: (inputs) =>
      Promise.allSettled(inputs.map((input) => (input % 2 ? Promise.reject(new Error(`odd ${input}`)) : input))),
    maxBatch: 10,
  })
  const mixed = await Promise.allSettled([1, 2, 3, 4].map(oddRefused))
  assert.deepEqual(
    mixed.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : (outcome.reason as Error).message)),
    ['odd 1', 2, 'odd 3', 4],
  )
})
