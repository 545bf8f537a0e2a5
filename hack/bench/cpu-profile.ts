/**
 * CPU profiles of a running Node process over its inspector (started with `--inspect` on a
 * loopback port), for exactly the stretch of load that matters, and their summary: where the
 * busy time went, by function (self and total) and by package.
 */
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'

/** The V8 `.cpuprofile` format (what `--cpu-prof` writes and DevTools reads). */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number
    readonly callFrame: {
      readonly functionName: string
      readonly url: string
      readonly lineNumber: number
      readonly columnNumber: number
    }
    readonly children?: readonly number[]
  }[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

/** One inspector session on a process; the profiler starts and stops on demand. */
export class InspectorProfiler {
  readonly #socket: WebSocket
  #nextId = 1
  readonly #waiting = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>()

  private constructor(socket: WebSocket) {
    this.#socket = socket
    socket.on('message', (data: Buffer) => {
      const reply = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } }
      const waiting = reply.id === undefined ? undefined : this.#waiting.get(reply.id)
      if (!waiting || reply.id === undefined) return
      this.#waiting.delete(reply.id)
      if (reply.error) waiting.reject(new Error(reply.error.message))
      else waiting.resolve(reply.result)
    })
  }

  /** Attaches to the inspector listening on `port` (loopback). */
  static async attach(port: number): Promise<InspectorProfiler> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      webSocketDebuggerUrl: string
    }[]
    const url = targets[0]?.webSocketDebuggerUrl
    if (!url) throw new Error(`no inspector target on port ${port}`)
    const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 })
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    const profiler = new InspectorProfiler(socket)
    await profiler.#call('Profiler.enable')
    return profiler
  }

  async start(samplingIntervalUs = 1000): Promise<void> {
    await this.#call('Profiler.setSamplingInterval', { interval: samplingIntervalUs })
    await this.#call('Profiler.start')
  }

  async stop(): Promise<CpuProfile> {
    const { profile } = (await this.#call('Profiler.stop')) as { profile: CpuProfile }
    return profile
  }

  close(): void {
    this.#socket.close()
  }

  #call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      this.#socket.send(JSON.stringify({ id, method, params }))
    })
  }
}

export interface TimeShare {
  readonly name: string
  readonly ms: number
  /** Of the busy (not idle) time. */
  readonly share: number
}

export interface ProfileSummary {
  readonly sampledMs: number
  readonly busyMs: number
  /** Busy CPU time per second of wall time, summed over the processes. */
  readonly busyCores: number
  /** By package: the Node internals and native code a package called count as its own. */
  readonly byArea: readonly TimeShare[]
  /** Time spent in the function itself. */
  readonly bySelf: readonly TimeShare[]
  /** Time with the function anywhere on the stack; the project's own functions only. */
  readonly byTotalOwnCode: readonly TimeShare[]
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Where a function lives: a package under node_modules, one of the project's, a Node module, or V8 itself. */
function areaOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'V8 garbage collector'
    if (functionName.startsWith('(')) return `V8 ${functionName}`
    return 'native code'
  }
  if (url.startsWith('node:')) {
    const path = url.slice('node:'.length).replace(/^internal\//, '')
    return `node:${path.split('/')[0]}`
  }
  const modules = url.lastIndexOf('/node_modules/')
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + '/node_modules/'.length).split('/')
    return scope?.startsWith('@') ? `${scope}/${name}` : (scope ?? url)
  }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const inRepo = /(?:^|\/)(services\/[^/]+|packages\/[^/]+|operator|hack)\//.exec(path)
  return inRepo?.[1] ?? path
}

function whereOf(url: string, lineNumber: number): string {
  if (url === '') return ''
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const shown = path.startsWith(repoRoot)
    ? relative(repoRoot, path)
    : path.replace(/^.*?\/(services|packages)\//, '$1/').replace(/^.*\/node_modules\//, '')
  return `${shown}:${lineNumber + 1}`
}

const isOwnCode = (area: string) => /^(services|packages)\//.test(area)
const isLibraryOrOwnCode = (area: string) =>
  !area.startsWith('node:') && !area.startsWith('V8 ') && area !== 'native code'

/**
 * The package a sample's time is charged to: the nearest frame on its stack that is a library
 * or the project's own code, so the socket writes and buffers a library causes inside Node and
 * native code count as that library's. The garbage collector and V8's own work stay apart.
 */
function owningArea(
  nodeId: number,
  keyOf: ReadonlyMap<number, { readonly area: string }>,
  parent: ReadonlyMap<number, number>,
): string {
  const leaf = keyOf.get(nodeId)?.area ?? '?'
  if (leaf.startsWith('V8 ')) return leaf
  for (let id: number | undefined = nodeId; id !== undefined; id = parent.get(id)) {
    const area = keyOf.get(id)?.area
    if (area && isLibraryOrOwnCode(area)) return area
  }
  return leaf
}

/**
 * Sums the samples of one or more profiles (the processes of one target over the same
 * stretch): each sample lasts until the next one.
 */
export function summariseProfiles(profiles: readonly CpuProfile[], top = 15): ProfileSummary {
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const areas = new Map<string, number>()
  let sampledMs = 0
  let idleMs = 0
  let wallMs = 0
  for (const profile of profiles) {
    wallMs = Math.max(wallMs, (profile.endTime - profile.startTime) / 1000)
    const byId = new Map(profile.nodes.map((node) => [node.id, node]))
    const parent = new Map<number, number>()
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
    const keyOf = new Map<number, { key: string; area: string; idle: boolean }>()
    for (const node of profile.nodes) {
      const { functionName, url, lineNumber } = node.callFrame
      const name = functionName || '(anonymous)'
      const where = whereOf(url, lineNumber)
      keyOf.set(node.id, {
        key: where ? `${name} ${where}` : name,
        area: areaOf(url, functionName),
        idle: functionName === '(idle)',
      })
    }
    profile.samples.forEach((nodeId, index) => {
      const ms = (profile.timeDeltas[index + 1] ?? 0) / 1000
      const leaf = keyOf.get(nodeId)
      if (!leaf) return
      sampledMs += ms
      if (leaf.idle) {
        idleMs += ms
        return
      }
      self.set(leaf.key, (self.get(leaf.key) ?? 0) + ms)
      const area = owningArea(nodeId, keyOf, parent)
      areas.set(area, (areas.get(area) ?? 0) + ms)
      // Every function on the stack once, however often it recurses.
      const seen = new Set<string>()
      for (let id: number | undefined = nodeId; id !== undefined; id = parent.get(id)) {
        const frame = keyOf.get(id)
        if (!frame || seen.has(frame.key) || !isOwnCode(frame.area) || !byId.has(id)) continue
        seen.add(frame.key)
        total.set(frame.key, (total.get(frame.key) ?? 0) + ms)
      }
    })
  }
  const busyMs = sampledMs - idleMs
  const ranked = (map: Map<string, number>, count: number): TimeShare[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, ms]) => ({
        name,
        ms: Math.round(ms),
        share: busyMs > 0 ? Math.round((ms / busyMs) * 1000) / 1000 : 0,
      }))
  return {
    sampledMs: Math.round(sampledMs),
    busyMs: Math.round(busyMs),
    busyCores: wallMs > 0 ? Math.round((busyMs / wallMs) * 100) / 100 : 0,
    byArea: ranked(areas, top),
    bySelf: ranked(self, top),
    byTotalOwnCode: ranked(total, top),
  }
}
