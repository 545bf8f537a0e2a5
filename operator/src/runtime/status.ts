import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import type { Logger } from '@timedeal/platform'
import { type AnyResource, GROUP, type ReconcileOutcome, VERSION } from './controller.ts'

const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export interface PendingEvent {
  readonly type: 'Normal' | 'Warning'
  readonly reason: string
  readonly message: string
}

export interface WriteResult {
  readonly statusWritten: boolean
  readonly finalizersWritten: boolean
  /** The object is gone (its last finalizer was dropped, or someone else removed it). */
  readonly gone: boolean
}

/**
 * Writes what a reconcile decided back to the API server, and nothing when nothing changed:
 * status only through the status subresource and only when it differs from the stored one;
 * the finalizer list by a JSON patch that first tests the list it read (so a finalizer someone
 * else added meanwhile is not lost: the patch fails and the key is retried).
 */
export class ResourceWriter {
  readonly #custom: CustomObjectsApi
  readonly #plural: string

  constructor(kubeConfig: KubeConfig, plural: string) {
    this.#custom = kubeConfig.makeApiClient(CustomObjectsApi)
    this.#plural = plural
  }

  async write(resource: AnyResource, outcome: ReconcileOutcome<unknown>): Promise<WriteResult> {
    const finalizersChange = finalizerPatch(resource.metadata.finalizers, outcome.finalizers)
    const statusChanged = !sameJson(resource.status, outcome.status)
    let statusWritten = false
    let finalizersWritten = false
    let gone = false
    const writeStatus = async () => {
      if (!statusChanged || gone) return
      gone = await this.#patch(resource, [{ op: 'add', path: '/status', value: outcome.status }], true)
      statusWritten = !gone
    }
    const writeFinalizers = async () => {
      if (!finalizersChange || gone) return
      gone = await this.#patch(resource, finalizersChange, false)
      finalizersWritten = !gone
    }
    // A resource being deleted may vanish with its last finalizer, so its status goes first;
    // a live one gets its finalizer before anything else is said about it.
    if (resource.metadata.deletionTimestamp) {
      await writeStatus()
      await writeFinalizers()
    } else {
      await writeFinalizers()
      await writeStatus()
    }
    return { statusWritten, finalizersWritten, gone }
  }

  /** Answers true when the object no longer exists. */
  async #patch(resource: AnyResource, body: object[], status: boolean): Promise<boolean> {
    const target = {
      group: GROUP,
      version: VERSION,
      plural: this.#plural,
      namespace: resource.metadata.namespace ?? '',
      name: resource.metadata.name,
      body,
    }
    try {
      if (status) await this.#custom.patchNamespacedCustomObjectStatus(target, jsonPatch)
      else await this.#custom.patchNamespacedCustomObject(target, jsonPatch)
      return false
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return true
      throw error
    }
  }
}

/** The JSON patch that turns `current` into `wanted`, or undefined when nothing changes. */
export function finalizerPatch(current: string[] | undefined, wanted: string[] | undefined): object[] | undefined {
  if (wanted === undefined) return undefined
  const before = current ?? []
  if (before.length === wanted.length && before.every((name, index) => name === wanted[index])) return undefined
  // `test` against null holds only while the list is still absent on the server.
  if (current === undefined) {
    return [
      { op: 'test', path: '/metadata/finalizers', value: null },
      { op: 'add', path: '/metadata/finalizers', value: wanted },
    ]
  }
  return [
    { op: 'test', path: '/metadata/finalizers', value: current },
    { op: 'replace', path: '/metadata/finalizers', value: wanted },
  ]
}

/** Equal as JSON: key order and undefined members do not count. */
export function sameJson(a: unknown, b: unknown): boolean {
  return stableJson(a) === stableJson(b)
}

function stableJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner
    return Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  })
}

export interface EventRecorderOptions {
  readonly kubeConfig: KubeConfig
  /** The component named in every Event (`kubectl describe` shows it as From). */
  readonly component: string
  /** This replica. */
  readonly instance: string
  readonly logger: Logger
  readonly now?: () => number
}

/**
 * Kubernetes Events about the resources, as `kubectl describe` shows them. A repeat of the same
 * event on the same object raises the count of the one already posted instead of adding
 * another. Events are advice: a failure to post one is logged, never fails a reconcile.
 */
export class EventRecorder {
  readonly #options: EventRecorderOptions
  readonly #core: CoreV1Api
  readonly #posted = new Map<string, { name: string; namespace: string; count: number }>()
  readonly #now: () => number

  constructor(options: EventRecorderOptions) {
    this.#options = options
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api)
    this.#now = options.now ?? Date.now
  }

  async record(resource: AnyResource, event: PendingEvent): Promise<void> {
    const namespace = resource.metadata.namespace ?? 'default'
    const signature = [
      resource.metadata.uid,
      namespace,
      resource.metadata.name,
      event.type,
      event.reason,
      event.message,
    ].join('\u0000')
    const time = new Date(this.#now())
    try {
      const previous = this.#posted.get(signature)
      if (previous) {
        previous.count += 1
        await this.#core.patchNamespacedEvent(
          { name: previous.name, namespace, body: { count: previous.count, lastTimestamp: time } },
          mergePatch,
        )
        return
      }
      const created = await this.#core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${resource.metadata.name}.`, namespace },
          involvedObject: {
            apiVersion: resource.apiVersion,
            kind: resource.kind,
            name: resource.metadata.name,
            namespace,
            ...(resource.metadata.uid ? { uid: resource.metadata.uid } : {}),
            ...(resource.metadata.resourceVersion ? { resourceVersion: resource.metadata.resourceVersion } : {}),
          },
          type: event.type,
          reason: event.reason,
          message: event.message.slice(0, 1024),
          count: 1,
          firstTimestamp: time,
          lastTimestamp: time,
          source: { component: this.#options.component },
          reportingComponent: this.#options.component,
          reportingInstance: this.#options.instance,
        },
      })
      this.#remember(signature, { name: created.metadata?.name ?? '', namespace, count: 1 })
    } catch (error) {
      // A patch of an event that expired (the API server drops them after an hour) posts anew next time.
      this.#posted.delete(signature)
      this.#options.logger.warn({ err: error, reason: event.reason }, 'could not post a Kubernetes event')
    }
  }

  #remember(signature: string, posted: { name: string; namespace: string; count: number }): void {
    if (this.#posted.size >= 2000) {
      const oldest = this.#posted.keys().next().value
      if (oldest !== undefined) this.#posted.delete(oldest)
    }
    this.#posted.set(signature, posted)
  }
}
