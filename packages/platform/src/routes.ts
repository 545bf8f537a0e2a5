import { OpenAPIHono } from '@hono/zod-openapi'
import type { Hono } from 'hono'
import type { ClientErrorStatusCode, ServerErrorStatusCode } from 'hono/utils/http-status'
import { z } from 'zod'
import { type AppEnv, answerUnexpectedFailuresWith, INTERNAL_OPENAPI_PATH, OPENAPI_PATH } from './http.ts'
import { answerInvalidInput, PROBLEM_CONTENT_TYPE, type Problem } from './problem.ts'

/** Routes of a service: a Hono app whose routes are declared with `createRoute` and documented. */
export type Routes<E extends AppEnv = AppEnv> = OpenAPIHono<E>

export interface RoutesOptions {
  /**
   * The problem every failure of these routes that is not a `Problem` becomes (for routes whose
   * only unexpected failure is their store being unreachable, say 503 STOCK_UNAVAILABLE);
   * without it such a failure is a logged 500 INTERNAL.
   */
  readonly unexpectedFailure?: () => Problem
}

/**
 * An empty routes app; mount it with `.route(path, routes)` on the service's routes or app.
 * `createRoutes<AuthedEnv>()` for routes behind `authenticate`, so `c.var.caller` is typed.
 */
export function createRoutes<E extends AppEnv = AppEnv>(options: RoutesOptions = {}): Routes<E> {
  const routes = new OpenAPIHono<E>({ defaultHook: answerInvalidInput })
  const { unexpectedFailure } = options
  if (unexpectedFailure) {
    // Named on the request for the app's one error renderer, rather than by an error handler of
    // these routes: Hono wraps every handler of routes with their own handler in one more
    // middleware chain when they are mounted, a cost each request of a hot route pays several times.
    routes.use(answerUnexpectedFailuresWith(unexpectedFailure))
  }
  return routes
}

/** A required (or, with `optional`, an optional) JSON request body checked against `schema`. */
export function jsonBody<S extends z.ZodType>(schema: S, options: { optional?: boolean; description?: string } = {}) {
  return {
    content: { 'application/json': { schema } },
    required: !options.optional,
    ...(options.description ? { description: options.description } : {}),
  }
}

/** A JSON response of `schema`, for a route's `responses`. */
export function jsonResponse<S extends z.ZodType>(schema: S, description: string) {
  return { description, content: { 'application/json': { schema } } }
}

/** A response without a body (204, or a redirect). */
export const emptyResponse = (description: string) => ({ description })

type ProblemStatus = ClientErrorStatusCode | ServerErrorStatusCode
type ProblemCodes = Partial<Record<ProblemStatus, readonly [string, ...string[]]>>
type KeysOf<T> = T extends unknown ? keyof T : never
type ProblemResponse = { description: string; content: { [PROBLEM_CONTENT_TYPE]: { schema: z.ZodType } } }

/**
 * The problem+json answers of a route, by status, each listing the codes it may carry; the
 * codes of several lists are merged:
 * `problemResponses(JSON_BODY_PROBLEMS, { 404: ['ORDER_NOT_FOUND'], 409: ['ORDER_STATE_CONFLICT'] })`.
 */
export function problemResponses<const L extends readonly ProblemCodes[]>(
  ...lists: L
): { [S in KeysOf<L[number]>]: ProblemResponse } {
  const merged = new Map<string, Set<string>>()
  for (const list of lists) {
    for (const [status, codes] of Object.entries(list) as [string, readonly string[]][]) {
      const known = merged.get(status) ?? new Set<string>()
      for (const code of codes) known.add(code)
      merged.set(status, known)
    }
  }
  const responses: Record<string, ProblemResponse> = {}
  for (const [status, codes] of merged) {
    const list = [...codes] as [string, ...string[]]
    responses[status] = {
      description: list.join(', '),
      content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema(Number(status), list) } },
    }
  }
  return responses as never
}

/** What any route with a JSON body may answer before its handler runs. */
export const JSON_BODY_PROBLEMS = {
  400: ['VALIDATION_FAILED', 'MALFORMED_JSON'],
  413: ['PAYLOAD_TOO_LARGE'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
} as const satisfies ProblemCodes

/** What any route with path, query or header parameters may answer before its handler runs. */
export const PARAMETER_PROBLEMS = { 400: ['VALIDATION_FAILED'] } as const satisfies ProblemCodes

/** What a route behind `authenticate` may answer before its handler runs. */
export const AUTH_PROBLEMS = {
  401: ['UNAUTHENTICATED', 'TOKEN_INVALID', 'TOKEN_EXPIRED'],
  503: ['AUTH_UNAVAILABLE'],
} as const satisfies ProblemCodes

/** What `requireRole` answers. */
export const ROLE_PROBLEMS = { 403: ['FORBIDDEN_ROLE'] } as const satisfies ProblemCodes

/** What an internal route behind `requireServiceCredential` may answer before its handler runs. */
export const SERVICE_CREDENTIAL_PROBLEMS = {
  401: ['SERVICE_CREDENTIAL_REQUIRED'],
  403: ['SERVICE_CREDENTIAL_INVALID'],
} as const satisfies ProblemCodes

const problemSchema = (status: number, codes: readonly [string, ...string[]]) =>
  z.looseObject({
    type: z.string(),
    title: z.string(),
    status: z.literal(status),
    code: z.enum(codes),
    detail: z.string(),
    instance: z.string().optional(),
  })

/** Served by the platform itself, not by the service's routes. */
const PLATFORM_PATHS = new Set(['/healthz', '/readyz', '/metrics', OPENAPI_PATH, INTERNAL_OPENAPI_PATH])

interface Operation {
  requestBody?: { content?: Record<string, { schema?: unknown }> }
  parameters?: { name: string; in: string; schema?: unknown }[]
  responses?: Record<string, { content?: Record<string, { schema?: { properties?: { code?: { enum?: string[] } } } }> }>
}

/**
 * What a service's routes leave undocumented in the OpenAPI document the app serves at
 * `documentPath`: a route missing from it, a request body or parameter without a schema, no
 * success response, a problem response without its codes, input without its validation codes.
 */
export async function routeDocumentationGaps(
  // biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env type
  app: Hono<any>,
  documentPath = OPENAPI_PATH,
): Promise<string[]> {
  const answer = await app.request(documentPath)
  if (answer.status !== 200) return [`${documentPath} answered ${answer.status}`]
  const document = (await answer.json()) as { paths?: Record<string, Record<string, Operation>> }
  const gaps: string[] = []
  const seen = new Set<string>()
  for (const { method, path } of app.routes) {
    const route = `${method} ${path}`
    // Middleware is registered for every method; the platform's own paths document nothing.
    if (method === 'ALL' || PLATFORM_PATHS.has(path) || seen.has(route)) continue
    seen.add(route)
    const operation = document.paths?.[openApiPath(path)]?.[method.toLowerCase()]
    if (!operation) gaps.push(`${route} is not in ${documentPath}`)
    else gaps.push(...operationGaps(route, operation))
  }
  return gaps
}

/** Fails, naming every gap, unless every route of `app` is documented (see {@link routeDocumentationGaps}). */
export async function assertEveryRouteDocumented(
  // biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env type
  app: Hono<any>,
  documentPath = OPENAPI_PATH,
): Promise<void> {
  const gaps = await routeDocumentationGaps(app, documentPath)
  if (gaps.length > 0) throw new Error(`routes are not fully documented:\n  ${gaps.join('\n  ')}`)
}

const openApiPath = (path: string) => path.replaceAll(/:(\w+)(\{[^}]*\})?/g, '{$1}')

function operationGaps(route: string, operation: Operation): string[] {
  const gaps: string[] = []
  const responses = operation.responses ?? {}
  const codesOf = (status: string) => responses[status]?.content?.[PROBLEM_CONTENT_TYPE]?.schema?.properties?.code?.enum
  if (!Object.keys(responses).some((status) => /^[23]/.test(status)))
    gaps.push(`${route} documents no success response`)
  for (const status of Object.keys(responses).filter((status) => /^[45]/.test(status))) {
    if (!codesOf(status)?.length) gaps.push(`${route} documents ${status} without its problem codes`)
  }
  const body = operation.requestBody
  if (body && !Object.values(body.content ?? {}).some((media) => media.schema)) {
    gaps.push(`${route} documents a request body without a schema`)
  }
  for (const parameter of operation.parameters ?? []) {
    if (!parameter.schema) gaps.push(`${route} documents ${parameter.in} parameter ${parameter.name} without a schema`)
  }
  const expected: [string, string][] = []
  if (body || operation.parameters?.length) expected.push(['400', 'VALIDATION_FAILED'])
  if (body) expected.push(['400', 'MALFORMED_JSON'], ['415', 'UNSUPPORTED_MEDIA_TYPE'])
  for (const [status, code] of expected) {
    if (!codesOf(status)?.includes(code)) gaps.push(`${route} does not document ${status} ${code}`)
  }
  return gaps
}
