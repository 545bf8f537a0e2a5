import type { Logger } from '@timedeal/platform'
import type { ServiceDocument } from '../domain/openapi.ts'
import { UPSTREAM_NAMES, type UpstreamName } from '../domain/routing.ts'
import type { Upstream } from './upstreams.ts'

/** A service that is down at start is asked again this soon, so it shows up once it is up. */
const RETRY_MISSING_MS = 2_000

export interface ServiceDocuments {
  /** Every service's `/openapi.json`, fetched at most every `cacheMs` (sooner while one is missing). */
  current(): Promise<readonly ServiceDocument[]>
}

export function serviceDocuments(options: {
  upstreams: Readonly<Record<UpstreamName, Upstream>>
  cacheMs: number
  logger: Logger
}): ServiceDocuments {
  let cached: { documents: Promise<readonly ServiceDocument[]>; until: number } | undefined
  const fetchAll = async (): Promise<readonly ServiceDocument[]> => {
    const documents = await Promise.all(
      UPSTREAM_NAMES.map(async (service) => ({ service, document: await fetchDocument(options.upstreams[service]) })),
    )
    const missing = documents.filter((entry) => !entry.document).map((entry) => entry.service)
    if (missing.length > 0) options.logger.warn({ missing }, 'OpenAPI documents missing from the merged document')
    if (cached) cached.until = Date.now() + (missing.length > 0 ? RETRY_MISSING_MS : options.cacheMs)
    return documents
  }
  return {
    current() {
      if (!cached || Date.now() >= cached.until) {
        const documents = fetchAll()
        // Until it settles, callers share this one round of requests.
        cached = { documents, until: Number.POSITIVE_INFINITY }
      }
      return cached.documents
    },
  }
}

async function fetchDocument(upstream: Upstream): Promise<ServiceDocument['document']> {
  try {
    const answer = await upstream.request({
      method: 'GET',
      path: '/openapi.json',
      headers: { accept: 'application/json' },
      body: null,
    })
    if (answer.status !== 200 || !answer.body) {
      await answer.body?.cancel()
      return undefined
    }
    return (await new Response(answer.body).json()) as ServiceDocument['document']
  } catch {
    return undefined
  }
}
