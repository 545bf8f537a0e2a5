import { z } from 'zod'
import { type CloudEvent, InvalidEventError, type NewEvent, newCloudEvent } from './cloudevents.ts'

/** One event type: its CloudEvents `type`, the topic it travels on and the schema of its data. */
export interface EventDefinition<TName extends string, TSchema extends z.ZodType> {
  readonly type: TName
  readonly topic: string
  readonly schema: TSchema
}

const define = <TName extends string, TSchema extends z.ZodType>(
  type: TName,
  topic: string,
  schema: TSchema,
): EventDefinition<TName, TSchema> => ({ type, topic, schema })

export const TOPIC_ORDERS = 'timedeal.orders'
export const TOPIC_PAYMENTS = 'timedeal.payments'
export const TOPIC_CHAT_MESSAGES = 'timedeal.chat.messages'

const id = z.string().min(1).max(64)
const krw = z.number().int().nonnegative()
const quantity = z.number().int().positive()
const instant = z.iso.datetime({ offset: true })

const orderLine = {
  orderId: id,
  buyerId: id,
  goodsId: id,
  reservationId: id,
  quantity,
}

export const events = {
  orderPlaced: define(
    'timedeal.order.placed.v1',
    TOPIC_ORDERS,
    z.object({ ...orderLine, unitPrice: krw, totalAmount: krw, placedAt: instant }),
  ),
  orderPaid: define('timedeal.order.paid.v1', TOPIC_ORDERS, z.object({ ...orderLine, paymentId: id, paidAt: instant })),
  orderFailed: define(
    'timedeal.order.failed.v1',
    TOPIC_ORDERS,
    z.object({ ...orderLine, reason: z.string().min(1), failedAt: instant }),
  ),
  orderCancelled: define(
    'timedeal.order.cancelled.v1',
    TOPIC_ORDERS,
    z.object({ ...orderLine, wasPaid: z.boolean(), cancelledAt: instant }),
  ),
  orderExpired: define('timedeal.order.expired.v1', TOPIC_ORDERS, z.object({ ...orderLine, expiredAt: instant })),
  orderReturned: define('timedeal.order.returned.v1', TOPIC_ORDERS, z.object({ ...orderLine, returnedAt: instant })),
  paymentCompleted: define(
    'timedeal.payment.completed.v1',
    TOPIC_PAYMENTS,
    z.object({ paymentId: id, orderId: id, amount: krw, provider: z.string().min(1), completedAt: instant }),
  ),
  paymentFailed: define(
    'timedeal.payment.failed.v1',
    TOPIC_PAYMENTS,
    z.object({ paymentId: id, orderId: id, amount: krw, code: z.string().min(1), failedAt: instant }),
  ),
  paymentRefunded: define(
    'timedeal.payment.refunded.v1',
    TOPIC_PAYMENTS,
    z.object({ paymentId: id, orderId: id, amount: krw, refundedAt: instant }),
  ),
  chatMessagePosted: define(
    'timedeal.chat.message.posted.v1',
    TOPIC_CHAT_MESSAGES,
    // A STOMP SEND as the client wrote it: the body's bytes (base64, so binary bodies survive)
    // and the client's own headers in order, so delivery can repeat both exactly.
    z.object({
      messageId: id,
      roomId: id,
      senderId: id,
      body: z.base64().max(1_400_000),
      headers: z.array(z.tuple([z.string(), z.string()])).max(256),
      postedAt: instant,
    }),
  ),
} as const

export type EventCatalog = typeof events
export type EventName = keyof EventCatalog
export type EventType = EventCatalog[EventName]['type']
export type EventData<N extends EventName> = z.infer<EventCatalog[N]['schema']>

const byType = new Map<string, EventDefinition<string, z.ZodType>>(
  Object.values(events).map((definition) => [definition.type, definition]),
)

export function definitionOf(type: string): EventDefinition<string, z.ZodType> | undefined {
  return byType.get(type)
}

/** Builds an event whose data is checked against its schema before it can leave the service. */
export function createEvent<N extends EventName>(
  name: N,
  event: Omit<NewEvent<EventData<N>>, 'type'>,
): CloudEvent<EventData<N>> {
  const definition = events[name]
  const data = parseWith(definition, event.data)
  return newCloudEvent({ ...event, type: definition.type, data: data as EventData<N> })
}

/** Checks a received event against the catalog: unknown types and bad data are errors. */
export function validateEvent(event: CloudEvent): CloudEvent {
  const definition = byType.get(event.type)
  if (!definition) throw new InvalidEventError(`unknown event type ${event.type}`)
  return { ...event, data: parseWith(definition, event.data) }
}

/** Narrows a validated event to one type of the catalog. */
export function isEvent<N extends EventName>(event: CloudEvent, name: N): event is CloudEvent<EventData<N>> {
  return event.type === events[name].type
}

function parseWith(definition: EventDefinition<string, z.ZodType>, data: unknown): unknown {
  const result = definition.schema.safeParse(data)
  if (result.success) return result.data
  const detail = result.error.issues.map((issue) => `${issue.path.join('.') || '(data)'}: ${issue.message}`).join('; ')
  throw new InvalidEventError(`invalid ${definition.type} data: ${detail}`)
}
