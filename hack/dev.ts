/**
 * `make dev`: creates the catalog's Kafka topics (`timedeal-operator apply -f operator/topics`),
 * migrates and seeds every service, starts them all with prefixed logs, prints where each one
 * runs, and stops them all on Ctrl-C. The steps are hack/platform.ts's, which the browser tests
 * run too.
 */
import { kafkaSettings, loadSettingsOrExit } from '@timedeal/platform'
import { z } from 'zod'
import { createTopics, SERVICE_NAMES, type ServiceName, seedPlatform, startPlatform } from './platform.ts'

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

const ports: Record<ServiceName, number> = {
  gateway: settings.GATEWAY_PORT,
  user: settings.USER_PORT,
  goods: settings.GOODS_PORT,
  order: settings.ORDER_PORT,
  payment: settings.PAYMENT_PORT,
  chat: settings.CHAT_PORT,
}

function say(message: string): void {
  process.stdout.write(`\x1b[1m[dev]\x1b[0m ${message}\n`)
}

const print = (line: string) => process.stdout.write(`${line}\n`)

async function main(): Promise<void> {
  say('creating Kafka topics: timedeal-operator apply -f operator/topics')
  await createTopics(say)
  say('applying migrations and demo data')
  await seedPlatform({ ports, print })

  let stopping = false
  const platform = await startPlatform({
    ports,
    print,
    onExit: (name, code) => {
      if (!stopping) say(`${name === 'gateway' ? 'gateway' : `${name}-service`} exited with code ${code}`)
    },
  })
  const stopAll = async (signal: string) => {
    if (stopping) return
    stopping = true
    say(`${signal}: stopping services`)
    await platform.stop()
    say('all services stopped; the local servers keep running (make infra-down stops them)')
    process.exit(0)
  }
  process.on('SIGINT', () => void stopAll('Ctrl-C'))
  process.on('SIGTERM', () => void stopAll('SIGTERM'))

  // The gateway first: its address is the one a person opens.
  const rows = SERVICE_NAMES.map(
    (name) =>
      `  ${(name === 'gateway' ? 'gateway' : `${name}-service`).padEnd(16)} http://127.0.0.1:${ports[name]}  ${platform.ready[name] ? 'ready' : 'NOT READY'}  (${name.toUpperCase()}_PORT)`,
  )
  say(
    `Timedeal is running at http://127.0.0.1:${settings.GATEWAY_PORT}  (the web app, /api, /api/docs, /ws/chat)\n${rows.join('\n')}\n  health: /healthz   readiness: /readyz   metrics: /metrics   API: /openapi.json   Ctrl-C stops the services`,
  )
}

main().catch((error: unknown) => {
  process.stderr.write(`[dev] ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
