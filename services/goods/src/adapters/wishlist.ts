import { sqlTime } from '@timedeal/platform'
import { QueryTypes, type Sequelize } from 'sequelize'

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
      const [, affected] = await sequelize.query(
        'INSERT INTO wishlist (user_id, goods_id, created_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE user_id = user_id',
        { replacements: [userId, goodsId, sqlTime(now)], type: QueryTypes.INSERT },
      )
      return Number(affected) === 1
    },

    async remove(userId, goodsId) {
      await sequelize.query('DELETE FROM wishlist WHERE user_id = ? AND goods_id = ?', {
        replacements: [userId, goodsId],
      })
    },

    async list(userId, limit) {
      const rows = await sequelize.query<{ goods_id: string; created_at: Date }>(
        'SELECT goods_id, created_at FROM wishlist WHERE user_id = ? ORDER BY created_at DESC, goods_id LIMIT ?',
        { replacements: [userId, limit], type: QueryTypes.SELECT },
      )
      return rows.map((row) => ({ goodsId: row.goods_id, addedAt: new Date(row.created_at) }))
    },

    async count(userId) {
      const [row] = await sequelize.query<{ n: number }>('SELECT COUNT(*) AS n FROM wishlist WHERE user_id = ?', {
        replacements: [userId],
        type: QueryTypes.SELECT,
      })
      return Number(row?.n ?? 0)
    },
  }
}
