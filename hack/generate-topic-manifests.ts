// Writes operator/topics/*.yaml, the KafkaTopic manifests of the contracts' topic catalog, and
// removes files of topics no longer in it.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { catalogManifestDir, catalogTopicManifests } from '@timedeal/operator/topic-catalog'

const manifests = catalogTopicManifests()
mkdirSync(catalogManifestDir, { recursive: true })
for (const file of readdirSync(catalogManifestDir)) {
  if (file.endsWith('.yaml') && !manifests.has(file)) rmSync(join(catalogManifestDir, file))
}
for (const [file, text] of manifests) writeFileSync(join(catalogManifestDir, file), text)
process.stdout.write(`wrote ${manifests.size} KafkaTopic manifests to ${catalogManifestDir}\n`)
