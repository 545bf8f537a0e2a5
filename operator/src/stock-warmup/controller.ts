/**
 * The StockWarmup controller: runs the pure decision, does the warm-up when it says so, and
 * turns the outcome into status and Events. Sources and targets named by Secrets are read from
 * the resource's own namespace; without one, the operator's own MySQL and Redis settings apply.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node'
import { createRedis, type Logger, type Redis } from '@timedeal/platform'
import { Counter, Histogram, type Registry } from 'prom-client'
import type { Controller, ReconcileContext, ReconcileOutcome } from '../runtime/controller.ts'
import { decideWarmup, eventsBetween, type RetryTiming, statusAfterFailure, statusAfterWarm } from './decide.ts'
import type { WarmupSettings } from './settings.ts'
import type { MysqlSource } from './source.ts'
import type { WarmupPlan } from './spec.ts'
import {
  STOCK_WARMUP_KIND,
  STOCK_WARMUP_PLURAL,
  type StockWarmup,
  type StockWarmupSpec,
  type StockWarmupStatus,
} from './types.ts'
import { WarmupError, warm } from './warm.ts'

/** Reads a Secret's data (decoded); undefined when there is no such Secret. */
export type SecretReader = (namespace: string, name: string) => Promise<Record<string, string> | undefined>

/** Secrets through the API server (the operator's ClusterRole grants `get` on secrets). */
export function kubeSecretReader(kubeConfig: KubeConfig): SecretReader {
  const core = kubeConfig.makeApiClient(CoreV1Api)
  return async (namespace, name) => {
    try {
      const secret = await core.readNamespacedSecret({ name, namespace })
      const decoded: Record<string, string> = {}
      for (const [key, value] of Object.entries(secret.data ?? {}))
        decoded[key] = Buffer.from(value, 'base64').toString()
      return { ...decoded, ...(secret.stringData ?? {}) }
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined
      throw error
    }
  }
}

export interface StockWarmupController extends Controller<StockWarmupSpec, StockWarmupStatus> {
  /** Closes the Redis connections it opened. */
  close(): Promise<void>
}

export interface StockWarmupControllerOptions {
  readonly settings: WarmupSettings
  readonly logger: Logger
  /** Absent (the CLI): a resource naming a Secret uses the operator's own settings instead. */
  readonly readSecret?: SecretReader
  /** Told after each page written (the CLI prints it). */
  readonly progress?: (line: string) => void
  readonly metrics?: Registry
}

function warmupMetrics(registry: Registry) {
  return {
    goods: new Counter({
      name: 'operator_stockwarmup_goods_total',
      help: 'Goods handled by warm-ups, by result: loaded, skipped (already in Redis) or refused (overwrite of an opened sale).',
      labelNames: ['result'],
      registers: [registry],
    }),
    runs: new Counter({
      name: 'operator_stockwarmup_runs_total',
      help: 'Warm-up attempts, by outcome: ready, refused, source_error or redis_error.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'operator_stockwarmup_duration_seconds',
      help: 'Time of one warm-up attempt, from the ledger check to the last chunk written.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
  }
}

export const retryTimingOf = (settings: WarmupSettings): RetryTiming => ({
  baseMs: settings.STOCK_WARMUP_RETRY_BASE_MS,
  maxMs: settings.STOCK_WARMUP_RETRY_MAX_MS,
})

export function createStockWarmupController(options: StockWarmupControllerOptions): StockWarmupController {
  const { settings } = options
  const timing = retryTimingOf(settings)
  const clients = new Map<string, Redis>()
  const metrics = options.metrics ? warmupMetrics(options.metrics) : undefined

  // The operator's own target may be a Redis Cluster; a Secret's target is one Redis by its url.
  const redisFor = (url: string, clusterNodes: readonly string[] = []) => {
    let redis = clients.get(url)
    if (!redis) {
      redis = createRedis({ url, clusterNodes, logger: options.logger, connectionName: 'timedeal-operator-warmup' })
      clients.set(url, redis)
    }
    return redis
  }

  async function secret(resource: StockWarmup, name: string, kind: 'source' | 'redis') {
    const namespace = resource.metadata.namespace ?? 'default'
    let data: Record<string, string> | undefined
    try {
      data = await options.readSecret?.(namespace, name)
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      throw new WarmupError({ kind, message: `cannot read Secret ${namespace}/${name}: ${reason}` })
    }
    if (!data) throw new WarmupError({ kind, message: `Secret ${namespace}/${name} does not exist` })
    return data
  }

  async function sourceOf(resource: StockWarmup, plan: WarmupPlan): Promise<MysqlSource> {
    const defaults: MysqlSource = {
      host: settings.MYSQL_HOST,
      port: settings.MYSQL_PORT,
      user: settings.MYSQL_USER,
      password: settings.MYSQL_PASSWORD,
      database: settings.MYSQL_DATABASE,
    }
    if (!plan.sourceSecret || !options.readSecret) return defaults
    const data = await secret(resource, plan.sourceSecret, 'source')
    const port = data.port === undefined ? defaults.port : Number(data.port)
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new WarmupError({ kind: 'source', message: `Secret ${plan.sourceSecret}: port ${data.port} is not a port` })
    }
    return {
      host: data.host ?? defaults.host,
      port,
      user: data.user ?? defaults.user,
      password: data.password ?? defaults.password,
      database: data.database ?? defaults.database,
    }
  }

  async function targetOf(resource: StockWarmup, plan: WarmupPlan): Promise<Redis> {
    if (!plan.targetSecret || !options.readSecret) return redisFor(settings.REDIS_URL, settings.REDIS_CLUSTER_NODES)
    const data = await secret(resource, plan.targetSecret, 'redis')
    if (!data.url || !/^rediss?:\/\//.test(data.url)) {
      throw new WarmupError({ kind: 'redis', message: `Secret ${plan.targetSecret} has no redis:// url` })
    }
    return redisFor(data.url)
  }

  // The status last returned for each resource, with the resourceVersion it was computed from.
  // The informer's cache lags behind the operator's own writes: while it still shows that version,
  // the remembered status is the newer one. Without it, a warm-up that just finished would look
  // unfinished (Warming) and run again, reporting everything as already loaded.
  const returned = new Map<string, { readonly resourceVersion?: string; readonly status: StockWarmupStatus }>()

  async function reconcile(
    cached: StockWarmup,
    ctx: ReconcileContext<StockWarmup>,
  ): Promise<ReconcileOutcome<StockWarmupStatus>> {
    const key = `${cached.metadata.namespace ?? ''}/${cached.metadata.name}/${cached.metadata.uid ?? ''}`
    const remembered = returned.get(key)
    const resource =
      remembered && remembered.resourceVersion === cached.metadata.resourceVersion
        ? { ...cached, status: remembered.status }
        : cached
    const decision = decideWarmup(resource, ctx.now(), timing)
    let status = decision.status
    let requeueAfterMs = decision.requeueAfterMs
    if (decision.step.kind === 'warm') {
      const { plan } = decision.step
      const started = Date.now()
      try {
        const [mysql, redis] = await Promise.all([sourceOf(resource, plan), targetOf(resource, plan)])
        const { progress } = options
        const run = await warm(
          plan,
          { redis, mysql },
          {
            ledgerTimeoutMs: settings.STOCK_WARMUP_LEDGER_TIMEOUT_MS,
            ...(progress
              ? {
                  onProgress: (done) =>
                    progress(`read ${done.read}, loaded ${done.loaded}, already in Redis ${done.skipped}`),
                }
              : {}),
          },
        )
        status = statusAfterWarm(resource, plan, run, ctx.now())
        requeueAfterMs = undefined
        metrics?.duration.observe((Date.now() - started) / 1000)
        metrics?.goods.inc({ result: 'loaded' }, run.loaded)
        metrics?.goods.inc({ result: 'skipped' }, run.skipped - run.refused)
        metrics?.goods.inc({ result: 'refused' }, run.refused)
        metrics?.runs.inc({ outcome: run.refused > 0 ? 'refused' : 'ready' })
        ctx.logger.info(
          {
            total: run.total,
            loaded: run.loaded,
            skipped: run.skipped,
            refused: run.refused,
            ms: Date.now() - started,
          },
          'stock warmed',
        )
      } catch (error) {
        metrics?.duration.observe((Date.now() - started) / 1000)
        if (!(error instanceof WarmupError)) throw error
        const failed = statusAfterFailure(resource, error.failure, ctx.now(), timing)
        status = failed.status
        requeueAfterMs = failed.requeueAfterMs
        metrics?.runs.inc({ outcome: `${error.failure.kind}_error` })
        ctx.logger.warn({ err: error, retryInMs: requeueAfterMs }, 'stock warm-up failed')
      }
    }
    for (const event of eventsBetween(resource.status, status)) ctx.event(event.type, event.reason, event.message)
    if (decision.finalizers) returned.delete(key)
    else {
      returned.set(key, {
        ...(cached.metadata.resourceVersion === undefined ? {} : { resourceVersion: cached.metadata.resourceVersion }),
        status,
      })
    }
    return {
      status,
      ...(decision.finalizers ? { finalizers: decision.finalizers } : {}),
      ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }),
    }
  }

  return {
    kind: STOCK_WARMUP_KIND,
    plural: STOCK_WARMUP_PLURAL,
    reconcile,
    async close() {
      await Promise.all([...clients.values()].map((redis) => redis.quit().catch(() => redis.disconnect())))
      clients.clear()
    },
  }
}
