import { randomHex } from './random.ts'

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * W3C trace context: continues the caller's trace with a new span id, or starts a trace.
 * The result travels on outgoing HTTP calls and as the `ce_traceparent` Kafka header.
 */
export function continueTrace(incoming: string | undefined | null): { traceparent: string; traceId: string } {
  const match = incoming ? TRACEPARENT.exec(incoming.trim()) : null
  const traceId = match?.[1] && !/^0+$/.test(match[1]) ? match[1] : randomHex(16)
  const flags = match?.[3] ?? '01'
  return { traceparent: `00-${traceId}-${randomHex(8)}-${flags}`, traceId }
}
