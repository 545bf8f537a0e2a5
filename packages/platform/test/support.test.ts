import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { uniqueName } from './support.ts'

const fixture = fileURLToPath(new URL('./fixtures/tests-with-a-service.ts', import.meta.url))

/** Runs a test file under `node --test`, as `make test` does; returns everything it printed. */
async function runTestFile(
  file: string,
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  // A runner of its own: a test process that calls `node --test` inherits the variable marking it.
  const { NODE_TEST_CONTEXT: _inner, ...parentEnv } = process.env
  const child = spawn(process.execPath, ['--test', '--test-reporter=spec', file], {
    env: { ...parentEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, output }
}

describe('test output', () => {
  test("a failing test shows the end of its services' logs; a passing test prints none of them", async () => {
    const marker = uniqueName('fixture')
    const { code, output } = await runTestFile(fixture, { FIXTURE_MARKER: marker })
    assert.equal(code, 1, output)
    assert.match(output, /✖ fails beside a service/)
    assert.match(output, new RegExp(`"service":"${marker}-shown".*"msg":"listening"`), output)
    assert.doesNotMatch(output, new RegExp(`${marker}-quiet`), output)
  })
})
