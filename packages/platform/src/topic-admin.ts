/** Topic administration: creating topics where missing, listing and deleting them, offsets. */
import type { TopicNamespace, TopicSpec } from '@timedeal/contracts'
import type { Admin } from 'kafkajs'

export interface TopicAdmin {
  /** Creates the topics that do not exist yet; returns the names it created. */
  ensureTopics(
    specs: readonly Pick<TopicSpec, 'name' | 'partitions' | 'replicationFactor' | 'config'>[],
  ): Promise<string[]>
  listTopics(): Promise<string[]>
  deleteTopics(names: readonly string[]): Promise<void>
  /** Per partition of `topic`, the offset its next record will get: every record written lies below it. */
  endOffsets(topic: string): Promise<Map<number, bigint>>
  /** Per partition of `topic`, the group's committed offset (the next record it will handle); absent where it has none. */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>>
  /** Throws when no broker answers. */
  ping(): Promise<void>
  close(): Promise<void>
}

/** A connected kafkajs admin speaking the catalog's names; the namespace maps them to the broker's. */
export function kafkaTopicAdmin(admin: Admin, names: TopicNamespace): TopicAdmin {
  return {
    async ensureTopics(specs) {
      const existing = new Set(await admin.listTopics())
      const missing = specs.filter((spec) => !existing.has(names.topic(spec.name)))
      if (missing.length === 0) return []
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: names.topic(spec.name),
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
        })),
      })
      return missing.map((spec) => spec.name)
    },
    listTopics: async () => (await admin.listTopics()).filter(names.owns).map(names.catalogName),
    deleteTopics: (topics) => admin.deleteTopics({ topics: topics.map(names.topic) }),
    async endOffsets(topic) {
      const partitions = await admin.fetchTopicOffsets(names.topic(topic))
      return new Map(partitions.map(({ partition, high }) => [partition, BigInt(high)]))
    },
    async committedOffsets(groupId, topic) {
      const [offsets] = await admin.fetchOffsets({ groupId: names.group(groupId), topics: [names.topic(topic)] })
      const committed = (offsets?.partitions ?? []).filter(({ offset }) => offset !== '-1')
      return new Map(committed.map(({ partition, offset }) => [partition, BigInt(offset)]))
    },
    async ping() {
      await admin.describeCluster()
    },
    close: () => admin.disconnect(),
  }
}
