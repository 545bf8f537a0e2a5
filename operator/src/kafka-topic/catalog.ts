/**
 * The KafkaTopic manifests for the contracts' topic catalog (and its dead-letter topics):
 * `hack/generate-topic-manifests.ts` writes them to `operator/topics/`, a test checks the files
 * never drift from the catalog, and `make dev` and the test runs apply them.
 */
import { fileURLToPath } from 'node:url'
import { allTopics, type TopicSpec } from '@timedeal/contracts'
import { stringify } from 'yaml'
import { API_VERSION } from '../runtime/controller.ts'
import { KAFKA_TOPIC_KIND, type KafkaTopic } from './types.ts'

export const catalogManifestDir = fileURLToPath(new URL('../../topics', import.meta.url))

const HEADER = `# Generated from the topic catalog in packages/contracts by hack/generate-topic-manifests.ts.
# Do not edit: change the catalog and run the script again.
`

/** Topic names are valid resource names once lower-cased (catalog names are lower-case already). */
const resourceNameOf = (topic: string) => topic.toLowerCase().replace(/[^a-z0-9.-]/g, '-')

export function catalogTopicResource(
  topic: Pick<TopicSpec, 'name' | 'partitions' | 'replicationFactor' | 'config'>,
): KafkaTopic {
  return {
    apiVersion: API_VERSION,
    kind: KAFKA_TOPIC_KIND,
    metadata: { name: resourceNameOf(topic.name), labels: { 'app.kubernetes.io/part-of': 'timedeal' } },
    spec: {
      topicName: topic.name,
      partitions: topic.partitions,
      replicationFactor: topic.replicationFactor,
      config: { ...topic.config },
      deletionPolicy: 'Retain',
    },
  }
}

/** File name → content, one file per topic. */
export function catalogTopicManifests(): Map<string, string> {
  return new Map(
    allTopics().map((topic) => [`${topic.name}.yaml`, `${HEADER}${stringify(catalogTopicResource(topic))}`]),
  )
}
