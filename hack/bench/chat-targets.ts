/**
 * What `make bench-chat` loads: chat-service as one or more processes, or RabbitMQ's Web-STOMP as
 * a plain process; how each is reached over STOMP, and what its processes use (memory, CPU).
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import {
  freePort,
  type ServiceProcess,
  spawnService,
  type TestIssuer,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { WebSocket } from 'ws'

/** How one target is reached and watched. */
export interface Target {
  readonly label: string
  readonly kind: 'chat' | 'rabbitmq'
  readonly socketUrls: readonly string[]
  /** The CONNECT frame of a session of `userId`, heart-beats off. */
  connectFrame(userId: string): Promise<string>
  subscribeDestination(roomId: string): string
  sendDestination(roomId: string): string
  /** Resident memory of the server's processes, bytes. */
  rss(): number
  /** CPU time the server's processes used so far (user + system), seconds. */
  cpuSeconds(): number
  /** Inspector ports of the server's processes (chat-service only, when profiling). */
  readonly inspectorPorts: readonly number[]
  stop(): Promise<void>
}

const CLOCK_TICKS_PER_SECOND = 100

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return fallback
  }
}

function descendants(pid: number): number[] {
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  const children = tasks.flatMap((task) =>
    readOr(`/proc/${pid}/task/${task}/children`, '').trim().split(/\s+/).filter(Boolean).map(Number),
  )
  return children.flatMap((child) => [child, ...descendants(child)])
}

const tree = (pids: readonly number[]) => pids.flatMap((pid) => [pid, ...descendants(pid)])

const alive = (pid: number) => readOr(`/proc/${pid}/stat`, '') !== '' && !/\) Z /.test(readOr(`/proc/${pid}/stat`, ''))

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}

/** Resident memory of `pids` and every process under them, bytes. */
export function treeRss(pids: readonly number[]): number {
  return tree(pids).reduce((sum, pid) => {
    const match = /VmRSS:\s+(\d+) kB/.exec(readOr(`/proc/${pid}/status`, ''))
    return sum + (match ? Number(match[1]) * 1024 : 0)
  }, 0)
}

/** CPU seconds (user + system) of `pids` and every process under them. */
export function treeCpuSeconds(pids: readonly number[]): number {
  return tree(pids).reduce((sum, pid) => {
    // The command may hold spaces and parentheses: the fields start after the last ')'.
    const stat = readOr(`/proc/${pid}/stat`, '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0)
    return sum + (Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : 0)
  }, 0)
}

/** Processes under this one whose command line names `entry`. */
const processesRunning = (entry: string) =>
  descendants(process.pid).filter((pid) => readOr(`/proc/${pid}/cmdline`, '').includes(entry))

/** A port below 32768 (RabbitMQ's ports stay out of the ephemeral range) that is free now. */
async function lowPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000)
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen(candidate, '127.0.0.1', () => server.close(() => resolve(true)))
    })
    if (free) return candidate
  }
  return freePort()
}

const connectFrame = (headers: readonly [string, string][]) =>
  `CONNECT\n${headers.map(([name, value]) => `${name}:${value}\n`).join('')}heart-beat:0,0\n\n\0`

/** chat-service as `instances` processes sharing one database, key prefix and consumer group, as in production. */
export async function chatTarget(options: {
  readonly entry: string
  readonly instances: number
  readonly env: Record<string, string>
  readonly issuer: TestIssuer
  readonly inspect: boolean
}): Promise<Target> {
  const processes: ServiceProcess[] = []
  const inspectorPorts: number[] = []
  const stopAll = () => Promise.all(processes.map((service) => service.stop('SIGTERM'))).then(() => undefined)
  try {
    for (let index = 0; index < options.instances; index++) {
      const env = { ...options.env }
      if (options.inspect) {
        // The profiler attaches over the inspector only for the profiled step; unattached it costs nothing.
        const port = await freePort()
        inspectorPorts.push(port)
        env.NODE_OPTIONS = `--inspect=127.0.0.1:${port}`
      }
      processes.push(await spawnService(options.entry, env))
    }
    await Promise.all(processes.map((service) => waitUntilReady(service, 90_000)))
  } catch (error) {
    await stopAll()
    throw error
  }
  const pids = processesRunning(options.entry)
  const tokens = new Map<string, string>()
  return {
    label: `chat-service ×${options.instances}`,
    kind: 'chat',
    socketUrls: processes.map((service) => `${service.url.replace('http', 'ws')}/ws/chat`),
    async connectFrame(userId) {
      let token = tokens.get(userId)
      if (!token) {
        token = await options.issuer.sign({ sub: userId, role: userId.includes('buyer') ? 'BUYER' : 'SELLER' })
        tokens.set(userId, token)
      }
      return connectFrame([
        ['accept-version', '1.2'],
        ['host', 'timedeal'],
        ['passcode', token],
      ])
    },
    subscribeDestination: (roomId) => `/sub/rooms/${roomId}`,
    sendDestination: (roomId) => `/pub/rooms/${roomId}`,
    rss: () => treeRss(pids),
    cpuSeconds: () => treeCpuSeconds(pids),
    inspectorPorts,
    stop: stopAll,
  }
}

const RABBITMQ_HOME = '/usr/lib/rabbitmq'

export function rabbitmqVersion(): string {
  try {
    return /Version:\s*(\S+)/.exec(execFileSync('dpkg', ['-s', 'rabbitmq-server'], { encoding: 'utf8' }))?.[1] ?? '?'
  } catch {
    return '?'
  }
}

/** RabbitMQ as a plain process: its own node name, folders under the state folder, ports on loopback. */
export async function rabbitTarget(stateDir: string): Promise<Target> {
  const base = join(stateDir, 'rabbitmq')
  const runDir = join(base, `run-${Date.now().toString(36)}`)
  mkdirSync(join(runDir, 'log'), { recursive: true })
  const [amqp, dist, epmd, stomp, webStomp] = [
    await lowPort(),
    await lowPort(),
    await lowPort(),
    await lowPort(),
    await lowPort(),
  ]
  const config = join(runDir, 'rabbitmq.conf')
  writeFileSync(
    config,
    [
      `listeners.tcp.default = 127.0.0.1:${amqp}`,
      `stomp.listeners.tcp.1 = 127.0.0.1:${stomp}`,
      `web_stomp.tcp.ip = 127.0.0.1`,
      `web_stomp.tcp.port = ${webStomp}`,
      'web_stomp.ws_frame = binary',
      // Cowboy closes a WebSocket that sent nothing for a minute; a bench session may only listen that long.
      'web_stomp.ws_opts.idle_timeout = 3600000',
      'web_stomp.cowboy_opts.idle_timeout = 3600000',
      'loopback_users = none',
      '',
    ].join('\n'),
  )
  const env = {
    ...process.env,
    HOME: base,
    RABBITMQ_BASE: runDir,
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_MNESIA_BASE: join(runDir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(runDir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    RABBITMQ_NODENAME: `bench${amqp}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_PORT: String(epmd),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  }
  const child = spawn(join(RABBITMQ_HOME, 'bin/rabbitmq-server'), [], {
    env,
    stdio: ['ignore', 'ignore', 'ignore'],
  })
  const stop = async () => {
    // The script's exit does not wait for the Erlang VM under it: wait for every process of the tree.
    const processes = child.pid ? tree([child.pid]) : []
    for (const pid of processes) signal(pid, 'SIGTERM')
    const deadline = Date.now() + 20_000
    while (processes.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200))
    for (const pid of processes.filter(alive)) signal(pid, 'SIGKILL')
    rmSync(runDir, { recursive: true, force: true })
    // The Erlang port mapper the broker started on its own port (it refuses while a node is registered).
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        execFileSync('epmd', ['-port', String(epmd), '-kill'], { env, stdio: 'ignore' })
        break
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  }
  const url = `ws://127.0.0.1:${webStomp}/ws`
  const deadline = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`rabbitmq-server exited with ${child.exitCode} (logs in ${runDir}/log)`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = new WebSocket(url, ['v12.stomp'])
      socket.once('open', () => {
        socket.terminate()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`RabbitMQ's Web-STOMP did not answer within 90 s (logs in ${runDir}/log)`)
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  const pids = child.pid ? [child.pid] : []
  return {
    label: 'RabbitMQ Web-STOMP',
    kind: 'rabbitmq',
    socketUrls: [url],
    connectFrame: async () =>
      connectFrame([
        ['accept-version', '1.2'],
        ['host', '/'],
        ['login', 'guest'],
        ['passcode', 'guest'],
      ]),
    subscribeDestination: (roomId) => `/topic/rooms.${roomId}`,
    sendDestination: (roomId) => `/topic/rooms.${roomId}`,
    rss: () => treeRss(pids),
    cpuSeconds: () => treeCpuSeconds(pids),
    inspectorPorts: [],
    stop,
  }
}
