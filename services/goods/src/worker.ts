/**
 * The ledger write-behind as a process of its own (goods-service also runs it inside, unless
 * LEDGER_WORKER_ENABLED=false). Stops on SIGTERM or SIGINT after the batch in hand.
 */
import { hostname } from 'node:os'
import {
  createLogger,
  createRedis,
  createSequelize,
  Lifecycle,
  loadSettingsOrExit,
  migrate,
  pingMysql,
  pingRedis,
  routeProcessWarnings,
  stopOnSignal,
} from '@timedeal/platform'
import { stockKeys } from '@timedeal/stock'
import { createLedgerWriter } from './adapters/ledger-writer.ts'
import { migrations } from './adapters/migrations.ts'
import { workerSettingsSchema } from './settings.ts'

const settings = loadSettingsOrExit(workerSettingsSchema)
const logger = createLogger(settings.SERVICE_NAME, settings.LOG_LEVEL)
routeProcessWarnings(logger)
const lifecycle = new Lifecycle(logger)

try {
  const sequelize = lifecycle.add(
    'mysql',
    createSequelize({
      host: settings.MYSQL_HOST,
      port: settings.MYSQL_PORT,
      user: settings.MYSQL_USER,
      password: settings.MYSQL_PASSWORD,
      database: settings.MYSQL_DATABASE,
      poolMax: 2,
      logger,
    }),
    (db) => db.close(),
  )
  await pingMysql(sequelize)
  if (settings.MIGRATE_ON_START) await migrate(sequelize, migrations, logger)
  const redis = lifecycle.add(
    'redis',
    createRedis({ url: settings.REDIS_URL, logger, connectionName: `${settings.SERVICE_NAME}:${hostname()}` }),
    (client) => client.quit().catch(() => client.disconnect()),
  )
  await pingRedis(redis)
  const reader = lifecycle.add(
    'redis:reader',
    createRedis({ url: settings.REDIS_URL, logger, connectionName: `${settings.SERVICE_NAME}:ledger-reader` }),
    (client) => client.disconnect(),
  )
  const writer = createLedgerWriter({
    redis,
    reader,
    sequelize,
    keys: stockKeys(settings.STOCK_KEY_PREFIX),
    consumer: settings.LEDGER_CONSUMER_NAME,
    batchSize: settings.LEDGER_BATCH_SIZE,
    claimIdleMs: settings.LEDGER_CLAIM_IDLE_MS,
    logger,
  })
  lifecycle.add('ledger-writer', writer, (started) => started.stop())
  writer.start()
} catch (error) {
  const reason = error instanceof Error ? error.message : String(error)
  logger.fatal({ err: error }, 'the ledger worker could not start')
  process.stderr.write(`the ledger worker could not start: ${reason}\n`)
  await lifecycle.close()
  process.exit(1)
}

// A batch that cannot finish (MySQL gone mid-write) must not keep the process alive forever.
stopOnSignal(lifecycle, { logger, deadlineMs: settings.SHUTDOWN_TIMEOUT_MS })
