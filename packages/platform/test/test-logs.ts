/**
 * Logs of a test run: each service process a test spawns, and the test process itself, write to
 * a file in the run's folder (`.state/test-runs/<run-id>/<name>-<n>.log`) instead of the test
 * output. A failing test shows the last lines of every log that was open while it ran.
 */
import { closeSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs'
import { basename, join, relative, resolve } from 'node:path'
import { afterEach, beforeEach } from 'node:test'

const TAIL_LINES = 40
const TAIL_BYTES = 64 * 1024
const LINE_CHARS = 1_000

interface LogSource {
  readonly path: string
  readonly openedAt: number
  closedAt?: number
}

const sources: LogSource[] = []

export interface LogFile {
  readonly path: string
  write(chunk: Buffer): void
  /** `endedAt`: when the writer stopped (a process's exit), if before now. */
  close(endedAt?: number): void
}

/** A new file `<name>-<n>.log` in `dir` (the first n not taken), remembered for failure reports. */
export function openLogFile(dir: string, name: string): LogFile {
  mkdirSync(dir, { recursive: true })
  let fd: number | undefined
  let path = ''
  for (let n = 1; fd === undefined; n++) {
    path = join(dir, `${name}-${n}.log`)
    try {
      fd = openSync(path, 'wx')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
  }
  const source: LogSource = { path, openedAt: Date.now() }
  sources.push(source)
  const open = fd
  let closed = false
  return {
    path,
    // Written at once, in order: a failure report right after sees every line.
    write: (chunk) => {
      if (!closed) writeSync(open, chunk)
    },
    close: (endedAt = Date.now()) => {
      if (closed) return
      closed = true
      source.closedAt = endedAt
      closeSync(open)
    },
  }
}

/** The name of the log of a spawned entry: `services/goods/src/main.ts` → `goods`, `…/worker.ts` → `goods-worker`. */
export function logNameOf(entry: string): string {
  const file = basename(entry).replace(/\.[cm]?[jt]s$/, '')
  const owner = basename(resolve(entry, '../..'))
  if (basename(resolve(entry, '..')) === 'fixtures') return file
  return file === 'main' ? owner : `${owner}-${file}`
}

/** The last lines of a log file (long lines cut), read from its end. */
export function tailOf(path: string, lines = TAIL_LINES): string {
  let fd: number | undefined
  try {
    const size = statSync(path).size
    const length = Math.min(size, TAIL_BYTES)
    const buffer = Buffer.alloc(length)
    fd = openSync(path, 'r')
    readSync(fd, buffer, 0, length, size - length)
    const all = buffer
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
    return all
      .slice(-lines)
      .map((line) => (line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}…` : line))
      .join('\n')
  } catch {
    return ''
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** The ends of every log open at some time since `since`, each under its path. */
export function logTailsSince(since: number): string {
  return sources
    .filter((source) => source.closedAt === undefined || source.closedAt >= since)
    .map((source) => ({ source, tail: tailOf(source.path) }))
    .filter(({ tail }) => tail !== '')
    .map(({ source, tail }) => `--- ${relative(process.cwd(), source.path)} (last lines)\n${tail}`)
    .join('\n')
}

/** After each failing test of this file, its processes' log ends join the test's report. */
export function reportLogsOfFailingTests(): void {
  const started = new WeakMap<object, number>()
  beforeEach((t) => {
    started.set(t, Date.now())
  })
  afterEach((t) => {
    // A test's context has said whether it passed since Node 21.7; the type declarations lag.
    const { passed } = t as { passed?: boolean }
    if (passed !== false || !('diagnostic' in t)) return
    const tails = logTailsSince(started.get(t) ?? 0)
    if (tails) t.diagnostic(`logs written while this test ran:\n${tails}`)
  })
}
