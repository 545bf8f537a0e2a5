/**
 * The benches' Kafka topics, created as `make dev` and the test runs create theirs: KafkaTopic
 * resources reconciled by the operator's `apply` logic, behind the bench's own topic prefix.
 */
import { applyTopicFiles, applyTopicResources } from '@timedeal/operator/apply'
import { catalogManifestDir, catalogTopicResource } from '@timedeal/operator/topic-catalog'

export interface BenchTopicTarget {
  brokers: readonly string[]
  /** The bench's `KAFKA_TOPIC_PREFIX`, put before every topic name. */
  topicPrefix: string
  clientId: string
}

const notReady = (count: number, lines: readonly string[]) =>
  new Error(`${count} Kafka topic(s) are not ready:\n${lines.join('\n')}`)

/** The catalog's topics and dead-letter topics (`operator/topics`). */
export async function applyCatalogTopics(target: BenchTopicTarget): Promise<void> {
  const lines: string[] = []
  const failed = await applyTopicFiles([catalogManifestDir], target, (line) => lines.push(line))
  if (failed > 0) throw notReady(failed, lines)
}

/** One topic of the bench's own (no config of its own, replication factor 1). */
export async function applyBenchTopic(target: BenchTopicTarget, name: string, partitions: number): Promise<void> {
  const lines: string[] = []
  const resource = catalogTopicResource({ name, partitions, replicationFactor: 1, config: {} })
  const failed = await applyTopicResources([resource], target, (line) => lines.push(line))
  if (failed > 0) throw notReady(failed, lines)
}
