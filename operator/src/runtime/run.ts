import { hostname } from 'node:os'
import { KubeConfig } from '@kubernetes/client-node'
import {
  createMetricsRegistry,
  createServiceApp,
  Lifecycle,
  type Logger,
  orExit,
  serveUntilSignal,
  shutdownTimings,
} from '@timedeal/platform'
import type { Registry } from 'prom-client'
import { kafkaTopicController } from '../kafka-topic/controller.ts'
import { connectKafkaTopicAdmin } from '../kafka-topic/kafka-admin.ts'
import type { OperatorSettings } from '../settings.ts'
import { createStockWarmupController, kubeSecretReader } from '../stock-warmup/controller.ts'
import type { AnyController } from './controller.ts'
import { Manager } from './manager.ts'

/** The kubeconfig: KUBECONFIG when set, else in-cluster, else ~/.kube/config. */
export function loadKubeConfig(settings: Pick<OperatorSettings, 'KUBECONFIG'>): KubeConfig {
  const kubeConfig = new KubeConfig()
  if (settings.KUBECONFIG) kubeConfig.loadFromFile(settings.KUBECONFIG)
  else kubeConfig.loadFromDefault()
  return kubeConfig
}

/** The controllers `run` starts, each with the clients it needs (closed on shutdown). */
async function startControllers(
  settings: OperatorSettings,
  kubeConfig: KubeConfig,
  lifecycle: Lifecycle,
  logger: Logger,
  metrics: Registry,
): Promise<AnyController[]> {
  const admin = await connectKafkaTopicAdmin(settings.KAFKA_BROKERS, settings.SERVICE_NAME, { metrics })
  lifecycle.add('kafka-admin', admin, (connected) => connected.close())
  const warmups = createStockWarmupController({
    settings,
    logger: logger.child({ kind: 'StockWarmup' }),
    readSecret: kubeSecretReader(kubeConfig),
    metrics,
  })
  lifecycle.add('stock-warmup-redis', warmups, (controller) => controller.close())
  return [kafkaTopicController({ admin, topicPrefix: settings.KAFKA_TOPIC_PREFIX }), warmups]
}

/**
 * `timedeal-operator run`: watch the cluster and reconcile until SIGTERM/SIGINT, serving
 * /healthz, /readyz (ready once every informer has listed) and /metrics on OPERATOR_PORT. On
 * shutdown the reconciles in hand finish, the Lease is handed back, then the clients close.
 */
export async function runOperator(settings: OperatorSettings, logger: Logger): Promise<void> {
  const { drainMs, deadlineMs } = orExit(() => shutdownTimings(settings))
  const lifecycle = new Lifecycle(logger)
  const metrics = createMetricsRegistry(settings.SERVICE_NAME)
  const identity = settings.LEADER_ELECTION_IDENTITY ?? `${hostname()}-${process.pid}`
  try {
    const kubeConfig = loadKubeConfig(settings)
    const controllers = await startControllers(settings, kubeConfig, lifecycle, logger, metrics)
    const manager = new Manager({ kubeConfig, controllers, settings, logger, metrics, identity })
    // Added last, so it stops first: reconciles finish before the clients they use close.
    lifecycle.add('manager', manager, (started) => started.stop())
    const app = createServiceApp({
      service: settings.SERVICE_NAME,
      logger,
      metrics,
      draining: () => lifecycle.draining,
      readiness: [
        {
          name: 'informers',
          check: async () => {
            if (!manager.synced) throw new Error('the informers have not listed every kind yet')
          },
        },
      ],
    })
    await serveUntilSignal({
      listeners: [
        {
          name: 'operator',
          app,
          host: settings.OPERATOR_HOST,
          port: settings.OPERATOR_PORT,
          portSetting: 'OPERATOR_PORT',
        },
      ],
      logger,
      lifecycle,
      drainMs,
      shutdownTimeoutMs: deadlineMs,
    })
    manager.start()
    logger.info(
      {
        identity,
        namespaces: settings.WATCH_NAMESPACES.length > 0 ? settings.WATCH_NAMESPACES : 'all',
        kinds: controllers.map((controller) => controller.kind),
        leaderElection: settings.LEADER_ELECTION_ENABLED,
      },
      'operator started',
    )
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    logger.fatal({ err: error }, 'the operator could not start')
    process.stderr.write(`timedeal-operator could not start: ${reason}\n`)
    await lifecycle.close()
    process.exit(1)
  }
}
