import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runCommand, startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { type ChatServer, startChatServer } from './stomp-support.ts'

const STOMP_PY = 'stomp-py==9.0.0'
const cache = process.env.TIMEDEAL_CACHE ?? join(homedir(), '.cache', 'timedeal')
const venv = join(cache, 'stomp-py-9.0.0')
const python = join(venv, 'bin', 'python')
const script = fileURLToPath(new URL('./python/stomp_client.py', import.meta.url))

let issuer: TestIssuer
let server: ChatServer

/** stomp.py in a virtual environment of its own under the cache folder, made once. */
async function ensureStompPy(): Promise<void> {
  if (existsSync(python)) return
  for (const [command, args] of [
    ['python3', ['-m', 'venv', venv]],
    [join(venv, 'bin', 'pip'), ['install', '--quiet', STOMP_PY]],
  ] as const) {
    const result = await runCommand(command, args)
    if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`)
  }
}

before(async () => {
  await ensureStompPy()
  issuer = await startTestIssuer()
  server = await startChatServer(issuer)
})

after(async () => {
  await server?.stop()
  await issuer?.close()
})

describe('/ws/chat with stomp.py', () => {
  test('a Python client connects, subscribes, sends, receives its message, gets its receipts and disconnects', async () => {
    const buyerId = uniqueName('buyer')
    const roomId = await server.openRoom(buyerId, uniqueName('seller'))
    const token = await issuer.sign({ sub: buyerId, role: 'BUYER' })
    const port = new URL(server.url).port
    const result = await runCommand(python, [script, port, token, roomId, 'from Python'])
    assert.equal(result.code, 0, result.stderr)
    const seen = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {
      message: { headers: Record<string, string>; body: string }
      receipts: string[]
    }
    assert.equal(seen.message.body, 'from Python')
    assert.equal(seen.message.headers['sender-id'], buyerId)
    assert.equal(seen.message.headers['content-type'], 'text/plain')
    assert.deepEqual(seen.receipts, ['subscribed', 'sent', 'bye'])
  })
})
