import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { spawnCaptured, uniqueName } from './support.ts'

const fixture = fileURLToPath(new URL('./fixtures/tests-with-a-service.ts', import.meta.url))

/** Runs a test file under `node --test`, as `make test` does; returns everything it printed. */
async function runTestFile(
  file: string,
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  // A runner of its own: a test process that calls `node --test` inherits the variable marking it.
  const { NODE_TEST_CONTEXT: _inner, ...parentEnv } = process.env
  const run = spawnCaptured(process.execPath, ['--test', '--test-reporter=spec', file], {
    env: { ...parentEnv, ...env },
  })
  const code = await run.exited
  const { stdout, stderr } = run.output()
  const output = stdout + stderr
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
