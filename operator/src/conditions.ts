/**
 * Status conditions as the Kubernetes API conventions describe them, shared by both controllers.
 * `lastTransitionTime` moves only when `status` flips, so reconciling a steady state yields a
 * status equal to the stored one and nothing is written.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown'

export interface Condition {
  /** CamelCase kind of condition, e.g. `Ready`. */
  type: string
  status: ConditionStatus
  /** CamelCase reason from a small closed set, e.g. `Created`, `NotSupported`. */
  reason: string
  /** For humans. */
  message: string
  /** The metadata.generation this condition was computed from. */
  observedGeneration?: number
  /** RFC 3339, set when `status` last changed. */
  lastTransitionTime: string
}

/** A condition as a controller computes it; the transition time is filled in by `setCondition`. */
export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>

/** Kubernetes serialises times with second precision; keeping ours the same avoids spurious diffs. */
export function kubeTime(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(0, 19)}Z`
}

/**
 * Returns a new list with `update` in place of the condition of the same type. The stored
 * `lastTransitionTime` is kept unless the status flips (or the condition is new).
 */
export function setCondition(
  list: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: number,
): Condition[] {
  const existing = (list ?? []).find((condition) => condition.type === update.type)
  const lastTransitionTime = existing && existing.status === update.status ? existing.lastTransitionTime : kubeTime(now)
  const next: Condition = { ...update, lastTransitionTime }
  if (!existing) return [...(list ?? []), next]
  return (list ?? []).map((condition) => (condition.type === update.type ? next : condition))
}

/** Drops the condition of a type (e.g. a warning that no longer applies). */
export function removeCondition(list: readonly Condition[] | undefined, type: string): Condition[] {
  return (list ?? []).filter((condition) => condition.type !== type)
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return (list ?? []).find((condition) => condition.type === type)
}

export function isConditionTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(list, type)?.status === 'True'
}
