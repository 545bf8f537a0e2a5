// hack/infra.sh on a private state folder and free ports, so the shared servers are untouched.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort, runCommand, takenPort } from '@timedeal/platform/testing'

const infra = fileURLToPath(new URL('../infra.sh', import.meta.url))
const stateDirs: string[] = []

function privateState(): string {
  const dir = mkdtempSync(join(tmpdir(), 'timedeal-infra-test-'))
  stateDirs.push(dir)
  return dir
}

const runInfra = (args: string[], env: Record<string, string>) =>
  runCommand('bash', [infra, ...args], { env: { ...process.env, ...env } })

describe('hack/infra.sh', () => {
  after(async () => {
    for (const dir of stateDirs) {
      await runInfra(['down'], { TIMEDEAL_STATE_DIR: dir })
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('starts a server, is a no-op the second time, and stops only what it started', async () => {
    const env = { TIMEDEAL_STATE_DIR: privateState(), TIMEDEAL_REDIS_PORT: String(await freePort()) }
    const first = await runInfra(['up', 'redis'], env)
    assert.equal(first.code, 0, first.stderr)
    assert.match(
      first.stdout,
      new RegExp(`redis\\s+\\S+\\s+127\\.0\\.0\\.1:${env.TIMEDEAL_REDIS_PORT}\\s+\\d+\\s+ready`),
    )
    const second = await runInfra(['up', 'redis'], env)
    assert.equal(second.code, 0)
    assert.match(second.stderr, /redis already running/)
    const down = await runInfra(['down', 'redis'], env)
    assert.equal(down.code, 0)
    const status = await runInfra(['status'], env)
    assert.match(status.stdout, /redis\s+\S+\s+\S+\s+-\s+stopped/)
  })

  test('a port already taken is one clear message and a non-zero exit', async () => {
    const { port, release } = await takenPort()
    try {
      const result = await runInfra(['up', 'redis'], {
        TIMEDEAL_STATE_DIR: privateState(),
        TIMEDEAL_REDIS_PORT: String(port),
      })
      assert.equal(result.code, 1)
      assert.match(
        result.stderr,
        new RegExp(`redis: port ${port} is already in use.*set TIMEDEAL_REDIS_PORT to another port`),
      )
    } finally {
      await release()
    }
  })

  test('a bad port setting is one clear message and a non-zero exit', async () => {
    const result = await runInfra(['up', 'redis'], { TIMEDEAL_STATE_DIR: privateState(), TIMEDEAL_REDIS_PORT: 'sixty' })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /invalid setting TIMEDEAL_REDIS_PORT='sixty': expected a TCP port number 1-65535/)
  })

  test('a server that does not come up is reported with its log, and a non-zero exit', async () => {
    const state = privateState()
    // An append-only "directory" that is a file: Redis refuses to start on it.
    mkdirSync(join(state, 'data', 'redis'), { recursive: true })
    writeFileSync(join(state, 'data', 'redis', 'appendonlydir'), 'not a directory')
    const result = await runInfra(['up', 'redis'], {
      TIMEDEAL_STATE_DIR: state,
      TIMEDEAL_REDIS_PORT: String(await freePort()),
    })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /redis exited during start-up \(full log: .*redis\.log\)/)
  })

  test('an unknown component is refused', async () => {
    const result = await runInfra(['up', 'oracle'], { TIMEDEAL_STATE_DIR: privateState() })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /unknown component 'oracle'/)
  })
})
