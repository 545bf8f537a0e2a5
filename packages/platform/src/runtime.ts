import type { Connection } from 'mongoose'
import type { Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import { z } from 'zod'
import { createServiceApps, type ReadinessCheck, type ServiceRoutes } from './http.ts'
import { createEventBus, type EventBus } from './kafka.ts'
import { Lifecycle } from './lifecycle.ts'
import { createLogger, type Logger, routeProcessWarnings } from './logger.ts'
import { createMetricsRegistry } from './metrics.ts'
import { createMongo, pingMongo } from './mongo.ts'
import { createSequelize, type Migration, migrate, pingMysql } from './mysql.ts'
import { createRedis, pingRedis, type Redis } from './redis.ts'
import { type Listener, serveUntilSignal } from './server.ts'
import {
  bool,
  internalListener,
  loadSettingsOrExit,
  orExit,
  type serviceSettings,
  shutdownTimings,
} from './settings.ts'

type BaseSettings = z.infer<z.ZodObject<ReturnType<typeof serviceSettings>>>
type AnySettings = BaseSettings & Record<string, unknown>

/**
 * Opens clients from the service's settings. Each one is closed on shutdown and checked by
 * `/readyz`; a server that cannot be reached at start is one clear line and exit code 1.
 */
export interface Connectors {
  mysql(): Promise<Sequelize>
  redis(name?: string): Promise<Redis>
  kafka(): Promise<EventBus>
  mongo(): Promise<Connection>
}

export interface ServiceContext<S> {
  readonly settings: S
  readonly logger: Logger
  readonly lifecycle: Lifecycle
  readonly metrics: Registry
  readonly connect: Connectors
}

export interface ServiceDefinition<Schema extends z.ZodObject> {
  readonly service: string
  /** The version the service's `/openapi.json` states. */
  readonly version?: string
  readonly settings: Schema
  readonly migrations?: readonly Migration[]
  /**
   * Builds the service's routes (and starts its workers) from connected clients: public routes
   * for HTTP_PORT, and internal ones (other services' calls) for INTERNAL_PORT only.
   */
  readonly start: (context: ServiceContext<z.infer<Schema>>) => Promise<ServiceRoutes>
  /** Writes demo data for `make dev`; must be safe to run again. */
  readonly seed?: (context: ServiceContext<z.infer<Schema>>) => Promise<void>
}

/** Settings `runService` reads itself, beside each service's own schema. */
export const runtimeSettings = z.object({ MIGRATE_ON_START: bool(true) })

/**
 * The whole life of a service process: `main.ts serve` (the default), `main.ts migrate` or
 * `main.ts seed`. Settings are validated first; every failure to start is one line, exit 1.
 */
export async function runService<Schema extends z.ZodObject>(
  definition: ServiceDefinition<Schema>,
  argv: readonly string[] = process.argv.slice(2),
): Promise<void> {
  const command = argv[0] ?? 'serve'
  if (!['serve', 'migrate', 'seed'].includes(command)) {
    process.stderr.write(`unknown command '${command}': expected serve, migrate or seed\n`)
    process.exit(2)
  }
  const settings = loadSettingsOrExit(definition.settings) as z.infer<Schema> & AnySettings
  const { MIGRATE_ON_START } = loadSettingsOrExit(runtimeSettings)
  const internal = orExit(() => internalListener(settings))
  const { drainMs, deadlineMs } = orExit(() => shutdownTimings(settings))
  const logger = createLogger(settings.SERVICE_NAME, settings.LOG_LEVEL)
  routeProcessWarnings(logger)
  const lifecycle = new Lifecycle(logger)
  const metrics = createMetricsRegistry(settings.SERVICE_NAME)
  const readiness: ReadinessCheck[] = []
  const connect = connectors(settings, logger, lifecycle, readiness, metrics)
  const context: ServiceContext<z.infer<Schema>> = { settings, logger, lifecycle, metrics, connect }

  try {
    if (definition.migrations && (command !== 'serve' || MIGRATE_ON_START)) {
      await migrate(await connect.mysql(), definition.migrations, logger)
    }
    if (command === 'seed') await definition.seed?.(context)
    if (command !== 'serve') {
      await lifecycle.close()
      return
    }
    const routes = await definition.start(context)
    const { publicApp, internalApp } = createServiceApps(
      {
        service: settings.SERVICE_NAME,
        ...(definition.version ? { version: definition.version } : {}),
        logger,
        metrics,
        readiness,
        draining: () => lifecycle.draining,
        bodyLimitBytes: settings.HTTP_BODY_LIMIT_BYTES,
      },
      routes,
    )
    const listeners: Listener[] = [
      {
        name: 'public',
        app: publicApp,
        host: settings.HTTP_HOST,
        port: settings.HTTP_PORT,
        portSetting: 'HTTP_PORT',
        ...(routes.websocket ? { websocket: routes.websocket } : {}),
      },
    ]
    // A service without internal routes opens no internal listener.
    if (internalApp) listeners.push({ name: 'internal', app: internalApp, ...internal, portSetting: 'INTERNAL_PORT' })
    await serveUntilSignal({ listeners, logger, lifecycle, drainMs, shutdownTimeoutMs: deadlineMs })
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    logger.fatal({ err: error }, `${definition.service} could not start`)
    process.stderr.write(`${definition.service} could not start: ${reason}\n`)
    await lifecycle.close()
    process.exit(1)
  }
}

function connectors(
  settings: AnySettings,
  logger: Logger,
  lifecycle: Lifecycle,
  readiness: ReadinessCheck[],
  metrics: Registry,
): Connectors {
  const once = <T>(open: () => Promise<T>): (() => Promise<T>) => {
    let opened: Promise<T> | undefined
    return () => {
      opened ??= open()
      return opened
    }
  }
  const need = (key: string): never => {
    throw new Error(`this service's settings schema lacks ${key}; add the matching settings fragment`)
  }
  const mysql = once(async () => {
    const database = String(settings.MYSQL_DATABASE ?? need('MYSQL_DATABASE'))
    const sequelize = createSequelize({
      host: String(settings.MYSQL_HOST),
      port: Number(settings.MYSQL_PORT),
      user: String(settings.MYSQL_USER),
      password: String(settings.MYSQL_PASSWORD),
      database,
      poolMax: Number(settings.MYSQL_POOL_MAX ?? 20),
      logger,
    })
    lifecycle.add('mysql', sequelize, (db) => db.close())
    await reach(`MySQL at ${settings.MYSQL_HOST}:${settings.MYSQL_PORT} (database ${database})`, () =>
      pingMysql(sequelize),
    )
    readiness.push({ name: 'mysql', check: () => pingMysql(sequelize) })
    return sequelize
  })
  const redisClients = new Map<string, () => Promise<Redis>>()
  const redis = (name = 'main') => {
    let open = redisClients.get(name)
    if (!open) {
      open = once(async () => {
        const url = String(settings.REDIS_URL ?? need('REDIS_URL'))
        const clusterNodes = (settings.REDIS_CLUSTER_NODES as string[] | undefined) ?? []
        const client = createRedis({
          url,
          clusterNodes,
          logger,
          connectionName: `${settings.SERVICE_NAME}:${name}`,
          autoPipelining: settings.REDIS_AUTO_PIPELINING !== false,
        })
        lifecycle.add(`redis:${name}`, client, (c) => c.quit().catch(() => c.disconnect()))
        const where =
          clusterNodes.length > 0 ? `Redis Cluster at ${clusterNodes.join(',')}` : `Redis at ${redactUrl(url)}`
        await reach(where, () => pingRedis(client))
        readiness.push({ name: name === 'main' ? 'redis' : `redis:${name}`, check: () => pingRedis(client) })
        return client
      })
      redisClients.set(name, open)
    }
    return open()
  }
  const kafka = once(async () => {
    const brokers = (settings.KAFKA_BROKERS as string[] | undefined) ?? need('KAFKA_BROKERS')
    const topicPrefix = String(settings.KAFKA_TOPIC_PREFIX ?? '')
    const bus = createEventBus({ brokers, clientId: settings.SERVICE_NAME, logger, topicPrefix, metrics })
    const admin = await reach(`Kafka at ${brokers.join(',')}`, async () => {
      const connected = await bus.admin()
      await connected.ping()
      return connected
    })
    lifecycle.add('kafka-admin', admin, (a) => a.close())
    readiness.push({ name: 'kafka', check: () => admin.ping() })
    return bus
  })
  const mongo = once(async () => {
    const url = String(settings.MONGO_URL ?? need('MONGO_URL'))
    const connection = await reach(`MongoDB at ${redactUrl(url)}`, () =>
      createMongo({ url, database: String(settings.MONGO_DATABASE), logger }),
    )
    lifecycle.add('mongo', connection, (c) => c.close())
    readiness.push({ name: 'mongo', check: () => pingMongo(connection) })
    return connection
  })
  return { mysql, redis, kafka, mongo }
}

async function reach<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt()
  } catch (error) {
    throw new Error(`cannot reach ${what}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@')
}
