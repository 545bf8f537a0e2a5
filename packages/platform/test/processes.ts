/**
 * Ports and child processes for tests: one way to find a free port, to hold one taken, and to run
 * a command while keeping everything it prints.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'

/** Listens on a port the system picks (127.0.0.1) and resolves with that port. */
export async function listenOnFreePort(server: Pick<Server, 'listen' | 'address' | 'once'>): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (typeof address !== 'object' || !address) throw new Error('the server has no port')
  return address.port
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer()
  const port = await listenOnFreePort(server)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** A port something else already listens on, for tests of a port that is taken; release it afterwards. */
export async function takenPort(): Promise<{ port: number; release(): Promise<void> }> {
  const port = await freePort()
  const blocker = createServer()
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject)
    blocker.listen(port, '127.0.0.1', () => resolve())
  })
  return { port, release: () => new Promise<void>((resolve) => blocker.close(() => resolve())) }
}

export interface CapturedProcess {
  readonly child: ChildProcess
  /** Everything it printed so far. */
  output(): { stdout: string; stderr: string }
  /** Its exit code, once it exited (null when a signal ended it). */
  readonly exited: Promise<number | null>
  /** Its exit code once it exited and its output streams have ended: nothing more will arrive. */
  readonly closed: Promise<number | null>
}

/**
 * Starts `command` with its stdout and stderr kept in memory (and handed to `onOutput`, say for a
 * log file). Standard input gets `input`, then ends.
 */
export function spawnCaptured(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; onOutput?: (chunk: Buffer) => void } = {},
): CapturedProcess {
  const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    options.onOutput?.(chunk)
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
    options.onOutput?.(chunk)
  })
  child.stdin.on('error', () => {})
  child.stdin.end(options.input ?? '')
  const failedToStart = new Promise<never>((_resolve, reject) => child.once('error', reject))
  const exited = Promise.race([
    new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))),
    failedToStart,
  ])
  const closed = Promise.race([
    new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code))),
    failedToStart,
  ])
  // A caller that only waits for one of them must not see the other reject unhandled.
  exited.catch(() => {})
  closed.catch(() => {})
  return { child, output: () => ({ stdout, stderr }), exited, closed }
}

export interface CommandResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end; resolves with its exit code and everything it printed. */
export async function runCommand(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CommandResult> {
  const started = spawnCaptured(command, args, options)
  const code = await started.closed
  return { code, ...started.output() }
}
