import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '@timedeal/platform'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { type AnyController, type AnyResource, resourceKey } from './controller.ts'
import { type InformerEvent, ResourceInformer } from './informer.ts'
import { LeaderElector } from './leader.ts'
import { EventRecorder, type PendingEvent, ResourceWriter, sameJson } from './status.ts'
import { WorkQueue } from './work-queue.ts'

export interface ManagerSettings {
  readonly WATCH_NAMESPACES: readonly string[]
  readonly LEADER_ELECTION_ENABLED: boolean
  readonly LEADER_ELECTION_LEASE_NAME: string
  readonly LEADER_ELECTION_NAMESPACE: string
  readonly LEADER_ELECTION_LEASE_DURATION_MS: number
  readonly LEADER_ELECTION_RENEW_DEADLINE_MS: number
  readonly LEADER_ELECTION_RETRY_PERIOD_MS: number
  readonly RECONCILE_CONCURRENCY: number
  readonly RECONCILE_RETRY_BASE_MS: number
  readonly RECONCILE_RETRY_MAX_MS: number
  readonly RECONCILE_RATE_PER_SECOND: number
  readonly RECONCILE_BURST: number
  readonly RESYNC_PERIOD_MS: number
}

export interface ManagerOptions {
  readonly kubeConfig: KubeConfig
  readonly controllers: readonly AnyController[]
  readonly settings: ManagerSettings
  readonly logger: Logger
  readonly metrics: Registry
  /** This replica's name (Lease holder, Events' reporting instance). */
  readonly identity: string
  readonly now?: () => number
}

interface Kind {
  readonly controller: AnyController
  readonly informers: ResourceInformer[]
  readonly writer: ResourceWriter
}

/**
 * Wires the pieces: one informer per kind and watched namespace feeds a single work queue
 * (keys `plural:namespace/name`); only the leader takes keys from it and hands each resource to
 * its controller, then writes back the outcome. Standby replicas keep their caches warm, so a
 * new leader starts from a full cache and reconciles everything once.
 */
export class Manager {
  readonly #options: ManagerOptions
  readonly #kinds = new Map<string, Kind>()
  readonly #queue: WorkQueue
  readonly #events: EventRecorder
  readonly #elector: LeaderElector | undefined
  readonly #metrics: ReturnType<typeof managerMetrics>
  readonly #now: () => number
  #leading = false
  #started = false

  constructor(options: ManagerOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    const { settings } = options
    this.#metrics = managerMetrics(options.metrics, this)
    this.#queue = new WorkQueue({
      concurrency: settings.RECONCILE_CONCURRENCY,
      retry: { initialMs: settings.RECONCILE_RETRY_BASE_MS, maxMs: settings.RECONCILE_RETRY_MAX_MS },
      rate: { perSecond: settings.RECONCILE_RATE_PER_SECOND, burst: settings.RECONCILE_BURST },
    })
    this.#events = new EventRecorder({
      kubeConfig: options.kubeConfig,
      component: 'timedeal-operator',
      instance: options.identity,
      logger: options.logger,
    })
    const namespaces = settings.WATCH_NAMESPACES.length > 0 ? settings.WATCH_NAMESPACES : [undefined]
    for (const controller of options.controllers) {
      const informers = namespaces.map(
        (namespace) =>
          new ResourceInformer({
            kubeConfig: options.kubeConfig,
            plural: controller.plural,
            namespace,
            logger: options.logger.child({ kind: controller.kind }),
            onChange: (event, resource, previous) => this.#changed(controller.plural, event, resource, previous),
            onRestart: (reason) => this.#metrics.informerRestarts.inc({ kind: controller.kind, reason }),
          }),
      )
      this.#kinds.set(controller.plural, {
        controller,
        informers,
        writer: new ResourceWriter(options.kubeConfig, controller.plural),
      })
    }
    if (settings.LEADER_ELECTION_ENABLED) {
      this.#elector = new LeaderElector({
        kubeConfig: options.kubeConfig,
        leaseName: settings.LEADER_ELECTION_LEASE_NAME,
        namespace: settings.LEADER_ELECTION_NAMESPACE,
        identity: options.identity,
        leaseDurationMs: settings.LEADER_ELECTION_LEASE_DURATION_MS,
        renewDeadlineMs: settings.LEADER_ELECTION_RENEW_DEADLINE_MS,
        retryPeriodMs: settings.LEADER_ELECTION_RETRY_PERIOD_MS,
        logger: options.logger,
        onStartedLeading: () => this.#startLeading(),
        onStoppedLeading: () => this.#stopLeading(),
      })
    }
  }

  get leading(): boolean {
    return this.#leading
  }

  get queueDepth(): number {
    return this.#queue.depth
  }

  /** True once every informer has listed its resources once. */
  get synced(): boolean {
    return [...this.#kinds.values()].every((kind) => kind.informers.every((informer) => informer.synced))
  }

  /** Starts the informers and campaigns for leadership (or leads at once without election). */
  start(): void {
    if (this.#started) return
    this.#started = true
    for (const kind of this.#kinds.values()) for (const informer of kind.informers) informer.start()
    if (this.#elector) this.#elector.start()
    else this.#startLeading()
  }

  /** Stops reconciling (the reconciles in hand finish), hands the Lease back and stops watching. */
  async stop(): Promise<void> {
    if (this.#elector) await this.#elector.stop()
    else await this.#stopLeading()
    await this.#queue.stop()
    await Promise.all([...this.#kinds.values()].flatMap((kind) => kind.informers.map((informer) => informer.stop())))
  }

  /** Every cached resource of a kind, across the watched namespaces. */
  resources(plural: string): AnyResource[] {
    return (this.#kinds.get(plural)?.informers ?? []).flatMap((informer) => informer.list())
  }

  #startLeading(): void {
    this.#leading = true
    this.#metrics.leader.set(1)
    this.#queue.start(
      (key) => this.#reconcile(key),
      (handled) => {
        if (!handled.error) return
        this.#options.logger.warn(
          { err: handled.error, key: handled.key, retryInMs: handled.retryInMs },
          'reconcile failed',
        )
      },
    )
    // Whatever changed while this replica stood by is looked at now.
    for (const plural of this.#kinds.keys()) {
      for (const resource of this.resources(plural)) this.#queue.add(queueKey(plural, resource))
    }
  }

  async #stopLeading(): Promise<void> {
    this.#leading = false
    this.#metrics.leader.set(0)
    await this.#queue.pause()
  }

  #changed(plural: string, event: InformerEvent, resource: AnyResource, previous: AnyResource | undefined): void {
    const key = queueKey(plural, resource)
    if (event === 'delete') {
      this.#queue.forget(key)
      return
    }
    // The echo of a status write (ours, as a rule) asks for nothing; the resync still comes.
    if (previous && onlyStatusChanged(previous, resource)) return
    this.#queue.add(key)
  }

  #find(plural: string, key: string): AnyResource | undefined {
    const kind = this.#kinds.get(plural)
    for (const informer of kind?.informers ?? []) {
      const found = informer.get(key)
      if (found) return found
    }
    return undefined
  }

  async #reconcile(queued: string): Promise<{ requeueAfterMs?: number } | undefined> {
    const separator = queued.indexOf(':')
    const plural = queued.slice(0, separator)
    const key = queued.slice(separator + 1)
    const kind = this.#kinds.get(plural)
    const resource = this.#find(plural, key)
    if (!kind || !resource) return undefined
    if (!this.#leading) throw new Error('not the leader any more')
    const { controller, writer } = kind
    const labels = { kind: controller.kind }
    const logger = this.#options.logger.child({
      kind: controller.kind,
      namespace: resource.metadata.namespace,
      name: resource.metadata.name,
    })
    const events: PendingEvent[] = []
    const stopTimer = this.#metrics.duration.startTimer(labels)
    try {
      const outcome = await controller.reconcile(resource, {
        now: this.#now,
        logger,
        event: (type, reason, message) => {
          events.push({ type, reason, message })
        },
        peers: () => this.resources(plural),
      })
      // Leadership lost during the reconcile: the new leader decides what to write.
      if (!this.#leading) throw new Error('not the leader any more; the outcome is not written')
      const written = await writer.write(resource, outcome)
      for (const event of events) await this.#events.record(resource, event)
      if (written.statusWritten || written.finalizersWritten) {
        logger.debug({ status: written.statusWritten, finalizers: written.finalizersWritten }, 'reconciled and wrote')
      }
      this.#metrics.reconciles.inc({ ...labels, result: 'success' })
      if (written.gone) return undefined
      const resync = this.#options.settings.RESYNC_PERIOD_MS
      return { requeueAfterMs: Math.min(outcome.requeueAfterMs ?? resync, resync) }
    } catch (error) {
      this.#metrics.reconciles.inc({ ...labels, result: 'error' })
      this.#metrics.errors.inc(labels)
      throw error
    } finally {
      stopTimer()
    }
  }
}

/** Same spec (generation), annotations, labels, finalizers and deletion: only status moved. */
export function onlyStatusChanged(before: AnyResource, after: AnyResource): boolean {
  const { metadata: a } = before
  const { metadata: b } = after
  return (
    a.generation === b.generation &&
    String(a.deletionTimestamp ?? '') === String(b.deletionTimestamp ?? '') &&
    sameJson(a.finalizers ?? [], b.finalizers ?? []) &&
    sameJson(a.annotations ?? {}, b.annotations ?? {}) &&
    sameJson(a.labels ?? {}, b.labels ?? {})
  )
}

const queueKey = (plural: string, resource: AnyResource) => `${plural}:${resourceKey(resource.metadata)}`

function managerMetrics(registry: Registry, manager: Manager) {
  return {
    reconciles: new Counter({
      name: 'operator_reconciles_total',
      help: 'Reconciles done, by kind and result (success or error).',
      labelNames: ['kind', 'result'],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'operator_reconcile_errors_total',
      help: 'Reconciles that failed and will be retried after a backoff, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'operator_reconcile_duration_seconds',
      help: 'Time of one reconcile including the status write, by kind.',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    informerRestarts: new Counter({
      name: 'operator_informer_restarts_total',
      help: 'Times an informer listed again: reason gone (410, expected now and then) or error.',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'operator_leader',
      help: '1 while this replica holds the Lease and reconciles, else 0.',
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'operator_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      registers: [registry],
      collect() {
        this.set(manager.queueDepth)
      },
    }),
  }
}
