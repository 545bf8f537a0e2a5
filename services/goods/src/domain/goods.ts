import { randomBytes } from 'node:crypto'
import { SALE_STATES, type SaleState, type StockSnapshot, type StockSource, saleStateAt } from '@timedeal/stock'
import { z } from 'zod'

/** A goods of the catalog, as the durable record holds it. */
export interface Goods {
  readonly id: string
  readonly sellerId: string
  readonly name: string
  readonly description: string
  /** Whole won (KRW). */
  readonly price: number
  readonly initialStock: number
  /** The durable count: lags live stock until the write-behind has applied the ledger. */
  readonly stockOnHand: number
  readonly saleStartsAt: Date
  readonly saleEndsAt: Date
  readonly purchaseLimit: number | null
  readonly version: number
  readonly createdAt: Date
  readonly updatedAt: Date
}

let lastIdMs = 0

/**
 * A time-ordered id (UUID version 7): the first 48 bits are the creation time in ms, so newer
 * goods sort after older ones and id order is a stable cursor for pages. Within a process the
 * time part only ever grows, so two goods made in the same millisecond keep their order too.
 */
export function newGoodsId(now: number = Date.now()): string {
  lastIdMs = Math.max(now, lastIdMs + 1)
  const bytes = randomBytes(16)
  bytes.writeUIntBE(lastIdMs, 0, 6)
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const instant = z.iso
  .datetime({ offset: true, error: 'expected an ISO 8601 instant' })
  .transform((value) => new Date(value))

const fields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(5000),
  price: z.number().int().nonnegative().max(1_000_000_000_000),
  initialStock: z.number().int().nonnegative().max(1_000_000_000),
  saleStartsAt: instant,
  saleEndsAt: instant,
  purchaseLimit: z.number().int().positive().max(1_000_000).nullable(),
}

const windowInOrder = (value: { saleStartsAt?: Date; saleEndsAt?: Date }) =>
  !value.saleStartsAt || !value.saleEndsAt || value.saleEndsAt.getTime() > value.saleStartsAt.getTime()
const windowIssue = { message: 'saleEndsAt must be after saleStartsAt', path: ['saleEndsAt'] }

/** A new goods as a seller submits it. */
export const goodsDraftSchema = z
  .strictObject({
    ...fields,
    description: fields.description.default(''),
    purchaseLimit: fields.purchaseLimit.default(null),
  })
  .refine(windowInOrder, windowIssue)
export type GoodsDraft = z.infer<typeof goodsDraftSchema>

/** A seller's edit: any of the fields, the rest unchanged. */
export const goodsPatchSchema = z.strictObject(fields).partial().refine(windowInOrder, windowIssue)
export type GoodsPatch = z.infer<typeof goodsPatchSchema>

export function draftToGoods(draft: GoodsDraft, sellerId: string, now: Date): Goods {
  return {
    id: newGoodsId(now.getTime()),
    sellerId,
    name: draft.name,
    description: draft.description,
    price: draft.price,
    initialStock: draft.initialStock,
    stockOnHand: draft.initialStock,
    saleStartsAt: draft.saleStartsAt,
    saleEndsAt: draft.saleEndsAt,
    purchaseLimit: draft.purchaseLimit,
    version: 1,
    createdAt: now,
    updatedAt: now,
  }
}

/** Why an edit is refused, or undefined when it may be applied. */
export type EditRefusal = 'WINDOW_OUT_OF_ORDER' | 'SALE_IN_PROGRESS'

/**
 * Applies a patch: the merged window must stay in order, and the stock may not change while the
 * current window is open (buyers are racing for it). The version goes up with every edit.
 */
export function applyPatch(goods: Goods, patch: GoodsPatch, now: number): Goods | EditRefusal {
  const next: Goods = {
    ...goods,
    name: patch.name ?? goods.name,
    description: patch.description ?? goods.description,
    price: patch.price ?? goods.price,
    initialStock: patch.initialStock ?? goods.initialStock,
    saleStartsAt: patch.saleStartsAt ?? goods.saleStartsAt,
    saleEndsAt: patch.saleEndsAt ?? goods.saleEndsAt,
    purchaseLimit: patch.purchaseLimit === undefined ? goods.purchaseLimit : patch.purchaseLimit,
    version: goods.version + 1,
  }
  if (next.saleEndsAt.getTime() <= next.saleStartsAt.getTime()) return 'WINDOW_OUT_OF_ORDER'
  const stockChanges = next.initialStock !== goods.initialStock
  const openNow = now >= goods.saleStartsAt.getTime() && now < goods.saleEndsAt.getTime()
  if (stockChanges && openNow) return 'SALE_IN_PROGRESS'
  return next
}

export function stockSourceOf(goods: Goods): StockSource {
  return {
    goodsId: goods.id,
    onHand: goods.stockOnHand,
    startsAt: goods.saleStartsAt.getTime(),
    endsAt: goods.saleEndsAt.getTime(),
    purchaseLimit: goods.purchaseLimit,
    initialStock: goods.initialStock,
    version: goods.version,
  }
}

export const saleStateSchema = z.enum(SALE_STATES)

/** What the API shows of a goods: the catalog fields with its live stock and sale state. */
export interface GoodsView
  extends Pick<Goods, 'id' | 'sellerId' | 'name' | 'description' | 'price' | 'initialStock' | 'purchaseLimit'> {
  readonly stockAvailable: number
  readonly saleState: SaleState
  readonly saleStartsAt: string
  readonly saleEndsAt: string
  readonly createdAt: string
  readonly updatedAt: string
}

export function goodsView(goods: Goods, live: StockSnapshot): GoodsView {
  // The window comes from the catalog row (the edit just made is the truth); stock and clock
  // from Redis.
  const window = { startsAt: goods.saleStartsAt.getTime(), endsAt: goods.saleEndsAt.getTime() }
  return {
    id: goods.id,
    sellerId: goods.sellerId,
    name: goods.name,
    description: goods.description,
    price: goods.price,
    initialStock: goods.initialStock,
    stockAvailable: live.available,
    saleState: saleStateAt(live.now, window, live.available),
    saleStartsAt: goods.saleStartsAt.toISOString(),
    saleEndsAt: goods.saleEndsAt.toISOString(),
    purchaseLimit: goods.purchaseLimit,
    createdAt: goods.createdAt.toISOString(),
    updatedAt: goods.updatedAt.toISOString(),
  }
}
