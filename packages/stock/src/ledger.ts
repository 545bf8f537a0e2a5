import type { Redis } from '@timedeal/platform'
import type { SaleTerms } from './store.ts'

/**
 * Entries of the ledger stream. Every script that changes a count appends one, in the same atomic
 * step, with these fields: `goods`, `kind`, `delta` (signed units), `reservation`, `user`, `at` (ms).
 * A `terms` entry (delta 0) records sale terms a seller's edit gave live stock, with the fields
 * `version`, `startsAt`, `endsAt`, `purchaseLimit` (0 = none) and `initialStock` besides.
 */
export const LEDGER_KINDS = ['reserve', 'release', 'expire', 'adjust', 'terms'] as const

/** The consumer group of the write-behind that applies the ledger to MySQL. */
export const LEDGER_GROUP = 'ledger-writer'
export type LedgerKind = (typeof LEDGER_KINDS)[number]

export interface LedgerEntry {
  /** The shard whose stream holds the entry: entry ids of two shards' streams can be equal. */
  readonly shard: number
  /** The stream entry id, `<ms>-<seq>`: unique and increasing within its shard's stream. */
  readonly id: string
  readonly goodsId: string
  readonly kind: LedgerKind
  readonly delta: number
  readonly reservationId: string | null
  readonly userId: string | null
  readonly at: number
  /** The sale terms of a `terms` entry. */
  readonly terms?: SaleTerms
}

/** The two numbers of a stream entry id, for a compact, ordered primary key. */
export function splitEntryId(id: string): { ms: number; seq: number } {
  const match = /^(\d+)-(\d+)$/.exec(id)
  if (!match) throw new Error(`not a stream entry id: ${id}`)
  return { ms: Number(match[1]), seq: Number(match[2]) }
}

export function compareEntryIds(a: string, b: string): number {
  const left = splitEntryId(a)
  const right = splitEntryId(b)
  return left.ms - right.ms || left.seq - right.seq
}

/** Orders entries by shard, then by entry id: the order every writer applies and locks rows in. */
export function compareLedgerEntries(a: LedgerEntry, b: LedgerEntry): number {
  return a.shard - b.shard || compareEntryIds(a.id, b.id)
}

/**
 * Reads one raw stream entry (`[id, [field, value, ...]]`) of a shard's stream. Returns undefined
 * for an entry whose fields are gone (deleted while pending) or that this layout did not write.
 */
export function parseLedgerEntry(id: string, fields: readonly string[] | null, shard: number): LedgerEntry | undefined {
  if (!fields) return undefined
  const values = new Map<string, string>()
  for (let index = 0; index + 1 < fields.length; index += 2) {
    values.set(fields[index] as string, fields[index + 1] as string)
  }
  const goodsId = values.get('goods')
  const kind = values.get('kind') as LedgerKind | undefined
  const delta = Number(values.get('delta'))
  const at = Number(values.get('at'))
  if (!goodsId || !kind || !LEDGER_KINDS.includes(kind) || !Number.isInteger(delta) || !Number.isFinite(at)) {
    return undefined
  }
  const entry = {
    shard,
    id,
    goodsId,
    kind,
    delta,
    reservationId: values.get('reservation') || null,
    userId: values.get('user') || null,
    at,
  }
  if (kind !== 'terms') return entry
  const terms = termsOf(values)
  return terms ? { ...entry, terms } : undefined
}

function termsOf(values: ReadonlyMap<string, string>): SaleTerms | undefined {
  const number = (field: string) => Number(values.get(field))
  const terms = {
    version: number('version'),
    startsAt: number('startsAt'),
    endsAt: number('endsAt'),
    initialStock: number('initialStock'),
  }
  const limit = number('purchaseLimit')
  if (![...Object.values(terms), limit].every((value) => Number.isSafeInteger(value))) return undefined
  return { ...terms, purchaseLimit: limit > 0 ? limit : null }
}

/** The consumer groups of a stream as XINFO GROUPS reports them (none when the stream is absent). */
export async function ledgerGroups(redis: Redis, stream: string): Promise<Record<string, unknown>[]> {
  try {
    const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][]
    return groups.map((flat) => {
      const fields: Record<string, unknown> = {}
      for (let index = 0; index + 1 < flat.length; index += 2) fields[String(flat[index])] = flat[index + 1]
      return fields
    })
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return []
    throw error
  }
}

/**
 * Resolves once every entry the ledger streams hold right now (one stream, or every shard's, as
 * `keys.ledgers` lists them) has been applied to MySQL by the write-behind, so an on-hand count
 * read next includes all of them. Whoever loads stock from MySQL into Redis waits for this first:
 * a load that ran while entries of that goods were still on their way would count them twice once
 * they are applied.
 */
export async function waitUntilLedgerApplied(
  redis: Redis,
  streams: string | readonly string[],
  options: { readonly timeoutMs: number; readonly group?: string },
): Promise<void> {
  if (typeof streams !== 'string') {
    await Promise.all(streams.map((stream) => waitUntilLedgerApplied(redis, stream, options)))
    return
  }
  const stream = streams
  const group = options.group ?? LEDGER_GROUP
  const [last] = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][]
  if (!last) return
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    const info = (await ledgerGroups(redis, stream)).find((candidate) => candidate.name === group)
    if (info && compareEntryIds(String(info['last-delivered-id'] ?? '0-0'), last[0]) >= 0) {
      if (Number(info.pending ?? 0) === 0) return
      const [, smallest] = (await redis.xpending(stream, group)) as [number, string | null]
      if (!smallest || compareEntryIds(smallest, last[0]) > 0) return
    }
    if (Date.now() >= deadline) {
      throw new Error(`the ledger write-behind has not applied entry ${last[0]} within ${options.timeoutMs} ms`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
