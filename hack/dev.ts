/**
 * `make dev`: creates the catalog's Kafka topics (`timedeal-operator apply -f operator/topics`),
 * migrates and seeds every service, starts them all with prefixed logs, prints where each one
 * runs, and stops them all on Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { kafkaSettings, loadSettingsOrExit } from '@timedeal/platform'
import { z } from 'zod'

interface DevService {
  readonly name: string
  readonly entry: string
  readonly portSetting: string
  readonly port: number
}

const settings = loadSettingsOrExit(
  z.object({
    ...kafkaSettings(),
    GATEWAY_PORT: z.coerce.number().int().default(8080),
    USER_PORT: z.coerce.number().int().default(8081),
    GOODS_PORT: z.coerce.number().int().default(8082),
    ORDER_PORT: z.coerce.number().int().default(8083),
    PAYMENT_PORT: z.coerce.number().int().default(8084),
    CHAT_PORT: z.coerce.number().int().default(8085),
  }),
)

// The gateway first: its address is the one a person opens.
const services: DevService[] = [
  { name: 'gateway', entry: 'services/gateway/src/main.ts', portSetting: 'GATEWAY_PORT', port: settings.GATEWAY_PORT },
  { name: 'user', entry: 'services/user/src/main.ts', portSetting: 'USER_PORT', port: settings.USER_PORT },
  { name: 'goods', entry: 'services/goods/src/main.ts', portSetting: 'GOODS_PORT', port: settings.GOODS_PORT },
  { name: 'order', entry: 'services/order/src/main.ts', portSetting: 'ORDER_PORT', port: settings.ORDER_PORT },
  { name: 'payment', entry: 'services/payment/src/main.ts', portSetting: 'PAYMENT_PORT', port: settings.PAYMENT_PORT },
  { name: 'chat', entry: 'services/chat/src/main.ts', portSetting: 'CHAT_PORT', port: settings.CHAT_PORT },
]

// Services find each other at the ports chosen above, whichever were moved; each serves its
// internal routes at its port + 100 (INTERNAL_PORT's default).
const serviceAddresses = {
  JWT_JWKS_URL: `http://127.0.0.1:${settings.USER_PORT}/.well-known/jwks.json`,
  USER_URL: `http://127.0.0.1:${settings.USER_PORT}`,
  GOODS_URL: `http://127.0.0.1:${settings.GOODS_PORT}`,
  ORDER_URL: `http://127.0.0.1:${settings.ORDER_PORT}`,
  PAYMENT_URL: `http://127.0.0.1:${settings.PAYMENT_PORT}`,
  CHAT_URL: `http://127.0.0.1:${settings.CHAT_PORT}`,
  GOODS_INTERNAL_URL: `http://127.0.0.1:${settings.GOODS_PORT + 100}`,
  // Nothing balances load on a laptop: Ctrl-C stops at once, without a drain period.
  SHUTDOWN_DRAIN_MS: '0',
}

const colours = [36, 33, 35, 32, 34, 31]
const width = Math.max(...services.map((service) => service.name.length))
const prefix = (name: string, index: number) => `\x1b[${colours[index % colours.length]}m${name.padEnd(width)} |\x1b[0m`

function say(message: string): void {
  process.stdout.write(`\x1b[1m[dev]\x1b[0m ${message}\n`)
}

/** One readable line from a JSON log line; anything else is shown as it is. */
function readable(line: string): string {
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

function run(service: DevService, index: number, args: string[]): ChildProcess {
  const child = spawn(process.execPath, [service.entry, ...args], {
    env: { ...process.env, ...serviceAddresses, HTTP_PORT: String(service.port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      process.stdout.write(`${prefix(service.name, index)} ${readable(line)}\n`)
    })
  }
  return child
}

async function runToEnd(service: DevService, index: number, args: string[]): Promise<void> {
  const child = run(service, index, args)
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`${service.name}-service ${args.join(' ')} failed with exit code ${code}`)
}

/** The catalog's topics, from the generated KafkaTopic manifests, through the operator's `apply`. */
async function createTopics(): Promise<void> {
  say('creating Kafka topics: timedeal-operator apply -f operator/topics')
  const child = spawn(process.execPath, ['operator/src/main.ts', 'apply', '-f', 'operator/topics'], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => say(`operator: ${readable(line)}`))
  }
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`timedeal-operator apply failed with exit code ${code}`)
}

async function waitReady(service: DevService, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const response = await fetch(`http://127.0.0.1:${service.port}/readyz`)
      if (response.status === 200) return true
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}

async function main(): Promise<void> {
  await createTopics()
  say('applying migrations and demo data')
  for (const [index, service] of services.entries()) await runToEnd(service, index, ['seed'])

  const children = services.map((service, index) => run(service, index, ['serve']))
  let stopping = false
  const stopAll = async (signal: string) => {
    if (stopping) return
    stopping = true
    say(`${signal}: stopping services`)
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null) return
        child.kill('SIGTERM')
        await once(child, 'exit')
      }),
    )
    say('all services stopped; the local servers keep running (make infra-down stops them)')
    process.exit(0)
  }
  process.on('SIGINT', () => void stopAll('Ctrl-C'))
  process.on('SIGTERM', () => void stopAll('SIGTERM'))
  children.forEach((child, index) => {
    child.on('exit', (code) => {
      if (!stopping) say(`${services[index]?.name}-service exited with code ${code}`)
    })
  })

  const ready = await Promise.all(services.map((service, index) => waitReady(service, children[index] as ChildProcess)))
  const rows = services.map(
    (service, index) =>
      `  ${(service.name === 'gateway' ? 'gateway' : `${service.name}-service`).padEnd(16)} http://127.0.0.1:${service.port}  ${ready[index] ? 'ready' : 'NOT READY'}  (${service.portSetting})`,
  )
  say(
    `Timedeal is running at http://127.0.0.1:${settings.GATEWAY_PORT}  (the web app, /api, /api/docs, /ws/chat)\n${rows.join('\n')}\n  health: /healthz   readiness: /readyz   metrics: /metrics   API: /openapi.json   Ctrl-C stops the services`,
  )
}

main().catch((error: unknown) => {
  process.stderr.write(`[dev] ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
