import { setTimeout as sleep } from 'node:timers/promises'
import { ApiException, CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node'
import type { Logger } from '@timedeal/platform'

export interface LeaderElectionOptions {
  readonly kubeConfig: KubeConfig
  readonly leaseName: string
  readonly namespace: string
  /** This replica's name in the Lease. */
  readonly identity: string
  readonly leaseDurationMs: number
  readonly renewDeadlineMs: number
  readonly retryPeriodMs: number
  readonly logger: Logger
  readonly onStartedLeading: () => void
  /** Called when the Lease was lost (or given up): the replica must stop acting at once. */
  readonly onStoppedLeading: () => void | Promise<void>
  readonly now?: () => number
}

/**
 * Leader election over a `coordination.k8s.io` Lease, as client-go does it: a candidate takes
 * the Lease when it is free, or when its holder has not renewed it for a whole lease duration
 * as measured on this replica's own clock (so clock skew between replicas does not matter); the
 * leader renews every retry period and steps down when it could not renew within the renew
 * deadline, which is shorter than the lease duration, so it stops acting before anyone else
 * may take over. Every write carries the resourceVersion it read: two candidates never both win.
 */
export class LeaderElector {
  readonly #options: LeaderElectionOptions
  readonly #api: CoordinationV1Api
  readonly #now: () => number
  #leading = false
  #lastRenewedAt = 0
  #observed: { record: string; at: number } | undefined
  #stopped = false
  #wake: AbortController | undefined
  #running: Promise<void> | undefined
  #watchdog: NodeJS.Timeout | undefined

  constructor(options: LeaderElectionOptions) {
    this.#options = options
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api)
    this.#now = options.now ?? Date.now
  }

  get leading(): boolean {
    return this.#leading
  }

  start(): void {
    this.#running ??= this.#loop()
  }

  /** Stops campaigning; a leader hands the Lease back so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#wake?.abort()
    // A request hanging on an unreachable API server must not hold up the shutdown.
    const patience = () => sleep(this.#options.renewDeadlineMs, undefined, { ref: false })
    await Promise.race([this.#running, patience()])
    if (this.#leading) {
      await this.#stepDown()
      await Promise.race([this.#release(), patience()])
    }
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      // The renewal counts from when it was sent, as the Lease's renewTime does for the other
      // replicas, not from when its answer came back: a slow answer must not stretch the deadline.
      const attemptedAt = this.#now()
      const acquired = await this.#tryAcquireOrRenew().catch((error: unknown) => {
        this.#options.logger.warn({ err: error, lease: this.#options.leaseName }, 'lease could not be read or written')
        return false
      })
      if (this.#stopped) return
      // An answer that took the whole renew deadline comes too late: the watchdog has already
      // stepped down, and another replica may lead by now. It counts as a failed round.
      const inTime = this.#now() - attemptedAt < this.#options.renewDeadlineMs
      if (acquired && inTime) {
        this.#lastRenewedAt = attemptedAt
        this.#armWatchdog()
        if (!this.#leading) {
          this.#leading = true
          this.#options.logger.info({ identity: this.#options.identity }, 'became the leader')
          this.#options.onStartedLeading()
        }
      } else if (this.#leading && this.#now() - this.#lastRenewedAt >= this.#options.renewDeadlineMs) {
        this.#options.logger.error(
          { identity: this.#options.identity, renewDeadlineMs: this.#options.renewDeadlineMs },
          'lost the lease: could not renew it within the renew deadline',
        )
        await this.#stepDown()
      }
      await this.#pause(this.#options.retryPeriodMs)
    }
  }

  /**
   * Steps down at the renew deadline even while a request hangs (a network that drops packets
   * rather than refusing them): the round above would only notice after the request gave up.
   */
  #armWatchdog(): void {
    clearTimeout(this.#watchdog)
    this.#watchdog = setTimeout(
      () => {
        if (!this.#leading) return
        // Timers may fire a millisecond before the wall clock says the deadline passed: look again then.
        if (this.#now() - this.#lastRenewedAt < this.#options.renewDeadlineMs) {
          this.#armWatchdog()
          return
        }
        this.#options.logger.error(
          { identity: this.#options.identity, renewDeadlineMs: this.#options.renewDeadlineMs },
          'lost the lease: no renewal within the renew deadline',
        )
        void this.#stepDown()
      },
      Math.max(0, this.#lastRenewedAt + this.#options.renewDeadlineMs - this.#now()),
    )
    this.#watchdog.unref()
  }

  async #pause(ms: number): Promise<void> {
    this.#wake = new AbortController()
    await sleep(ms, undefined, { signal: this.#wake.signal }).catch(() => undefined)
  }

  async #stepDown(): Promise<void> {
    clearTimeout(this.#watchdog)
    if (!this.#leading) return
    this.#leading = false
    await this.#options.onStoppedLeading()
  }

  /** One round: answers whether this replica holds the Lease afterwards. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const { leaseName: name, namespace, identity } = this.#options
    const now = new V1MicroTime(this.#now())
    const existing = await this.#api.readNamespacedLease({ name, namespace }).catch((error: unknown) => {
      if (error instanceof ApiException && error.code === 404) return undefined
      throw error
    })
    if (!existing) {
      await this.#api.createNamespacedLease({ namespace, body: this.#lease(undefined, now, 0) }).catch(conflictIsNo)
      return this.#confirm(await this.#api.readNamespacedLease({ name, namespace }))
    }
    const spec = existing.spec ?? {}
    const holder = spec.holderIdentity ?? ''
    if (holder !== identity && holder !== '' && !this.#expired(existing)) return false
    const transitions = (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1)
    const acquiredAt = holder === identity && spec.acquireTime ? new V1MicroTime(spec.acquireTime) : now
    const replaced = await this.#api
      .replaceNamespacedLease({ name, namespace, body: this.#lease(existing, now, transitions, acquiredAt) })
      .catch(conflictIsNo)
    if (!replaced) return false
    if (holder !== identity) this.#options.logger.info({ previous: holder || undefined }, 'took over the lease')
    return this.#confirm(replaced)
  }

  #confirm(lease: V1Lease | undefined): boolean {
    return lease?.spec?.holderIdentity === this.#options.identity
  }

  /** A holder is gone once its record has not changed for a lease duration, on our clock. */
  #expired(lease: V1Lease): boolean {
    const record = `${lease.spec?.holderIdentity}|${String(lease.spec?.renewTime)}|${lease.metadata?.resourceVersion}`
    const now = this.#now()
    if (this.#observed?.record !== record) this.#observed = { record, at: now }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000
    return now - this.#observed.at >= durationMs
  }

  #lease(existing: V1Lease | undefined, now: V1MicroTime, transitions: number, acquiredAt: V1MicroTime = now): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.#options.leaseName,
        namespace: this.#options.namespace,
        ...(existing?.metadata?.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.#options.identity,
        leaseDurationSeconds: Math.ceil(this.#options.leaseDurationMs / 1000),
        acquireTime: acquiredAt,
        renewTime: now,
        leaseTransitions: transitions,
      },
    }
  }

  /** Empties the holder, so the next candidate need not wait out the lease duration. */
  async #release(): Promise<void> {
    const { leaseName: name, namespace, identity } = this.#options
    try {
      const lease = await this.#api.readNamespacedLease({ name, namespace })
      if (lease.spec?.holderIdentity !== identity) return
      await this.#api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
      })
      this.#options.logger.info('handed the lease back')
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'could not hand the lease back; it expires by itself')
    }
  }
}

/** A write that lost a race (409) just means someone else holds the Lease now. */
function conflictIsNo(error: unknown): undefined {
  if (error instanceof ApiException && error.code === 409) return undefined
  throw error
}
