/**
 * The KafkaTopic reconcile as a pure function: the resource, the topic as the broker has it and
 * the other KafkaTopics in view go in; the Kafka actions to take, the status to report, the
 * finalizers to keep and the Events worth telling come out. Running it again on the world the
 * actions produced yields no actions and the same status.
 */
import { type Condition, type ConditionUpdate, findCondition, removeCondition, setCondition } from '../conditions.ts'
import {
  annotationIsTrue,
  FINALIZER,
  isBeingDeleted,
  PAUSED_ANNOTATION,
  UNMANAGED_ANNOTATION,
} from '../runtime/controller.ts'
import {
  AUTO_CREATE_CONDITION,
  type KafkaTopic,
  type KafkaTopicStatus,
  kafkaTopicSpecSchema,
  type ObservedTopic,
  type TopicReadyReason,
  type ValidKafkaTopicSpec,
} from './types.ts'

export type TopicAction =
  | { kind: 'create'; topic: string; partitions: number; replicationFactor: number; config: Record<string, string> }
  | { kind: 'createPartitions'; topic: string; count: number }
  /** The full set of the topic's configs: keys left out go back to the broker's default. */
  | { kind: 'alterConfig'; topic: string; config: Record<string, string> }
  | { kind: 'delete'; topic: string }

export interface TopicEvent {
  type: 'Normal' | 'Warning'
  reason: string
  message: string
}

export interface TopicWorld {
  /** The topic as the broker has it; undefined when it does not exist. */
  observed: ObservedTopic | undefined
  /** Every KafkaTopic in view (the resource itself may be among them). */
  peers: readonly KafkaTopic[]
  /** Whether the broker creates topics on first use; undefined when not known. */
  brokerAutoCreates: boolean | undefined
  /** Put before every topic name on the broker (KAFKA_TOPIC_PREFIX). */
  topicPrefix: string
  now: number
}

export interface TopicPlan {
  actions: TopicAction[]
  status: KafkaTopicStatus
  /** The finalizers the object should carry; undefined when they stay as they are. */
  finalizers: string[] | undefined
  events: TopicEvent[]
}

/** The name on the broker a resource asks for. */
export const desiredTopicName = (resource: KafkaTopic, topicPrefix: string): string =>
  `${topicPrefix}${resource.spec?.topicName ?? resource.metadata.name}`

const createdAt = (resource: KafkaTopic): number => {
  const stamp = resource.metadata.creationTimestamp
  const ms = stamp === undefined ? Number.NaN : new Date(stamp).getTime()
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms
}

const identity = (resource: KafkaTopic) => `${resource.metadata.namespace ?? ''}/${resource.metadata.name}`

/** Older first; the same instant falls back to namespace/name so every replica agrees. */
const olderThan = (a: KafkaTopic, b: KafkaTopic): boolean =>
  createdAt(a) !== createdAt(b) ? createdAt(a) < createdAt(b) : identity(a) < identity(b)

/** The older resource naming the same topic, which owns it; undefined when this one does. */
export function conflictingOwner(resource: KafkaTopic, peers: readonly KafkaTopic[], topicPrefix: string) {
  const name = desiredTopicName(resource, topicPrefix)
  return peers
    .filter((peer) => identity(peer) !== identity(resource) && !annotationIsTrue(peer, UNMANAGED_ANNOTATION))
    .filter((peer) => desiredTopicName(peer, topicPrefix) === name)
    .find((peer) => olderThan(peer, resource))
}

const sameConfig = (a: Record<string, string>, b: Record<string, string>): boolean => {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key])
}

function withFinalizer(current: readonly string[] | undefined, keep: boolean): string[] | undefined {
  const list = current ?? []
  const has = list.includes(FINALIZER)
  if (has === keep) return undefined
  return keep ? [...list, FINALIZER] : list.filter((finalizer) => finalizer !== FINALIZER)
}

interface Verdict {
  actions: TopicAction[]
  ready: { status: Condition['status']; reason: TopicReadyReason; message: string }
  keepFinalizer: boolean | undefined
  topicName?: string
  observed?: Pick<ObservedTopic, 'partitions' | 'replicationFactor'>
  events: TopicEvent[]
}

export function planKafkaTopic(resource: KafkaTopic, world: TopicWorld): TopicPlan {
  const verdict = decide(resource, world)
  const previous = resource.status ?? {}
  let conditions = setCondition(previous.conditions, readyCondition(resource, verdict.ready), world.now)
  conditions = autoCreateCondition(conditions, resource, world)
  const status: KafkaTopicStatus = {
    ...previous,
    observedGeneration: resource.metadata.generation ?? previous.observedGeneration,
    conditions,
  }
  if (verdict.topicName !== undefined) status.topicName = verdict.topicName
  if (verdict.observed) {
    status.partitions = verdict.observed.partitions
    status.replicationFactor = verdict.observed.replicationFactor
  }
  const events = [...verdict.events]
  const before = findCondition(previous.conditions, 'Ready')
  if (
    verdict.ready.status === 'False' &&
    before?.reason !== verdict.ready.reason &&
    verdict.ready.reason !== 'Deleting'
  ) {
    events.push({ type: 'Warning', reason: verdict.ready.reason, message: verdict.ready.message })
  }
  const finalizers =
    verdict.keepFinalizer === undefined ? undefined : withFinalizer(resource.metadata.finalizers, verdict.keepFinalizer)
  return { actions: verdict.actions, status, finalizers, events }
}

const readyCondition = (resource: KafkaTopic, ready: Verdict['ready']): ConditionUpdate => ({
  type: 'Ready',
  ...ready,
  ...(resource.metadata.generation === undefined ? {} : { observedGeneration: resource.metadata.generation }),
})

function autoCreateCondition(conditions: Condition[], resource: KafkaTopic, world: TopicWorld): Condition[] {
  if (world.brokerAutoCreates === undefined) return conditions
  if (!world.brokerAutoCreates) return removeCondition(conditions, AUTO_CREATE_CONDITION)
  return setCondition(
    conditions,
    {
      type: AUTO_CREATE_CONDITION,
      status: 'True',
      reason: 'AutoCreateEnabled',
      message:
        'the broker creates topics on first use (auto.create.topics.enable=true): a client naming this topic before it is Ready gets one with the broker defaults; set auto.create.topics.enable=false',
      ...(resource.metadata.generation === undefined ? {} : { observedGeneration: resource.metadata.generation }),
    },
    world.now,
  )
}

function decide(resource: KafkaTopic, world: TopicWorld): Verdict {
  const deleting = isBeingDeleted(resource)
  if (annotationIsTrue(resource, UNMANAGED_ANNOTATION)) {
    return {
      actions: [],
      ready: {
        status: 'Unknown',
        reason: 'Unmanaged',
        message: `${UNMANAGED_ANNOTATION} is "true": the topic is left as it is and never deleted`,
      },
      keepFinalizer: false,
      events: [],
    }
  }
  if (annotationIsTrue(resource, PAUSED_ANNOTATION)) {
    // A paused resource being deleted lets go (the topic stays) rather than block its namespace.
    return {
      actions: [],
      ready: { status: 'Unknown', reason: 'Paused', message: `${PAUSED_ANNOTATION} is "true": nothing is reconciled` },
      keepFinalizer: deleting ? false : undefined,
      events: [],
    }
  }
  const parsed = kafkaTopicSpecSchema.safeParse(resource.spec ?? {})
  if (!parsed.success) {
    const message = parsed.error.issues.map((issue) => `spec.${issue.path.join('.')}: ${issue.message}`).join('; ')
    return {
      actions: [],
      ready: { status: 'False', reason: 'InvalidSpec', message },
      keepFinalizer: deleting ? false : undefined,
      events: [],
    }
  }
  const spec = parsed.data
  const owner = conflictingOwner(resource, world.peers, world.topicPrefix)
  const name = desiredTopicName(resource, world.topicPrefix)
  if (owner) {
    return {
      actions: [],
      ready: {
        status: 'False',
        reason: 'ResourceConflict',
        message: `topic ${name} is managed by the older KafkaTopic ${identity(owner)}`,
      },
      keepFinalizer: false,
      events: [],
    }
  }
  if (deleting) return decideDeletion(resource, spec, world)
  return decideTopic(resource, spec, world, name)
}

function decideDeletion(resource: KafkaTopic, spec: ValidKafkaTopicSpec, world: TopicWorld): Verdict {
  const name = resource.status?.topicName ?? desiredTopicName(resource, world.topicPrefix)
  const ready = {
    status: 'False' as const,
    reason: 'Deleting' as const,
    message: `deleting (deletionPolicy ${spec.deletionPolicy})`,
  }
  if (spec.deletionPolicy === 'Retain' || world.observed === undefined) {
    return { actions: [], ready, keepFinalizer: false, events: [] }
  }
  return {
    actions: [{ kind: 'delete', topic: name }],
    ready,
    keepFinalizer: false,
    events: [{ type: 'Normal', reason: 'Deleted', message: `deleted topic ${name}` }],
  }
}

function decideTopic(resource: KafkaTopic, spec: ValidKafkaTopicSpec, world: TopicWorld, name: string): Verdict {
  const keepFinalizer = spec.deletionPolicy === 'Delete'
  const owned = resource.status?.topicName
  if (owned !== undefined && owned !== name) {
    return {
      actions: [],
      ready: {
        status: 'False',
        reason: 'NotSupported',
        message: `Kafka cannot rename topic ${owned} to ${name}: create a new KafkaTopic for the new name`,
      },
      keepFinalizer,
      events: [],
    }
  }
  const observed = world.observed
  if (observed === undefined) {
    return {
      actions: [
        {
          kind: 'create',
          topic: name,
          partitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          config: spec.config,
        },
      ],
      ready: { status: 'True', reason: 'Reconciled', message: `topic ${name} matches the spec` },
      keepFinalizer,
      topicName: name,
      observed: { partitions: spec.partitions, replicationFactor: spec.replicationFactor },
      events: [
        { type: 'Normal', reason: 'Created', message: `created topic ${name} with ${spec.partitions} partitions` },
      ],
    }
  }
  const actions: TopicAction[] = []
  const events: TopicEvent[] = []
  const refusals: string[] = []
  if (owned === undefined) events.push({ type: 'Normal', reason: 'Adopted', message: `adopted existing topic ${name}` })
  let partitions = observed.partitions
  if (spec.partitions > observed.partitions) {
    actions.push({ kind: 'createPartitions', topic: name, count: spec.partitions })
    events.push({
      type: 'Normal',
      reason: 'PartitionsRaised',
      message: `raised partitions of ${name} from ${observed.partitions} to ${spec.partitions}`,
    })
    partitions = spec.partitions
  } else if (spec.partitions < observed.partitions) {
    refusals.push(`Kafka cannot lower partitions (topic has ${observed.partitions}, spec asks ${spec.partitions})`)
  }
  if (spec.replicationFactor !== observed.replicationFactor) {
    refusals.push(
      `changing the replication factor (topic has ${observed.replicationFactor}, spec asks ${spec.replicationFactor}) needs a partition reassignment, which the operator does not do`,
    )
  }
  if (!sameConfig(spec.config, observed.config)) {
    actions.push({ kind: 'alterConfig', topic: name, config: spec.config })
    events.push({
      type: 'Normal',
      reason: 'ConfigUpdated',
      message: `set the config of ${name} to ${JSON.stringify(spec.config)}`,
    })
  }
  const ready: Verdict['ready'] =
    refusals.length > 0
      ? { status: 'False', reason: 'NotSupported', message: refusals.join('; ') }
      : { status: 'True', reason: 'Reconciled', message: `topic ${name} matches the spec` }
  return {
    actions,
    ready,
    keepFinalizer,
    topicName: name,
    observed: { partitions, replicationFactor: observed.replicationFactor },
    events,
  }
}
