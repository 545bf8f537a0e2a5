import { changeRows, type SqlReplacements, selectRows } from '@timedeal/platform'
import type { Sequelize, Transaction } from 'sequelize'
import type { Goods } from '../domain/goods.ts'

interface GoodsRow {
  id: string
  seller_id: string
  name: string
  description: string
  price: string | number
  initial_stock: number
  stock_on_hand: number
  sale_starts_at: Date
  sale_ends_at: Date
  purchase_limit: number | null
  version: number
  created_at: Date
  updated_at: Date
}

const COLUMNS = `id, seller_id, name, description, price, initial_stock, stock_on_hand, sale_starts_at,
  sale_ends_at, purchase_limit, version, created_at, updated_at`

function toGoods(row: GoodsRow): Goods {
  return {
    id: row.id,
    sellerId: row.seller_id,
    name: row.name,
    description: row.description,
    price: Number(row.price),
    initialStock: Number(row.initial_stock),
    stockOnHand: Number(row.stock_on_hand),
    saleStartsAt: new Date(row.sale_starts_at),
    saleEndsAt: new Date(row.sale_ends_at),
    purchaseLimit: row.purchase_limit === null ? null : Number(row.purchase_limit),
    version: Number(row.version),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  }
}

/** Where a sale window stands relative to an instant; the live stock splits `IN_WINDOW` further. */
export type WindowPosition = 'UPCOMING' | 'IN_WINDOW' | 'CLOSED'

export interface PageQuery {
  readonly sellerId?: string
  readonly window?: WindowPosition
  readonly now: Date
  /** Only ids before this one (pages run newest first). */
  readonly before?: string
  readonly limit: number
}

/** The goods table: the catalog's durable record. */
export interface Catalog {
  insert(goods: Goods): Promise<void>
  /** Inserts the goods, or refreshes its descriptive fields and window if it exists (seed data). */
  upsert(goods: Goods): Promise<Goods>
  find(id: string): Promise<Goods | undefined>
  findMany(ids: readonly string[]): Promise<Goods[]>
  page(query: PageQuery): Promise<Goods[]>
  /**
   * Edits one goods under its row lock, so edits of one goods happen one at a time. `change` sees
   * the current row and returns the new one (or throws to roll back). The new row is written, and
   * only then `beforeCommit` carries it elsewhere (to live stock), still under the lock: a row
   * MySQL refuses never reaches Redis, and a refusal from Redis (a throw) rolls the row back.
   * If the commit itself fails after that, the terms live stock took reach MySQL through the
   * ledger (`terms` entries), so the two still end up equal.
   */
  edit(
    id: string,
    change: (current: Goods) => Promise<Goods>,
    beforeCommit?: (next: Goods) => Promise<void>,
  ): Promise<Goods | undefined>
}

export function createCatalog(sequelize: Sequelize): Catalog {
  const select = async (sql: string, replacements: SqlReplacements, transaction?: Transaction) =>
    (await selectRows<GoodsRow>(sequelize, sql, replacements, transaction)).map(toGoods)
  // The columns' named replacements are the goods' own field names.
  const values = (goods: Goods): SqlReplacements => ({ ...goods })
  const insertGoods = `INSERT INTO goods (${COLUMNS}) VALUES (:id, :sellerId, :name, :description, :price,
    :initialStock, :stockOnHand, :saleStartsAt, :saleEndsAt, :purchaseLimit, :version, :createdAt, :updatedAt)`

  return {
    async insert(goods) {
      await changeRows(sequelize, insertGoods, values(goods))
    },

    async upsert(goods) {
      // Stock is left alone on a second run: live stock may have moved since.
      await changeRows(
        sequelize,
        `${insertGoods}
         ON DUPLICATE KEY UPDATE name = VALUES(name), description = VALUES(description), price = VALUES(price),
           sale_starts_at = VALUES(sale_starts_at), sale_ends_at = VALUES(sale_ends_at),
           purchase_limit = VALUES(purchase_limit), version = version + 1, updated_at = VALUES(updated_at)`,
        values(goods),
      )
      const [stored] = await select(`SELECT ${COLUMNS} FROM goods WHERE id = :id`, { id: goods.id })
      if (!stored) throw new Error(`goods ${goods.id} vanished right after it was written`)
      return stored
    },

    async find(id) {
      const [goods] = await select(`SELECT ${COLUMNS} FROM goods WHERE id = :id`, { id })
      return goods
    },

    async findMany(ids) {
      if (ids.length === 0) return []
      return select(`SELECT ${COLUMNS} FROM goods WHERE id IN (:ids)`, { ids })
    },

    async page(query) {
      const where: string[] = []
      if (query.sellerId !== undefined) where.push('seller_id = :sellerId')
      if (query.window === 'UPCOMING') where.push('sale_starts_at > :now')
      else if (query.window === 'CLOSED') where.push('sale_ends_at <= :now')
      else if (query.window === 'IN_WINDOW') where.push('sale_starts_at <= :now AND sale_ends_at > :now')
      if (query.before !== undefined) where.push('id < :before')
      return select(
        `SELECT ${COLUMNS} FROM goods ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY id DESC LIMIT :limit`,
        { sellerId: query.sellerId, now: query.now, before: query.before, limit: query.limit },
      )
    },

    async edit(id, change, beforeCommit) {
      return sequelize.transaction(async (transaction) => {
        const [current] = await select(`SELECT ${COLUMNS} FROM goods WHERE id = :id FOR UPDATE`, { id }, transaction)
        if (!current) return undefined
        const next = await change(current)
        // stock_on_hand is not written here: only the ledger moves it.
        await changeRows(
          sequelize,
          `UPDATE goods SET name = :name, description = :description, price = :price, initial_stock = :initialStock,
             sale_starts_at = :saleStartsAt, sale_ends_at = :saleEndsAt, purchase_limit = :purchaseLimit,
             version = :version, updated_at = :updatedAt WHERE id = :id`,
          { ...values(next), id },
          transaction,
        )
        await beforeCommit?.(next)
        return next
      })
    },
  }
}
