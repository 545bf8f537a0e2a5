/**
 * Reads goods' stock from goods-service's catalog (`goods` table of `timedeal_goods`) in one
 * consistent snapshot: every page comes from the same InnoDB read view, so a warm-up of many
 * goods never mixes rows from before and after a concurrent change.
 */
import type { StockSource } from '@timedeal/stock'
import mysql, { type RowDataPacket } from 'mysql2/promise'
import type { GoodsSelector } from './spec.ts'

export interface MysqlSource {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
}

export interface SnapshotSummary {
  /** Goods read. */
  readonly total: number
  /** Requested ids the catalog does not have. */
  readonly missing: number
  /** The earliest sale opening among the goods read (epoch ms). */
  readonly earliestOpening?: number
}

/** A failure of the source (connection, credentials, schema); the warm-up reports SourceError. */
export class SourceError extends Error {
  override readonly name = 'SourceError'
}

interface GoodsStockRow extends RowDataPacket {
  id: string
  stock_on_hand: number
  initial_stock: number
  sale_starts_at: Date
  sale_ends_at: Date
  purchase_limit: number | null
  version: number
}

const COLUMNS = 'id, stock_on_hand, initial_stock, sale_starts_at, sale_ends_at, purchase_limit, version'

/** The same mapping goods-service's cold start uses (`stockSourceOf`). */
const toStockSource = (row: GoodsStockRow): StockSource => ({
  goodsId: row.id,
  onHand: Number(row.stock_on_hand),
  startsAt: row.sale_starts_at.getTime(),
  endsAt: row.sale_ends_at.getTime(),
  purchaseLimit: row.purchase_limit === null ? null : Number(row.purchase_limit),
  initialStock: Number(row.initial_stock),
  version: Number(row.version),
})

/**
 * Reads the selected goods page by page inside one `START TRANSACTION WITH CONSISTENT SNAPSHOT`
 * and hands each page to `onPage`. The next page is read while `onPage` works on the current
 * one. Errors of MySQL become {@link SourceError}; errors of `onPage` pass through unchanged.
 */
export async function readStockSnapshot(
  source: MysqlSource,
  selector: GoodsSelector,
  pageSize: number,
  onPage: (rows: readonly StockSource[]) => Promise<void>,
): Promise<SnapshotSummary> {
  const connection = await asSourceError(
    mysql.createConnection({
      host: source.host,
      port: source.port,
      user: source.user,
      password: source.password,
      database: source.database,
      // goods-service writes its DATETIME columns in UTC.
      timezone: 'Z',
      connectTimeout: 5_000,
      supportBigNumbers: true,
    }),
  )
  const pages =
    selector.kind === 'ids'
      ? pagesOfIds(connection, selector.ids, pageSize)
      : pagesOfWindow(connection, selector, pageSize)
  let total = 0
  let earliestOpening: number | undefined
  try {
    await asSourceError(connection.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ'))
    await asSourceError(connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY'))
    let next = pages.next()
    for (;;) {
      const page = await asSourceError(next)
      if (page.done) break
      const rows = page.value.map(toStockSource)
      next = pages.next()
      // An abandoned read must not surface later as an unhandled rejection.
      next.catch(() => undefined)
      total += rows.length
      for (const row of rows) earliestOpening = Math.min(earliestOpening ?? row.startsAt, row.startsAt)
      if (rows.length > 0) await onPage(rows)
    }
    await asSourceError(connection.query('COMMIT'))
  } finally {
    await connection.end().catch(() => connection.destroy())
  }
  const missing = selector.kind === 'ids' ? selector.ids.length - total : 0
  return { total, missing, ...(earliestOpening === undefined ? {} : { earliestOpening }) }
}

async function* pagesOfIds(connection: mysql.Connection, ids: readonly string[], pageSize: number) {
  for (let start = 0; start < ids.length; start += pageSize) {
    const [rows] = await connection.query<GoodsStockRow[]>(`SELECT ${COLUMNS} FROM goods WHERE id IN (?)`, [
      ids.slice(start, start + pageSize),
    ])
    yield rows
  }
}

/** Keyset pages in (sale_starts_at, id) order, which the `goods_by_start` index serves. */
async function* pagesOfWindow(connection: mysql.Connection, window: { from: number; to: number }, pageSize: number) {
  const to = new Date(window.to)
  let after: { startsAt: Date; id: string } | undefined
  for (;;) {
    const [rows] = after
      ? await connection.query<GoodsStockRow[]>(
          `SELECT ${COLUMNS} FROM goods
           WHERE sale_starts_at < ? AND (sale_starts_at > ? OR (sale_starts_at = ? AND id > ?))
           ORDER BY sale_starts_at, id LIMIT ?`,
          [to, after.startsAt, after.startsAt, after.id, pageSize],
        )
      : await connection.query<GoodsStockRow[]>(
          `SELECT ${COLUMNS} FROM goods WHERE sale_starts_at >= ? AND sale_starts_at < ?
           ORDER BY sale_starts_at, id LIMIT ?`,
          [new Date(window.from), to, pageSize],
        )
    yield rows
    const last = rows.at(-1)
    if (!last || rows.length < pageSize) return
    after = { startsAt: last.sale_starts_at, id: last.id }
  }
}

async function asSourceError<T>(work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (error) {
    if (error instanceof SourceError) throw error
    throw new SourceError(`MySQL: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
}
