import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { eventually, type ServiceProcess, spawnService, takenPort, waitUntilReady } from './support.ts'

const entry = fileURLToPath(new URL('./fixtures/slow-service.ts', import.meta.url))
const workerEntry = fileURLToPath(new URL('./fixtures/stuck-worker.ts', import.meta.url))

/** The JSON log lines of a process whose message matches `pattern`. */
const logLines = (service: ServiceProcess, pattern: RegExp) =>
  service
    .output()
    .stdout.split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((line) => pattern.test(line.msg))

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
    const { port, release } = await takenPort()
    try {
      const service = await spawnService(entry, { HTTP_PORT: String(port) })
      assert.equal(await service.exited, 1)
      assert.equal(
        service.output().stderr.trim(),
        `port 127.0.0.1:${port} is already in use; stop that process or set HTTP_PORT to another port`,
      )
    } finally {
      await release()
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

  test('internal routes answer only on their own listener; the public one answers /internal/* with a 404 problem', async () => {
    const service = await spawnService(entry)
    try {
      await waitUntilReady(service)
      const internal = await fetch(`${service.internalUrl}/internal/echo`)
      assert.equal(internal.status, 200)
      assert.deepEqual(await internal.json(), { internal: true })
      const onPublic = await fetch(`${service.url}/internal/echo`)
      assert.equal(onPublic.status, 404)
      assert.equal(onPublic.headers.get('content-type'), 'application/problem+json')
      assert.equal(
        (await fetch(`${service.internalUrl}/slow`)).status,
        404,
        'public routes stay off the internal listener',
      )
    } finally {
      await service.stop()
    }
  })

  test('an internal port already taken is one clear line naming INTERNAL_PORT and exit code 1', async () => {
    const { port, release } = await takenPort()
    try {
      const service = await spawnService(entry, { INTERNAL_PORT: String(port) })
      assert.equal(await service.exited, 1)
      assert.equal(
        service.output().stderr.trim(),
        `port 127.0.0.1:${port} is already in use; stop that process or set INTERNAL_PORT to another port`,
      )
    } finally {
      await release()
    }
  })

  test('a production process with a development secret refuses to start: one line naming it, exit code 1', async () => {
    const service = await spawnService(entry, { TIMEDEAL_ENV: 'production' })
    assert.equal(await service.exited, 1)
    const stderr = service.output().stderr.trim()
    assert.doesNotMatch(stderr, /\n/)
    assert.match(stderr, /^invalid setting INTERNAL_API_SECRET \(not set\): .*TIMEDEAL_ENV=production/)
    const own = await spawnService(entry, {
      TIMEDEAL_ENV: 'production',
      INTERNAL_API_SECRET: 'a-production-secret-0123456789',
    })
    try {
      await waitUntilReady(own)
    } finally {
      await own.stop()
    }
  })

  test('on SIGTERM readiness turns 503 while requests, in flight and new, are served for the drain period', async () => {
    const service = await spawnService(entry, { SHUTDOWN_DRAIN_MS: '3000', SLOW_MS: '400' })
    await waitUntilReady(service)
    const inFlight = fetch(`${service.url}/slow`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const stopped = service.stop('SIGTERM')
    await eventually(
      async () => ((await fetch(`${service.url}/readyz`)).status === 503 ? true : undefined),
      2_000,
      'readiness to turn 503',
    )
    const arriving = await fetch(`${service.url}/slow`)
    assert.equal(arriving.status, 200, 'a request arriving during the drain is still served')
    assert.equal((await fetch(`${service.internalUrl}/internal/echo`)).status, 200, 'so is an internal one')
    assert.equal((await inFlight).status, 200)
    assert.equal(await stopped, 0)
  })

  test('a request that outlives SHUTDOWN_TIMEOUT_MS makes the process exit 1 with one log line', async () => {
    const service = await spawnService(entry, { SLOW_MS: '60000', SHUTDOWN_TIMEOUT_MS: '1000' })
    await waitUntilReady(service)
    const stuck = fetch(`${service.url}/slow`).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(await service.stop('SIGTERM'), 1)
    const lines = logLines(service, /did not finish within/)
    assert.equal(lines.length, 1, service.output().stdout)
    assert.match(lines[0]?.msg ?? '', /shutdown did not finish within 1000 ms/)
    await stuck
  })

  test('a client that never closes makes the process exit 1 at the deadline with one log line', async () => {
    const service = await spawnService(entry, { HANG_ON_CLOSE: 'true', SHUTDOWN_TIMEOUT_MS: '1000' })
    await waitUntilReady(service)
    assert.equal(await service.stop('SIGTERM'), 1)
    assert.equal(logLines(service, /did not finish within/).length, 1, service.output().stdout)
  })
})

describe('a worker process (no HTTP)', () => {
  const started = async (service: ServiceProcess) =>
    eventually(async () => (logLines(service, /^working$/).length > 0 ? true : undefined), 30_000, 'the worker')

  test('stops cleanly on SIGTERM: exit code 0', async () => {
    const worker = await spawnService(workerEntry, { HANG_ON_CLOSE: 'false' })
    await started(worker)
    assert.equal(await worker.stop('SIGTERM'), 0)
  })

  test('a shutdown that hangs ends at SHUTDOWN_TIMEOUT_MS: exit code 1 and one log line', async () => {
    const worker = await spawnService(workerEntry, { SHUTDOWN_TIMEOUT_MS: '1000' })
    await started(worker)
    assert.equal(await worker.stop('SIGTERM'), 1)
    const lines = logLines(worker, /did not finish within/)
    assert.equal(lines.length, 1, worker.output().stdout)
    assert.match(lines[0]?.msg ?? '', /shutdown did not finish within 1000 ms/)
  })
})
