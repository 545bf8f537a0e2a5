/**
 * The StockWarmup spec checked and put in the form the warm-up works with. The API server's
 * schema enforces most of this already; `timedeal-operator apply` reads files no server has
 * checked, so the same rules are enforced here too.
 */
import { DEFAULT_STOCK_SHARDS, MAX_STOCK_SHARDS } from '@timedeal/stock'
import { z } from 'zod'
import {
  DEFAULT_CHUNK_SIZE,
  DEFAULT_KEY_PREFIX,
  DEFAULT_LEAD_TIME,
  DEFAULT_MAX_ATTEMPTS,
  MAX_GOODS_IDS,
  type StockWarmupSpec,
  WARMUP_MODES,
  type WarmupMode,
} from './types.ts'

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/
const DURATION = /^([0-9]+(ms|s|m|h))+$/
const MAX_WINDOW_MS = 31 * 24 * 3_600_000
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** A Go-style duration (`10m`, `1h30m`, `500ms`) in milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined
  let total = 0
  for (const [, amount, unit] of text.matchAll(/([0-9]+)(ms|s|m|h)/g)) {
    total += Number(amount) * (UNIT_MS[unit as string] as number)
  }
  return Number.isSafeInteger(total) ? total : undefined
}

const instant = z.iso.datetime({ offset: true }).transform((text) => Date.parse(text))
const secretRef = z.object({ name: z.string().min(1).max(253) }).strict()

const specSchema = z
  .object({
    goods: z
      .object({
        goodsIds: z
          .array(z.string().regex(NAME, 'a goods id is 1 to 64 of A-Z a-z 0-9 _ . : -'))
          .min(1)
          .max(MAX_GOODS_IDS)
          .refine((ids) => new Set(ids).size === ids.length, 'goods ids must not repeat')
          .optional(),
        opensBetween: z
          .object({ from: instant, to: instant })
          .strict()
          .refine((window) => window.from < window.to, '`from` must be before `to`')
          .refine((window) => window.to - window.from <= MAX_WINDOW_MS, 'the window spans at most 31 days')
          .optional(),
      })
      .strict()
      .refine(
        (goods) => (goods.goodsIds === undefined) !== (goods.opensBetween === undefined),
        'name exactly one of goodsIds and opensBetween',
      ),
    source: z.object({ secretRef: secretRef.optional() }).strict().optional(),
    target: z
      .object({
        secretRef: secretRef.optional(),
        keyPrefix: z.string().regex(NAME, 'a key prefix is 1 to 64 of A-Z a-z 0-9 _ . : -').optional(),
        shards: z
          .number()
          .int(`shards is a whole number from 1 to ${MAX_STOCK_SHARDS}`)
          .min(1, `shards is a whole number from 1 to ${MAX_STOCK_SHARDS}`)
          .max(MAX_STOCK_SHARDS, `shards is a whole number from 1 to ${MAX_STOCK_SHARDS}`)
          .optional(),
      })
      .strict()
      .optional(),
    schedule: z
      .object({
        opensAt: instant.optional(),
        leadTime: z
          .string()
          .refine((text) => parseDuration(text) !== undefined, 'a duration such as 10m or 1h30m')
          .optional(),
      })
      .strict()
      .optional(),
    policy: z
      .object({
        mode: z.enum(WARMUP_MODES).optional(),
        chunkSize: z.number().int().min(1).max(10_000).optional(),
        maxAttempts: z.number().int().min(1).max(20).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()

export type GoodsSelector =
  | { readonly kind: 'ids'; readonly ids: readonly string[] }
  /** Goods whose sale opens in `[from, to)`, epoch ms. */
  | { readonly kind: 'window'; readonly from: number; readonly to: number }

/** A valid spec with every default applied. */
export interface WarmupPlan {
  readonly goods: GoodsSelector
  readonly sourceSecret?: string
  readonly targetSecret?: string
  readonly keyPrefix: string
  /** The namespace's shards: goods-service's STOCK_SHARDS. */
  readonly shards: number
  /** When the sale opens (epoch ms), when the spec says so. */
  readonly opensAt?: number
  /** When the warm-up may start (epoch ms); undefined: at once. */
  readonly startAt?: number
  readonly mode: WarmupMode
  readonly chunkSize: number
  readonly maxAttempts: number
}

export type PlanOrError =
  | { readonly ok: true; readonly plan: WarmupPlan }
  | { readonly ok: false; readonly error: string }

/** Checks a spec and applies the defaults; an invalid spec gets one readable message. */
export function planOf(spec: StockWarmupSpec | undefined): PlanOrError {
  const parsed = specSchema.safeParse(spec ?? {})
  if (!parsed.success) {
    const error = parsed.error.issues
      .map(
        (issue) =>
          `spec${issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('')}: ${issue.message}`,
      )
      .join('; ')
    return { ok: false, error }
  }
  const { goods, source, target, schedule, policy } = parsed.data
  const selector: GoodsSelector = goods.goodsIds
    ? { kind: 'ids', ids: goods.goodsIds }
    : { kind: 'window', from: goods.opensBetween?.from ?? 0, to: goods.opensBetween?.to ?? 0 }
  const leadMs = parseDuration(schedule?.leadTime ?? DEFAULT_LEAD_TIME) ?? 0
  const opensAt = schedule?.opensAt
  // A window selection opens no earlier than its start, so that is when to be ready by default.
  const readyBy = opensAt ?? (selector.kind === 'window' ? selector.from : undefined)
  return {
    ok: true,
    plan: {
      goods: selector,
      ...(source?.secretRef ? { sourceSecret: source.secretRef.name } : {}),
      ...(target?.secretRef ? { targetSecret: target.secretRef.name } : {}),
      keyPrefix: target?.keyPrefix ?? DEFAULT_KEY_PREFIX,
      shards: target?.shards ?? DEFAULT_STOCK_SHARDS,
      ...(opensAt === undefined ? {} : { opensAt }),
      ...(readyBy === undefined ? {} : { startAt: readyBy - leadMs }),
      mode: policy?.mode ?? 'IfAbsent',
      chunkSize: policy?.chunkSize ?? DEFAULT_CHUNK_SIZE,
      maxAttempts: policy?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    },
  }
}
