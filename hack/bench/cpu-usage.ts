/**
 * CPU seconds of the processes a benchmark phase loads (the services it spawned and the local
 * servers hack/infra.sh runs), read from /proc/<pid>/stat before and after the phase, and the V8
 * profiles of the services over the same stretch.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { treeCpuSeconds } from './chat-targets.ts'
import { type CpuProfile, InspectorProfiler, summariseProfiles } from './cpu-profile.ts'
import { resultsFolder, round } from './figures.ts'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const stateDir = process.env.TIMEDEAL_STATE_DIR ?? join(repoRoot, '.state')

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return fallback
  }
}

function childrenOf(pid: number): number[] {
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  return tasks.flatMap((task) =>
    readOr(`/proc/${pid}/task/${task}/children`, '').trim().split(/\s+/).filter(Boolean).map(Number),
  )
}

/** The process under this one whose command line names `entry` (a service's main.ts). */
export function childRunning(entry: string): number | undefined {
  const queue = childrenOf(process.pid)
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    if (readOr(`/proc/${pid}/cmdline`, '').includes(entry)) return pid
    queue.push(...childrenOf(pid))
  }
  return undefined
}

/** The pid of a local server hack/infra.sh started (mariadb, kafka, redis), if it runs. */
export function infraPid(component: string): number | undefined {
  const pid = Number(readOr(join(stateDir, 'run', `${component}.pid`), '').trim())
  return pid > 0 && readOr(`/proc/${pid}/stat`, '') !== '' ? pid : undefined
}

/** Busy CPU seconds of the whole machine so far (every core; idle and I/O wait left out). */
function machineBusySeconds(): number {
  const fields = readOr('/proc/stat', '').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0)
  return (total - (fields[3] ?? 0) - (fields[4] ?? 0)) / 100
}

/**
 * CPU seconds of named process trees from now until the result is called, plus figures the
 * caller measured itself; `machineBusyCores` is the whole machine's average busy cores.
 */
export function cpuMeter(pids: Readonly<Record<string, number | undefined>>) {
  const named = Object.entries(pids).filter((entry): entry is [string, number] => entry[1] !== undefined)
  const before = new Map(named.map(([name, pid]) => [name, treeCpuSeconds([pid])]))
  const machineBefore = machineBusySeconds()
  const started = performance.now()
  return (extra: Record<string, number> = {}) => {
    const wallSeconds = (performance.now() - started) / 1000
    const seconds: Record<string, number> = {}
    for (const [name, pid] of named) seconds[name] = round(treeCpuSeconds([pid]) - (before.get(name) ?? 0), 2)
    for (const [name, value] of Object.entries(extra)) seconds[name] = round(value, 2)
    const machineBusyCores = wallSeconds > 0 ? round((machineBusySeconds() - machineBefore) / wallSeconds, 2) : 0
    return { wallSeconds: round(wallSeconds, 2), ...seconds, machineBusyCores }
  }
}

/** The top self-time functions of each profiled service, and where their profiles were written. */
export interface ProfileFigures {
  readonly top: Record<string, { name: string; ms: number; share: number }[]>
  /** By package (a library's or the project's own code, with the Node internals it called). */
  readonly areas: Record<string, { name: string; ms: number; share: number }[]>
  readonly files: string[]
  readonly busyCores: Record<string, number>
}

/** Starts V8's sampling profiler in each named process over its inspector; the result stops them. */
export async function profileServices(
  ports: Readonly<Record<string, number>>,
  label: string,
  top = 10,
): Promise<() => Promise<ProfileFigures>> {
  const attached = await Promise.all(
    Object.entries(ports).map(async ([name, port]) => [name, await InspectorProfiler.attach(port)] as const),
  )
  await Promise.all(attached.map(([, profiler]) => profiler.start()))
  return async () => {
    const figures: ProfileFigures = { top: {}, areas: {}, files: [], busyCores: {} }
    mkdirSync(resultsFolder, { recursive: true })
    const stamp = new Date().toISOString().replaceAll(':', '-').replace(/\..*$/, '')
    for (const [name, profiler] of attached) {
      const profile: CpuProfile = await profiler.stop()
      profiler.close()
      const file = `${label}-${stamp}-${name}.cpuprofile`
      writeFileSync(join(resultsFolder, file), JSON.stringify(profile))
      figures.files.push(file)
      const summary = summariseProfiles([profile], top)
      figures.top[name] = summary.bySelf.map((entry) => ({ ...entry }))
      figures.areas[name] = summary.byArea.slice(0, 8).map((entry) => ({ ...entry }))
      figures.busyCores[name] = summary.busyCores
    }
    return figures
  }
}

/** The first `count` entries of each service's top list, as the JSON line carries them. */
export const topOf = (figures: ProfileFigures, count: number) =>
  Object.fromEntries(
    Object.entries(figures.top).map(([name, entries]) => [
      name,
      entries.slice(0, count).map((entry) => `${entry.name} ${entry.ms} ms (${round(entry.share * 100)}%)`),
    ]),
  )

/** A Markdown section of each service's top self-time functions. */
export function profileMarkdown(title: string, figures: ProfileFigures, cpuSeconds: Record<string, number>): string[] {
  return [
    `## ${title}`,
    '',
    `Over the phase (CPU seconds per process, its wall time and the machine's average busy cores): ${Object.entries(
      cpuSeconds,
    )
      .map(([name, value]) => `${name} ${value}`)
      .join(', ')}.`,
    '',
    ...Object.entries(figures.top).flatMap(([name, entries]) => [
      `### ${name} (${figures.busyCores[name] ?? 0} cores busy while sampled)`,
      '',
      '| self time | share | function |',
      '|---:|---:|---|',
      ...entries.map((entry) => `| ${entry.ms} ms | ${round(entry.share * 100)}% | \`${entry.name}\` |`),
      '',
      `By package: ${(figures.areas[name] ?? []).map((area) => `${area.name} ${round(area.share * 100)}%`).join(', ')}.`,
      '',
    ]),
    `Profiles (open in Chrome DevTools): ${figures.files.join(', ')}`,
    '',
  ]
}
