/**
 * The outbox relay as a process of its own: publishes `timedeal_order`'s committed outbox rows
 * to Kafka. Run it when order-service runs with `OUTBOX_RELAY=false`; any number may run, one
 * publishes at a time. It serves `/healthz`, `/readyz` and `/metrics` (lag and throughput).
 */
import { type AppEnv, runService, startOutboxRelay } from '@timedeal/platform'
import { Hono } from 'hono'
import { migrations } from './adapters/migrations.ts'
import { relayProcessSettingsSchema } from './settings.ts'

await runService({
  service: 'order-outbox-relay',
  settings: relayProcessSettingsSchema,
  migrations,
  start: async ({ settings, connect, logger, lifecycle, metrics }) => {
    const sequelize = await connect.mysql()
    const bus = await connect.kafka()
    const running = await startOutboxRelay({
      sequelize,
      bus,
      logger,
      metrics,
      settings,
    })
    lifecycle.add('outbox-relay', running, (relay) => relay.stop())
    return { publicRoutes: new Hono<AppEnv>() }
  },
})
