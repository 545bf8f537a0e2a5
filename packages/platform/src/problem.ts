import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { z } from 'zod'

/**
 * An error meant for the caller, rendered as RFC 9457 `application/problem+json`.
 * `code` is stable (clients branch on it); `detail` is for humans.
 */
export class Problem extends Error {
  override name = 'Problem'
  readonly status: ContentfulStatusCode
  readonly code: string
  readonly extensions: Record<string, unknown>
  /** Response headers the answer needs, such as `Retry-After` or `WWW-Authenticate`. */
  readonly headers: Readonly<Record<string, string>>

  constructor(init: ProblemInit) {
    // A 4xx is an answer to the caller, not a failure of ours: its stack would be read by no one,
    // and capturing one is most of what a refusal costs on a hot route (a sold-out rush).
    const stackTraceLimit = Error.stackTraceLimit
    if (init.status < 500) Error.stackTraceLimit = 0
    super(init.detail, init.cause === undefined ? undefined : { cause: init.cause })
    Error.stackTraceLimit = stackTraceLimit
    this.status = init.status
    this.code = init.code
    this.extensions = init.extensions ?? {}
    this.headers = init.headers ?? {}
  }
}

/** What a `Problem` is built from, named like Hono's `HTTPException` options so call sites read alike. */
export interface ProblemInit {
  status: ContentfulStatusCode
  code: string
  detail: string
  extensions?: Record<string, unknown>
  headers?: Record<string, string>
  /** The underlying failure, kept for logs; never rendered to the caller. */
  cause?: unknown
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

const titles: Partial<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

export interface ProblemBody {
  type: string
  title: string
  status: number
  code: string
  detail: string
  instance?: string
  [extension: string]: unknown
}

export function problemBody(problem: Problem, instance?: string): ProblemBody {
  return {
    ...problem.extensions,
    type: `https://timedeal.io/problems/${problem.code.toLowerCase().replaceAll('_', '-')}`,
    title: titles[problem.status] ?? 'Error',
    status: problem.status,
    code: problem.code,
    detail: problem.message,
    ...(instance ? { instance } : {}),
  }
}

export function problemResponse(problem: Problem, instance?: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(problemBody(problem, instance)), {
    status: problem.status,
    headers: { ...problem.headers, ...headers, 'content-type': PROBLEM_CONTENT_TYPE },
  })
}

export const badRequest = (detail: string, extensions?: Record<string, unknown>) =>
  new Problem({ status: 400, code: 'BAD_REQUEST', detail, extensions })
export const notFound = (code: string, detail: string) => new Problem({ status: 404, code, detail })
export const conflict = (code: string, detail: string) => new Problem({ status: 409, code, detail })
export const unprocessable = (code: string, detail: string) => new Problem({ status: 422, code, detail })

/** 400 VALIDATION_FAILED naming every bad field, in `errors` and in the detail. */
export function validationProblem(error: z.ZodError, what: string): Problem {
  const errors = error.issues.map((issue) => ({
    field: issue.path.join('.') || '(root)',
    message: issue.message,
  }))
  const summary = errors.map((error) => `${error.field}: ${error.message}`).join('; ')
  return new Problem({
    status: 400,
    code: 'VALIDATION_FAILED',
    detail: `invalid ${what}: ${summary}`,
    extensions: { errors },
  })
}

const validationTargets: Record<string, string> = {
  json: 'request body',
  query: 'query',
  param: 'path',
  header: 'headers',
  cookie: 'cookies',
}

type ValidationResult = { target: string } & ({ success: true } | { success: false; error: z.ZodError })

/**
 * The validation hook of every route declared with `createRoute`: input that fails its schema
 * is one 400 VALIDATION_FAILED.
 */
export function answerInvalidInput(result: ValidationResult): void {
  if (!result.success) throw validationProblem(result.error, validationTargets[result.target] ?? result.target)
}
