import { changeRows, selectRow, selectRows } from '@timedeal/platform'
import type { Sequelize } from 'sequelize'

export interface WishlistEntry {
  readonly goodsId: string
  readonly addedAt: Date
}

/** The wishlist table: which goods a buyer keeps an eye on. */
export interface Wishlist {
  /** True when the goods was added, false when it was already there. */
  add(userId: string, goodsId: string, now: Date): Promise<boolean>
  remove(userId: string, goodsId: string): Promise<void>
  /** Newest first. */
  list(userId: string, limit: number): Promise<WishlistEntry[]>
  count(userId: string): Promise<number>
}

export function createWishlist(sequelize: Sequelize): Wishlist {
  return {
    async add(userId, goodsId, now) {
      const affected = await changeRows(
        sequelize,
        `INSERT INTO wishlist (user_id, goods_id, created_at) VALUES (:userId, :goodsId, :now)
         ON DUPLICATE KEY UPDATE user_id = user_id`,
        { userId, goodsId, now },
      )
      return affected === 1
    },

    async remove(userId, goodsId) {
      await changeRows(sequelize, 'DELETE FROM wishlist WHERE user_id = :userId AND goods_id = :goodsId', {
        userId,
        goodsId,
      })
    },

    async list(userId, limit) {
      const rows = await selectRows<{ goods_id: string; created_at: Date }>(
        sequelize,
        `SELECT goods_id, created_at FROM wishlist WHERE user_id = :userId
         ORDER BY created_at DESC, goods_id LIMIT :limit`,
        { userId, limit },
      )
      return rows.map((row) => ({ goodsId: row.goods_id, addedAt: new Date(row.created_at) }))
    },

    async count(userId) {
      const row = await selectRow<{ n: number }>(
        sequelize,
        'SELECT COUNT(*) AS n FROM wishlist WHERE user_id = :userId',
        {
          userId,
        },
      )
      return Number(row?.n ?? 0)
    },
  }
}
