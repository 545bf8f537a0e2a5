/**
 * Why handling an event failed decides what a consumer does next. An outage of something the
 * handler needs (MySQL, Redis, Kafka, another service) ends; the event is retried until it is
 * over. An event that can never succeed (bad data, a broken rule) is dead-lettered after a few
 * attempts, so it stops holding up the events behind it.
 */
import { InvalidEventError } from '@timedeal/contracts'
import { Problem } from './problem.ts'

/**
 * - `infrastructure`: a dependency is down, slow or refusing; retried without limit.
 * - `permanent`: this event can never succeed; dead-lettered after bounded attempts.
 * - `unclassified`: anything else; retried without limit, like `infrastructure`, but logged as
 *   an error. A dead-lettered event is silently not applied (units not returned, a refund not
 *   made) until someone replays it, while a stuck partition is loud (consumer lag, the retry
 *   metric, an error line per retry) and heals by itself once the cause is fixed. So an error
 *   nobody has judged is treated as "not this event's fault"; handlers that know an event is
 *   hopeless say so with {@link PermanentEventError}.
 */
export type FailureKind = 'infrastructure' | 'permanent' | 'unclassified'

/**
 * Thrown by a handler for an event that can never succeed: a rule it breaks, data it lacks.
 * The consumer dead-letters it after its bounded attempts instead of retrying it forever.
 */
export class PermanentEventError extends Error {
  override name = 'PermanentEventError'
}

/** Error codes of sockets, HTTP clients and MySQL that mean "the server is unavailable now". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_ACCESS_DENIED_ERROR',
])

/** Error names of the clients the platform uses (Sequelize, ioredis, kafkajs, cockatiel, fetch). */
const UNAVAILABLE_NAMES = new Set([
  'SequelizeConnectionError',
  'SequelizeConnectionRefusedError',
  'SequelizeConnectionTimedOutError',
  'SequelizeConnectionAcquireTimeoutError',
  'SequelizeHostNotFoundError',
  'SequelizeHostNotReachableError',
  'SequelizeInvalidConnectionError',
  'SequelizeAccessDeniedError',
  'SequelizeTimeoutError',
  'MaxRetriesPerRequestError',
  'ClusterAllFailedError',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSLockTimeout',
  'BrokenCircuitError',
  'IsolatedCircuitError',
  'HydratingCircuitError',
  'BulkheadRejectedError',
  'TaskCancelledError',
  'TimeoutError',
])

/** ioredis messages of a closed connection, and Redis replies of a server that is not serving yet. */
const UNAVAILABLE_MESSAGES = [
  /^Connection is closed\.?$/,
  /^Stream isn't writeable/,
  /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS|MISCONF)\b/,
]

/** HTTP answers that mean "not now" rather than "never". */
const RETRY_LATER_STATUSES = new Set([408, 425, 429, 502, 503, 504])

/** Tells infrastructure failures, permanent ones and the rest apart (see {@link FailureKind}). */
export function classifyFailure(error: unknown): FailureKind {
  if (isPermanent(error)) return 'permanent'
  if (isInfrastructureFailure(error)) return 'infrastructure'
  return 'unclassified'
}

/** True for an event that can never succeed: marked so by its handler, or invalid data. */
export function isPermanent(error: unknown): boolean {
  if (error instanceof PermanentEventError || error instanceof InvalidEventError) return true
  if (error instanceof Error && error.name === 'ZodError') return true
  return error instanceof Problem && error.status < 500 && !RETRY_LATER_STATUSES.has(error.status)
}

/** True when the error, or any error that caused it, says a dependency is unavailable. */
export function isInfrastructureFailure(error: unknown): boolean {
  return causesOf(error).some(unavailable)
}

function unavailable(error: Error): boolean {
  const { code, retriable, fatal } = error as { code?: unknown; retriable?: unknown; fatal?: unknown }
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true
  if (UNAVAILABLE_NAMES.has(error.name)) return true
  // kafkajs marks what may succeed on a retry; mysql2 marks errors that broke the connection.
  if (error.name.startsWith('KafkaJS') && retriable === true) return true
  if (fatal === true && typeof code === 'string') return true
  if (error instanceof Problem) return RETRY_LATER_STATUSES.has(error.status)
  return UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(error.message))
}

/** The error and what it wraps: `cause`, Sequelize's `parent`/`original`, kafkajs' `originalError`, aggregates. */
function causesOf(error: unknown, depth = 0): Error[] {
  if (!(error instanceof Error) || depth > 5) return []
  const wrapped = error as Error & { parent?: unknown; original?: unknown; originalError?: unknown; errors?: unknown }
  const inner = [wrapped.cause, wrapped.parent, wrapped.original, wrapped.originalError]
  if (Array.isArray(wrapped.errors)) inner.push(...wrapped.errors)
  return [error, ...inner.filter((cause) => cause !== error).flatMap((cause) => causesOf(cause, depth + 1))]
}
