import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createRedis, defineScripts, pingRedis, type Redis, runScript } from '../src/redis.ts'
import { connectTestRedis, eventually, testLogger, testSettings, uniqueName } from './support.ts'

// Takes `amount` from a counter only if enough is left: the shape of a stock reservation.
// The run's unique key in a comment makes the script new to Redis, whatever ran before.
const key = uniqueName('test:counter')
const takeIfEnough = {
  numberOfKeys: 1,
  lua: `-- ${key}
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if left < amount then return -1 end
return redis.call('DECRBY', KEYS[1], amount)
`,
}

describe('Redis through ioredis (real Redis)', () => {
  let redis: Redis
  let monitored: Redis | undefined
  let monitor: Redis | undefined

  before(async () => {
    redis = connectTestRedis('platform-test')
    defineScripts(redis, { takeIfEnough })
  })

  after(async () => {
    await redis.del(key)
    redis.disconnect()
    monitor?.disconnect()
    monitored?.disconnect()
  })

  test('answers a ping', async () => {
    await pingRedis(redis)
  })

  test('a Lua script is loaded once and then called by its SHA', async () => {
    const sha = createHash('sha1').update(takeIfEnough.lua).digest('hex')
    assert.deepEqual(await redis.script('EXISTS', sha), [0])
    await redis.set(key, 5)

    // MONITOR shows each command as the server received it; keep those that touch our key.
    monitored = connectTestRedis()
    monitor = await monitored.monitor()
    const seen: string[] = []
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.includes(key)) seen.push(String(args[0]).toUpperCase())
    })

    assert.equal(await runScript(redis, 'takeIfEnough', [key], [2]), 3)
    assert.deepEqual(await redis.script('EXISTS', sha), [1])
    for (const expected of [1, -1]) assert.equal(await runScript(redis, 'takeIfEnough', [key], [2]), expected)
    assert.equal(await redis.get(key), '1')

    await eventually(async () => (seen.length >= 5 ? true : undefined), 5_000, 'the monitored commands')
    // The source went to Redis once (EVAL caches it there); every later call was by SHA.
    assert.deepEqual(
      seen.filter((command) => command.startsWith('EVAL')),
      ['EVAL', 'EVALSHA', 'EVALSHA'],
    )
  })

  test('commands issued in one turn share a socket write when auto-pipelining is asked for, and are written one by one otherwise', async () => {
    const counter = uniqueName('test:pipelined')
    const queuedAtOnce = async (client: Redis) => {
      await pingRedis(client)
      const answers = Array.from({ length: 20 }, () => client.incr(counter))
      // Queued, not yet written: they leave together once this turn ends.
      const queued = client.autoPipelineQueueSize
      const values = (await Promise.all(answers)).map(Number)
      return { queued, values }
    }
    const pipelinedClient = createRedis({ url: testSettings.REDIS_URL, logger: testLogger, autoPipelining: true })
    const pipelined = await queuedAtOnce(pipelinedClient).finally(() => pipelinedClient.disconnect())
    assert.equal(pipelined.queued, 20)
    assert.deepEqual(
      pipelined.values,
      Array.from({ length: 20 }, (_, index) => index + 1),
      'every command answered, in order',
    )
    const plain = createRedis({ url: testSettings.REDIS_URL, logger: testLogger })
    try {
      assert.equal((await queuedAtOnce(plain)).queued, 0, 'off unless asked for')
    } finally {
      plain.disconnect()
      await redis.del(counter)
    }
  })
})
