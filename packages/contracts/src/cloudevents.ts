import { randomUUID } from 'node:crypto'
import { z } from 'zod'

/**
 * A CloudEvents 1.0 event as Timedeal sends it: JSON data, the aggregate id as `subject`,
 * which is also the Kafka key so one aggregate's events stay in order.
 */
export interface CloudEvent<TData = unknown> {
  readonly specversion: '1.0'
  readonly id: string
  readonly type: string
  readonly source: string
  readonly subject: string
  readonly time: string
  readonly datacontenttype: 'application/json'
  /** W3C trace context, carried as the CloudEvents distributed-tracing extension. */
  readonly traceparent?: string | undefined
  readonly data: TData
}

export interface NewEvent<TData> {
  readonly type: string
  readonly source: string
  readonly subject: string
  readonly data: TData
  readonly id?: string
  readonly time?: Date
  readonly traceparent?: string | undefined
}

export function newCloudEvent<TData>(event: NewEvent<TData>): CloudEvent<TData> {
  return {
    specversion: '1.0',
    id: event.id ?? randomUUID(),
    type: event.type,
    source: event.source,
    subject: event.subject,
    time: (event.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    traceparent: event.traceparent,
    data: event.data,
  }
}

/** A Kafka record in the CloudEvents Kafka protocol binding, binary content mode. */
export interface KafkaEventRecord {
  readonly key: string
  readonly value: Buffer
  readonly headers: Record<string, string>
}

const CONTENT_TYPE = 'application/json'

export function toKafkaRecord(event: CloudEvent): KafkaEventRecord {
  const headers: Record<string, string> = {
    ce_specversion: event.specversion,
    ce_id: event.id,
    ce_type: event.type,
    ce_source: event.source,
    ce_subject: event.subject,
    ce_time: event.time,
    'content-type': CONTENT_TYPE,
  }
  if (event.traceparent) headers.ce_traceparent = event.traceparent
  return { key: event.subject, value: Buffer.from(JSON.stringify(event.data)), headers }
}

export class InvalidEventError extends Error {
  override name = 'InvalidEventError'
}

const nonEmpty = z.string().min(1)
const requiredHeaders = z.object({
  ce_specversion: z.literal('1.0'),
  ce_id: nonEmpty,
  ce_type: nonEmpty,
  ce_source: nonEmpty,
  ce_subject: nonEmpty,
  ce_time: z.iso.datetime({ offset: true }),
  'content-type': z.string().startsWith(CONTENT_TYPE),
  ce_traceparent: z.string().optional(),
})

type RawHeaderValue = Buffer | string | (Buffer | string)[] | undefined

/** Reads a record written by {@link toKafkaRecord}; throws {@link InvalidEventError} otherwise. */
export function fromKafkaRecord(record: {
  headers?: Record<string, RawHeaderValue> | undefined
  value: Buffer | null
}): CloudEvent {
  const headers: Record<string, string> = {}
  for (const [name, raw] of Object.entries(record.headers ?? {})) {
    const value = Array.isArray(raw) ? raw[0] : raw
    if (value !== undefined) headers[name.toLowerCase()] = value.toString()
  }
  const parsed = requiredHeaders.safeParse(headers)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidEventError(`not a CloudEvents binary record: header ${String(issue?.path[0])} ${issue?.message}`)
  }
  if (record.value === null) throw new InvalidEventError('CloudEvents record has no value')
  let data: unknown
  try {
    data = JSON.parse(record.value.toString('utf8'))
  } catch {
    throw new InvalidEventError(`event ${parsed.data.ce_id} has a value that is not JSON`)
  }
  const h = parsed.data
  return {
    specversion: '1.0',
    id: h.ce_id,
    type: h.ce_type,
    source: h.ce_source,
    subject: h.ce_subject,
    time: h.ce_time,
    datacontenttype: 'application/json',
    traceparent: h.ce_traceparent,
    data,
  }
}
