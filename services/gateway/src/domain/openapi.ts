import { routedBy, type UpstreamName } from './routing.ts'

/** The parts of an OpenAPI 3.1 document the merge reads; everything else is kept as it is. */
export interface OpenApiDocument {
  openapi?: string
  info?: { title?: string; version?: string; description?: string }
  servers?: { url: string; description?: string }[]
  paths?: Record<string, Record<string, unknown>>
  components?: Record<string, Record<string, unknown>>
  tags?: { name: string; description?: string }[]
  security?: Record<string, string[]>[]
  [key: string]: unknown
}

export interface ServiceDocument {
  readonly service: UpstreamName
  /** Undefined when the service did not answer: the merged document says it is missing. */
  readonly document: OpenApiDocument | undefined
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

/**
 * One document for the whole public API: every path the gateway routes, from the service that
 * owns it, tagged with the service's name, with `servers` pointing at the gateway, and a bearer
 * scheme so an access token can be set once and tried on every route. Component names that two
 * services use for different schemas are renamed `<service>_<name>` in the second one.
 */
export function mergeDocuments(documents: readonly ServiceDocument[], gatewayUrl: string): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {}
  const components: Record<string, Record<string, unknown>> = {}
  const tags: { name: string; description: string }[] = []
  const missing: string[] = []
  for (const { service, document } of documents) {
    if (!document) {
      missing.push(`${service}-service`)
      continue
    }
    tags.push({ name: service, description: document.info?.title ?? `${service}-service` })
    const renames = mergeComponents(components, service, document.components ?? {})
    for (const [path, item] of Object.entries(document.paths ?? {})) {
      if (!routedBy(service, path)) continue
      paths[path] = tagged(renameRefs(item, renames) as Record<string, unknown>, service)
    }
  }
  components.securitySchemes = {
    ...components.securitySchemes,
    bearerAuth: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: 'The access token from POST /api/auth/login; routes that need none ignore it.',
    },
  }
  const note = missing.length > 0 ? `\n\nNot listed now (did not answer): ${missing.join(', ')}.` : ''
  return {
    openapi: '3.1.0',
    info: {
      title: 'Timedeal API',
      version: '0.1.0',
      description: `Every public route of the Timedeal services, through the gateway.${note}`,
    },
    servers: [{ url: gatewayUrl, description: 'this gateway' }],
    security: [{ bearerAuth: [] }, {}],
    tags,
    paths,
    components,
  }
}

/** Adds a service's components; returns the names it had to rename because another service took them. */
function mergeComponents(
  into: Record<string, Record<string, unknown>>,
  service: UpstreamName,
  from: Record<string, Record<string, unknown>>,
): Map<string, string> {
  const renames = new Map<string, string>()
  const added: [Record<string, unknown>, string][] = []
  for (const [kind, entries] of Object.entries(from)) {
    into[kind] ??= {}
    const target = into[kind]
    for (const [name, value] of Object.entries(entries)) {
      const taken = target[name]
      if (taken !== undefined && JSON.stringify(taken) === JSON.stringify(value)) continue
      const kept = taken === undefined ? name : `${service}_${name}`
      if (kept !== name) renames.set(`#/components/${kind}/${name}`, `#/components/${kind}/${kept}`)
      target[kept] = value
      added.push([target, kept])
    }
  }
  // What this service added may refer to its renamed components.
  for (const [target, name] of added) target[name] = renameRefs(target[name], renames)
  return renames
}

function renameRefs(value: unknown, renames: Map<string, string>): unknown {
  if (renames.size === 0 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((item) => renameRefs(item, renames))
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      key === '$ref' && typeof item === 'string' ? (renames.get(item) ?? item) : renameRefs(item, renames),
    ]),
  )
}

function tagged(item: Record<string, unknown>, service: UpstreamName): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(item).map(([key, operation]) =>
      METHODS.has(key) && operation && typeof operation === 'object'
        ? [key, { ...operation, tags: [service] }]
        : [key, operation],
    ),
  )
}
