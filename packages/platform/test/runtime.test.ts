import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort, spawnService, waitUntilReady } from './support.ts'

const entry = fileURLToPath(new URL('./fixtures/slow-service.ts', import.meta.url))

describe('a service process', () => {
  test('a bad setting is one clear line and exit code 1', async () => {
    const service = await spawnService(entry, { LOG_LEVEL: 'shouting' })
    assert.equal(await service.exited, 1)
    assert.equal(
      service.output().stderr.trim(),
      'invalid setting LOG_LEVEL="shouting": expected one of fatal, error, warn, info, debug, trace, silent',
    )
  })

  test('a port already taken is one clear line and exit code 1', async () => {
    const port = await freePort()
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve))
    try {
      const service = await spawnService(entry, { HTTP_PORT: String(port) })
      assert.equal(await service.exited, 1)
      assert.equal(
        service.output().stderr.trim(),
        `port 127.0.0.1:${port} is already in use; stop that process or set HTTP_PORT to another port`,
      )
    } finally {
      blocker.close()
    }
  })

  test('an unknown command is refused', async () => {
    const service = await spawnService(entry, {}, ['launch'])
    assert.equal(await service.exited, 2)
    assert.match(service.output().stderr, /unknown command 'launch'/)
  })

  test('SIGTERM lets the in-flight request finish, then the process exits 0', async () => {
    const service = await spawnService(entry, { SLOW_MS: '700' })
    await waitUntilReady(service)
    const inFlight = fetch(`${service.url}/slow`)
    await new Promise((resolve) => setTimeout(resolve, 150))
    const stopped = service.stop('SIGTERM')
    const response = await inFlight
    assert.equal(response.status, 200)
    assert.deepEqual(await response.json(), { done: true })
    assert.equal(await stopped, 0)
    assert.match(service.output().stdout, /"msg":"stopped"/)
  })
})
