/**
 * The ledger write-behind as a process of its own (goods-service also runs it inside, unless
 * LEDGER_WORKER_ENABLED=false). It serves `/healthz`, `/readyz` and `/metrics` (the ledger lag);
 * on SIGTERM or SIGINT it stops after the batch in hand.
 */
import { type AppEnv, runService } from '@timedeal/platform'
import { Hono } from 'hono'
import { migrations } from './adapters/migrations.ts'
import { createGoodsMetrics } from './metrics.ts'
import { createGoodsLedgerWriter } from './service.ts'
import { workerSettingsSchema } from './settings.ts'

await runService({
  service: 'goods-ledger-worker',
  settings: workerSettingsSchema,
  migrations,
  start: async ({ settings, connect, logger, lifecycle, metrics: registry }) => {
    const sequelize = await connect.mysql()
    const redis = await connect.redis()
    const reader = await connect.redis('ledger-reader')
    const metrics = createGoodsMetrics(registry, () => writer.lag())
    const writer = createGoodsLedgerWriter(settings, { sequelize, redis, reader }, logger, metrics)
    // Added last, so it stops first: the batch in hand finishes before its clients close.
    lifecycle.add('ledger-writer', writer, (started) => started.stop())
    writer.start()
    return { publicRoutes: new Hono<AppEnv>() }
  },
})
