/** Reading resources from YAML files and folders (every `.yaml`/`.yml` in a folder, sorted). */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import type { AnyResource } from '../runtime/controller.ts'

export interface Manifest {
  /** `file` or `file#2` for the second document of a file. */
  source: string
  resource: AnyResource
}

export class ManifestError extends Error {}

async function yamlFiles(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => {
    throw new ManifestError(`${path}: no such file or folder`)
  })
  if (!info.isDirectory()) return [path]
  const entries = await readdir(path, { withFileTypes: true })
  const nested = await Promise.all(
    entries
      .filter((entry) => entry.isDirectory() || /\.ya?ml$/.test(entry.name))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((entry) => yamlFiles(join(path, entry.name))),
  )
  return nested.flat()
}

function asResource(value: unknown, source: string): AnyResource {
  const object = value as Partial<AnyResource> | null
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    throw new ManifestError(`${source}: expected a resource (a mapping with apiVersion, kind and metadata)`)
  }
  if (typeof object.apiVersion !== 'string' || typeof object.kind !== 'string') {
    throw new ManifestError(`${source}: apiVersion and kind are required`)
  }
  if (typeof object.metadata?.name !== 'string' || object.metadata.name === '') {
    throw new ManifestError(`${source}: metadata.name is required`)
  }
  return object as AnyResource
}

/** Every resource in the given files and folders, in order; empty documents are skipped. */
export async function readManifests(paths: readonly string[]): Promise<Manifest[]> {
  const files = (await Promise.all(paths.map(yamlFiles))).flat()
  const manifests: Manifest[] = []
  for (const file of files) {
    const documents = parseAllDocuments(await readFile(file, 'utf8'))
    if (!Array.isArray(documents)) throw new ManifestError(`${file}: not YAML`)
    documents.forEach((document, index) => {
      const source = documents.length > 1 ? `${file}#${index + 1}` : file
      if (document.errors.length > 0) throw new ManifestError(`${source}: ${document.errors[0]?.message}`)
      const value = document.toJS()
      if (value === null || value === undefined) return
      manifests.push({ source, resource: asResource(value, source) })
    })
  }
  return manifests
}
