/**
 * What order-service does with orders: placement (`place-order.ts`), reads, and every state
 * change, each applied through the state machine under the order's row lock with its events
 * written to the outbox in the same transaction.
 */
import { type CloudEvent, createEvent, TOPIC_ORDERS } from '@timedeal/contracts'
import { appendToOutbox, type Logger, notFound, Problem, unprocessable } from '@timedeal/platform'
import type { Sequelize, Transaction } from 'sequelize'
import type { GoodsClient } from '../adapters/goods-client.ts'
import type { OrderPage, OrderStore } from '../adapters/order-store.ts'
import { createPlacementClaims } from '../adapters/placement-claims.ts'
import type { PlacementStore } from '../adapters/placement-store.ts'
import { createPlacementWriter } from '../adapters/placement-writer.ts'
import {
  type Order,
  type OrderCommand,
  type OrderEvent,
  type OrderStateError,
  transition,
} from '../domain/order-state.ts'
import type { OrderMetrics } from '../metrics.ts'
import { createPlaceOrder, type Placement, type PlacementRules, type PlaceOrderRequest } from './place-order.ts'

export const ORDER_EVENT_SOURCE = '/order-service'

export type { Placement, PlaceOrderRequest } from './place-order.ts'

export interface ApplyOptions {
  readonly traceparent?: string | undefined
  /** Checked on the locked order before anything changes: throws to refuse (e.g. not the owner). */
  readonly authorize?: (order: Order) => void
}

/** What a command driven by an event came to. */
export type EventOutcome = 'applied' | 'refused' | 'unknown-order'

/** A command caused by an event, for {@link Orders.applyManyFromEvents}. */
export interface EventCommand {
  readonly orderId: string
  readonly command: OrderCommand
  readonly traceparent?: string | undefined
}

export interface Orders {
  place(request: PlaceOrderRequest): Promise<Placement>
  find(id: string): Promise<Order | undefined>
  list(party: { buyerId: string } | { sellerId: string }, page: { limit: number; afterId?: string }): Promise<OrderPage>
  /** Applies a command asked for over HTTP; an illegal one is a 409 (or 422) problem. */
  apply(orderId: string, command: OrderCommand, options?: ApplyOptions): Promise<Order>
  /**
   * Applies a command caused by an event, inside the caller's transaction (the inbox's). An
   * illegal one is not an error: the event came too late for this order, and is recorded as such.
   */
  applyFromEvent(
    transaction: Transaction,
    orderId: string,
    command: OrderCommand,
    traceparent?: string,
  ): Promise<EventOutcome>
  /**
   * Applies the commands of a batch of events, in order, inside the caller's transaction: one
   * locking read of their orders, each command checked against its order as the commands before
   * it left it, and the events of every change in one outbox insert. Answers each one's outcome.
   */
  applyManyFromEvents(transaction: Transaction, commands: readonly EventCommand[]): Promise<EventOutcome[]>
  /** Applies `command` to the orders the scheduler picked; ones that moved on meanwhile are skipped. */
  applyToEach(orderIds: readonly string[], command: () => OrderCommand): Promise<number>
}

export interface OrdersDeps {
  readonly sequelize: Sequelize
  readonly store: OrderStore
  readonly placements: PlacementStore
  readonly goods: GoodsClient
  readonly placementRules: PlacementRules
  /** Group commit of placements (see `placement-writer.ts`); without it each is written on its own. */
  readonly placementBatches?: PlacementBatches
  /** Grouped claims of Idempotency-Keys (see `placement-claims.ts`); without it each is claimed on its own. */
  readonly claimBatches?: ClaimBatches
  readonly logger: Logger
  readonly metrics: OrderMetrics
  /** Runs after each commit that wrote events: wakes the outbox relay. */
  readonly afterCommit?: () => void
  readonly clock?: () => Date
}

export interface PlacementBatches {
  /** How long the first placement of a batch waits for others; 0 writes each on its own. */
  readonly lingerMs: number
  readonly maxBatch: number
  readonly maxInFlight: number
}

export interface ClaimBatches {
  /** How long the first claim of a group waits for others; 0: the claims of one event-loop turn. */
  readonly lingerMs: number
  /** Claims in one statement at most; 1 claims each key in a statement of its own. */
  readonly maxBatch: number
  readonly maxInFlight: number
}

export function createOrders(deps: OrdersDeps): Orders {
  const { sequelize, store, logger } = deps
  const clock = deps.clock ?? (() => new Date())
  const { transitions } = deps.metrics

  const writeEvents = (transaction: Transaction, events: readonly OrderEvent[], traceparent?: string) =>
    appendToOutbox(sequelize, transaction, TOPIC_ORDERS, toCloudEvents(events, traceparent), deps.afterCommit)

  async function change(
    transaction: Transaction,
    order: Order,
    command: OrderCommand,
    traceparent?: string,
  ): Promise<Order | OrderStateError> {
    const result = transition(order, command)
    if (!result.ok) {
      transitions.inc({ command: command.type, outcome: 'refused' })
      return result.error
    }
    await store.update(order, result.order, transaction)
    await writeEvents(transaction, result.events, traceparent)
    transitions.inc({ command: command.type, outcome: 'applied' })
    return result.order
  }

  async function applyManyFromEvents(
    transaction: Transaction,
    commands: readonly EventCommand[],
  ): Promise<EventOutcome[]> {
    const locked = await store.findMany([...new Set(commands.map(({ orderId }) => orderId))], transaction)
    const current = new Map(locked.map((order) => [order.id, order]))
    const events: CloudEvent[] = []
    const outcomes: EventOutcome[] = []
    for (const { orderId, command, traceparent } of commands) {
      const order = current.get(orderId)
      if (!order) {
        outcomes.push('unknown-order')
        continue
      }
      const result = transition(order, command)
      if (!result.ok) {
        transitions.inc({ command: command.type, outcome: 'refused' })
        logger.info({ orderId, state: order.state, command: command.type }, 'event came too late for the order')
        outcomes.push('refused')
        continue
      }
      await store.update(order, result.order, transaction)
      current.set(orderId, result.order)
      events.push(...toCloudEvents(result.events, traceparent))
      transitions.inc({ command: command.type, outcome: 'applied' })
      outcomes.push('applied')
    }
    await appendToOutbox(sequelize, transaction, TOPIC_ORDERS, events, deps.afterCommit)
    return outcomes
  }

  const batches = deps.placementBatches ?? { lingerMs: 0, maxBatch: 1, maxInFlight: 1 }
  const writePlacement = createPlacementWriter({
    sequelize,
    store,
    placements: deps.placements,
    // One outbox insert, so the relay is woken once per transaction.
    writeEvents: (transaction, writes) =>
      appendToOutbox(
        sequelize,
        transaction,
        TOPIC_ORDERS,
        writes.flatMap(({ events, traceparent }) => toCloudEvents(events, traceparent)),
        deps.afterCommit,
      ),
    ...batches,
    transactions: deps.metrics.placementWrites,
    logger,
  })
  const claimPlacement = createPlacementClaims({
    placements: deps.placements,
    ...(deps.claimBatches ?? { lingerMs: 0, maxBatch: 1, maxInFlight: 1 }),
    statements: deps.metrics.placementClaims,
    logger,
  })
  const place = createPlaceOrder({
    store,
    placements: deps.placements,
    claimPlacement,
    goods: deps.goods,
    rules: deps.placementRules,
    logger,
    placed: deps.metrics.placements,
    writePlacement,
    clock,
  })

  return {
    place,

    find: (id) => store.find(id),

    list: (party, page) => store.list(party, page),

    async apply(orderId, command, options = {}) {
      const outcome = await sequelize.transaction(async (transaction) => {
        const order = await store.find(orderId, transaction)
        if (!order) throw orderNotFound(orderId)
        options.authorize?.(order)
        return change(transaction, order, command, options.traceparent)
      })
      if ('code' in outcome) throw problemOf(outcome)
      return outcome
    },

    async applyFromEvent(transaction, orderId, command, traceparent) {
      const [outcome] = await applyManyFromEvents(transaction, [{ orderId, command, traceparent }])
      return outcome ?? 'unknown-order'
    },

    applyManyFromEvents,

    async applyToEach(orderIds, command) {
      let applied = 0
      for (const orderId of orderIds) {
        const outcome = await sequelize.transaction(async (transaction) => {
          const order = await store.find(orderId, transaction)
          return order ? change(transaction, order, command()) : undefined
        })
        if (outcome && !('code' in outcome)) applied += 1
      }
      return applied
    },
  }
}

export function toCloudEvents(events: readonly OrderEvent[], traceparent?: string): CloudEvent[] {
  return events.map((event) =>
    createEvent(event.name, { source: ORDER_EVENT_SOURCE, subject: event.data.orderId, data: event.data, traceparent }),
  )
}

export const orderNotFound = (id: string) => notFound('ORDER_NOT_FOUND', `no order with id ${id}`)

function problemOf(error: OrderStateError): Problem {
  if (error.code === 'RETURN_WINDOW_CLOSED') return unprocessable(error.code, error.detail)
  return new Problem({
    status: 409,
    code: error.code,
    detail: error.detail,
    extensions: { state: error.state, command: error.command },
  })
}
