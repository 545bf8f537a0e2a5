/**
 * How the whole platform starts on one machine: the catalog's Kafka topics, every service's
 * migrations and demo data (`main.ts seed`), then every service serving (`main.ts serve`) with
 * the others' addresses. `make dev` (hack/dev.ts) runs it on the fixed ports; the browser tests
 * run it on free ports with databases and keys of their own, and stop and start one service.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

export const SERVICE_NAMES = ['gateway', 'user', 'goods', 'order', 'payment', 'chat'] as const
export type ServiceName = (typeof SERVICE_NAMES)[number]

export interface PlatformOptions {
  /** Each service's public port; its internal routes listen at the port + 100 (INTERNAL_PORT's default). */
  readonly ports: Readonly<Record<ServiceName, number>>
  /** Settings of one service on top of everything else (a test's own databases, keys and groups). */
  readonly env?: Readonly<Partial<Record<ServiceName, Readonly<Record<string, string>>>>>
  /** Where the services' log lines go, one readable line each. */
  readonly print: (line: string) => void
  /** A serving service exited (also when it was stopped). */
  readonly onExit?: (name: ServiceName, code: number | null) => void
}

export interface PlatformService {
  readonly name: ServiceName
  readonly url: string
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>
  /** Serve again after `stop`; true once ready. */
  start(): Promise<boolean>
}

export interface Platform {
  readonly services: Readonly<Record<ServiceName, PlatformService>>
  /** Whether each service answered `/readyz` with 200 at start. */
  readonly ready: Readonly<Record<ServiceName, boolean>>
  stop(): Promise<void>
}

const entryOf = (name: ServiceName) => `services/${name}/src/main.ts`

/** How services find each other at the chosen ports. */
export function serviceAddresses(ports: PlatformOptions['ports']): Record<string, string> {
  return {
    JWT_JWKS_URL: `http://127.0.0.1:${ports.user}/.well-known/jwks.json`,
    USER_URL: `http://127.0.0.1:${ports.user}`,
    GOODS_URL: `http://127.0.0.1:${ports.goods}`,
    ORDER_URL: `http://127.0.0.1:${ports.order}`,
    PAYMENT_URL: `http://127.0.0.1:${ports.payment}`,
    CHAT_URL: `http://127.0.0.1:${ports.chat}`,
    GOODS_INTERNAL_URL: `http://127.0.0.1:${ports.goods + 100}`,
    // Nothing balances load on a laptop: a stop is at once, without a drain period.
    SHUTDOWN_DRAIN_MS: '0',
  }
}

/** One readable line from a JSON log line; anything else is shown as it is. */
export function readable(line: string): string {
  try {
    const { level, msg, time: _time, service: _service, ...fields } = JSON.parse(line) as Record<string, unknown>
    const rest = Object.entries(fields)
      .filter(([key]) => key !== 'err')
      .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
      .join(' ')
    const error = fields.err ? ` ${JSON.stringify((fields.err as { message?: string }).message)}` : ''
    return `${String(level).toUpperCase().padEnd(5)} ${String(msg)}${rest ? ` ${rest}` : ''}${error}`
  } catch {
    return line
  }
}

const colours = [36, 33, 35, 32, 34, 31]
const width = Math.max(...SERVICE_NAMES.map((name) => name.length))
const prefix = (name: ServiceName) =>
  `\x1b[${colours[SERVICE_NAMES.indexOf(name) % colours.length]}m${name.padEnd(width)} |\x1b[0m`

function run(name: ServiceName, args: readonly string[], options: PlatformOptions): ChildProcess {
  const child = spawn(process.execPath, [entryOf(name), ...args], {
    env: {
      ...process.env,
      ...serviceAddresses(options.ports),
      ...options.env?.[name],
      HTTP_PORT: String(options.ports[name]),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => options.print(`${prefix(name)} ${readable(line)}`))
  }
  return child
}

/** The catalog's topics, from the generated KafkaTopic manifests, through the operator's `apply`. */
export async function createTopics(print: (line: string) => void): Promise<void> {
  const child = spawn(process.execPath, ['operator/src/main.ts', 'apply', '-f', 'operator/topics'], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => print(`operator: ${readable(line)}`))
  }
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`timedeal-operator apply failed with exit code ${code}`)
}

/** Every service's migrations and demo data, one after another (goods' demo data names the demo seller). */
export async function seedPlatform(options: PlatformOptions): Promise<void> {
  for (const name of SERVICE_NAMES) {
    const child = run(name, ['seed'], options)
    const [code] = (await once(child, 'exit')) as [number | null]
    if (code !== 0) throw new Error(`${name} seed failed with exit code ${code}`)
  }
}

async function waitReady(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const response = await fetch(`${url}/readyz`)
      if (response.status === 200) return true
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}

/** Every service serving, the gateway first; resolves once each is ready or gave up. */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const children = new Map<ServiceName, ChildProcess>()
  const serviceOf = (name: ServiceName): PlatformService => {
    const url = `http://127.0.0.1:${options.ports[name]}`
    return {
      name,
      url,
      async stop() {
        const child = children.get(name)
        if (!child || child.exitCode !== null || child.signalCode !== null) return
        const exited = once(child, 'exit')
        child.kill('SIGTERM')
        await exited
      },
      async start() {
        const child = run(name, ['serve'], options)
        child.on('exit', (code) => options.onExit?.(name, code))
        children.set(name, child)
        return waitReady(url, child)
      },
    }
  }
  const services = Object.fromEntries(SERVICE_NAMES.map((name) => [name, serviceOf(name)])) as Record<
    ServiceName,
    PlatformService
  >
  const readiness = await Promise.all(SERVICE_NAMES.map((name) => services[name].start()))
  return {
    services,
    ready: Object.fromEntries(SERVICE_NAMES.map((name, index) => [name, readiness[index] ?? false])) as Record<
      ServiceName,
      boolean
    >,
    async stop() {
      await Promise.all(SERVICE_NAMES.map((name) => services[name].stop()))
    },
  }
}
