import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRoute, z } from '@hono/zod-openapi'
import { Scalar } from '@scalar/hono-api-reference'
import { createRoutes, type Routes } from '@timedeal/platform'
import type { ServiceDocuments } from '../adapters/service-documents.ts'
import { mergeDocuments } from '../domain/openapi.ts'
import { ownOrigin } from './client.ts'

export const DOCS_PATH = '/api/docs'
export const MERGED_DOCUMENT_PATH = '/api/openapi.json'
/** The reference's script, served from node_modules (the package's own default is a CDN). */
export const REFERENCE_SCRIPT_PATH = '/api/docs/standalone.js'

/** The single-file (UMD) browser build of @scalar/api-reference: one script, no further chunks to fetch. */
const referenceScript = () =>
  join(dirname(fileURLToPath(import.meta.resolve('@scalar/api-reference'))), 'browser', 'standalone.js')

/**
 * Put before the bundle: the zod inside it probes for eval with `Function('')` unless told to run
 * jitless, and under this page's CSP (no 'unsafe-eval') that probe is a reported violation.
 */
const JITLESS_ZOD = 'globalThis.__zod_globalConfig={...globalThis.__zod_globalConfig,jitless:true};\n'

const loadReferenceScript = async () => Buffer.concat([Buffer.from(JITLESS_ZOD), await readFile(referenceScript())])

/** The web app's icon, inline: the reference page works without a built web app too. */
const REFERENCE_ICON = `data:image/svg+xml,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#b3261e"/><path d="M16 7v9l6 4" stroke="#fff" stroke-width="3" fill="none" stroke-linecap="round"/></svg>',
)}`

const mergedDocument = createRoute({
  method: 'get',
  path: MERGED_DOCUMENT_PATH,
  summary: 'Every public route of every service, in one OpenAPI 3.1 document whose server is this gateway',
  responses: {
    200: { description: 'the merged document', content: { 'application/json': { schema: z.looseObject({}) } } },
  },
})

const referencePage = createRoute({
  method: 'get',
  path: DOCS_PATH,
  summary: 'The API reference: read and try every public route from the browser',
  responses: { 200: { description: 'an HTML page', content: { 'text/html': { schema: z.string() } } } },
})

const referenceAsset = createRoute({
  method: 'get',
  path: REFERENCE_SCRIPT_PATH,
  summary: 'The script of the API reference page',
  responses: { 200: { description: 'JavaScript', content: { 'text/javascript': { schema: z.string() } } } },
})

/** `/api/openapi.json`, `/api/docs` and the reference's script; every asset comes from the gateway itself. */
export function docsRoutes(deps: { documents: ServiceDocuments; trustProxy: boolean }): Routes {
  const routes = createRoutes()
  let script: Promise<Buffer> | undefined
  const page = Scalar((c) => ({
    url: MERGED_DOCUMENT_PATH,
    cdn: REFERENCE_SCRIPT_PATH,
    pageTitle: 'Timedeal API',
    nonce: (c.get as (key: string) => string | undefined)('secureHeadersNonce'),
    // Nothing is fetched from elsewhere: no web fonts, no telemetry, no hosted proxy or assistant.
    withDefaultFonts: false,
    telemetry: false,
    agent: { disabled: true },
    showDeveloperTools: 'never',
    // Declared, so the browser does not ask for a /favicon.ico the gateway does not have.
    favicon: REFERENCE_ICON,
  }))
  routes.openapi(mergedDocument, async (c) => {
    const document = mergeDocuments(await deps.documents.current(), ownOrigin(c, deps.trustProxy))
    return c.json(document, 200)
  })
  routes.openapi(referencePage, (c, next) => page(c as never, next) as never)
  routes.openapi(referenceAsset, async (c) => {
    script ??= loadReferenceScript()
    return c.body(new Uint8Array(await script), 200, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'public, max-age=3600',
    }) as never
  })
  return routes
}
