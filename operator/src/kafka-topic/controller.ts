/**
 * The KafkaTopic controller: observe the topic (batched with other resources' reconciles), plan,
 * act, report. Kafka being unreachable is reported in status (`KafkaError`) and retried, never a
 * crash.
 */
import { setCondition } from '../conditions.ts'
import type { Controller, ReconcileContext, ReconcileOutcome } from '../runtime/controller.ts'
import type { KafkaTopicAdmin } from './kafka-admin.ts'
import { desiredTopicName, planKafkaTopic } from './plan.ts'
import {
  KAFKA_TOPIC_KIND,
  KAFKA_TOPIC_PLURAL,
  type KafkaTopic,
  type KafkaTopicSpec,
  type KafkaTopicStatus,
} from './types.ts'

export interface KafkaTopicControllerOptions {
  admin: KafkaTopicAdmin
  topicPrefix: string
  /** When to look again after Kafka failed. */
  kafkaRetryMs?: number
}

export function kafkaTopicController(
  options: KafkaTopicControllerOptions,
): Controller<KafkaTopicSpec, KafkaTopicStatus> {
  return {
    kind: KAFKA_TOPIC_KIND,
    plural: KAFKA_TOPIC_PLURAL,
    reconcile: (resource, ctx) => reconcileKafkaTopic(resource, ctx, options),
  }
}

export async function reconcileKafkaTopic(
  resource: KafkaTopic,
  ctx: ReconcileContext<KafkaTopic>,
  options: KafkaTopicControllerOptions,
): Promise<ReconcileOutcome<KafkaTopicStatus>> {
  const { admin, topicPrefix } = options
  const name = resource.status?.topicName ?? desiredTopicName(resource, topicPrefix)
  try {
    const [observed, brokerAutoCreates] = await Promise.all([admin.describe(name), admin.brokerAutoCreates()])
    const plan = planKafkaTopic(resource, {
      observed,
      peers: ctx.peers(),
      brokerAutoCreates,
      topicPrefix,
      now: ctx.now(),
    })
    await admin.apply(plan.actions)
    for (const event of plan.events) ctx.event(event.type, event.reason, event.message)
    if (plan.actions.length > 0)
      ctx.logger.info({ topic: name, actions: plan.actions.map((action) => action.kind) }, 'reconciled topic')
    return plan.finalizers === undefined
      ? { status: plan.status }
      : { status: plan.status, finalizers: plan.finalizers }
  } catch (error) {
    const message = `Kafka: ${error instanceof Error ? error.message : String(error)}`
    ctx.logger.warn({ err: error, topic: name }, 'reconciling a topic failed')
    const previous = resource.status ?? {}
    const conditions = setCondition(
      previous.conditions,
      {
        type: 'Ready',
        status: 'False',
        reason: 'KafkaError',
        message,
        ...(resource.metadata.generation === undefined ? {} : { observedGeneration: resource.metadata.generation }),
      },
      ctx.now(),
    )
    return { status: { ...previous, conditions }, requeueAfterMs: options.kafkaRetryMs ?? 5_000 }
  }
}
