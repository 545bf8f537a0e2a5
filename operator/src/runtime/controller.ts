import type { Logger } from '@timedeal/platform'

/** The API group and version of every resource the operator reconciles. */
export const GROUP = 'timedeal.io'
export const VERSION = 'v1alpha1'
export const API_VERSION = `${GROUP}/${VERSION}`

/** Held on a resource while the operator still has cleanup to do for it. */
export const FINALIZER = 'timedeal.io/cleanup'
/** `"true"`: reconcile nothing; status says Paused. */
export const PAUSED_ANNOTATION = 'timedeal.io/paused'
/** `"true"`: stop managing what the resource names: drop the finalizer, never delete. */
export const UNMANAGED_ANNOTATION = 'timedeal.io/unmanaged'

export interface KubeMetadata {
  name: string
  namespace?: string
  uid?: string
  generation?: number
  resourceVersion?: string
  creationTimestamp?: string | Date
  deletionTimestamp?: string | Date
  finalizers?: string[]
  annotations?: Record<string, string>
  labels?: Record<string, string>
}

export interface KubeResource<Spec, Status> {
  apiVersion: string
  kind: string
  metadata: KubeMetadata
  spec: Spec
  status?: Status
}

export interface ReconcileContext<R> {
  now(): number
  logger: Logger
  event(type: 'Normal' | 'Warning', reason: string, message: string): void
  /** Every resource of this kind the operator currently sees (for conflicts). */
  peers(): readonly R[]
}

export interface ReconcileOutcome<Status> {
  /** Written only if it differs from the stored one. */
  status: Status
  /** The finalizer list to keep on the object (undefined = unchanged). */
  finalizers?: string[]
  /** Reconcile again after this long even if nothing changes (e.g. a warm-up scheduled for later). */
  requeueAfterMs?: number
}

export interface Controller<Spec, Status> {
  /** The kind and plural of a resource of group timedeal.io, version v1alpha1. */
  readonly kind: string
  readonly plural: string
  reconcile(
    resource: KubeResource<Spec, Status>,
    ctx: ReconcileContext<KubeResource<Spec, Status>>,
  ): Promise<ReconcileOutcome<Status>>
}

// biome-ignore lint/suspicious/noExplicitAny: controllers of different kinds run side by side
export type AnyController = Controller<any, any>
// biome-ignore lint/suspicious/noExplicitAny: see AnyController
export type AnyResource = KubeResource<any, any>

/** The work-queue key of a resource: `namespace/name` (or `name` when cluster-scoped). */
export const resourceKey = (metadata: Pick<KubeMetadata, 'name' | 'namespace'>): string =>
  metadata.namespace ? `${metadata.namespace}/${metadata.name}` : metadata.name

export const annotationIsTrue = (resource: AnyResource, annotation: string): boolean =>
  resource.metadata.annotations?.[annotation] === 'true'

export const isBeingDeleted = (resource: AnyResource): boolean => resource.metadata.deletionTimestamp != null
