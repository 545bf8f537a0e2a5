import { changeRows, selectRow, selectRows } from '@timedeal/platform'
import { type Sequelize, UniqueConstraintError } from 'sequelize'

/** A conversation between a buyer and the seller of one goods item. */
export interface Room {
  readonly id: string
  readonly goodsId: string
  readonly buyerId: string
  readonly sellerId: string
  readonly createdAt: Date
}

interface RoomRow {
  id: string
  goods_id: string
  buyer_id: string
  seller_id: string
  created_at: Date
}

/** How many rooms one list answers at most. */
export const ROOM_LIST_LIMIT = 200

/** The `rooms` table. A room never changes once opened, so nothing here takes a lock. */
export class RoomStore {
  readonly #db: Sequelize

  constructor(db: Sequelize) {
    this.#db = db
  }

  /**
   * Opens `room`, or answers the room the buyer already has about that goods (then `created` is
   * false). Two requests racing both land on the unique (goods, buyer) key: one inserts, the
   * other reads what it inserted.
   */
  async open(room: Room): Promise<{ room: Room; created: boolean }> {
    const existing = await this.findByGoodsAndBuyer(room.goodsId, room.buyerId)
    if (existing) return { room: existing, created: false }
    try {
      await changeRows(
        this.#db,
        `INSERT INTO rooms (id, goods_id, buyer_id, seller_id, created_at)
         VALUES (:id, :goodsId, :buyerId, :sellerId, :createdAt)`,
        { ...room },
      )
      return { room, created: true }
    } catch (error) {
      if (!(error instanceof UniqueConstraintError)) throw error
      const winner = await this.findByGoodsAndBuyer(room.goodsId, room.buyerId)
      if (!winner) throw error
      return { room: winner, created: false }
    }
  }

  async find(roomId: string): Promise<Room | undefined> {
    const row = await selectRow<RoomRow>(this.#db, 'SELECT * FROM rooms WHERE id = :roomId', { roomId })
    return row ? toRoom(row) : undefined
  }

  async findByGoodsAndBuyer(goodsId: string, buyerId: string): Promise<Room | undefined> {
    const row = await selectRow<RoomRow>(
      this.#db,
      'SELECT * FROM rooms WHERE goods_id = :goodsId AND buyer_id = :buyerId',
      { goodsId, buyerId },
    )
    return row ? toRoom(row) : undefined
  }

  /** Whether `userId` is the room's buyer or seller; false for a room that does not exist. */
  async isMember(roomId: string, userId: string): Promise<boolean> {
    const row = await selectRow<{ id: string }>(
      this.#db,
      'SELECT id FROM rooms WHERE id = :roomId AND (buyer_id = :userId OR seller_id = :userId)',
      { roomId, userId },
    )
    return row !== undefined
  }

  /** The rooms `userId` is in, as buyer or seller, newest first. */
  async listFor(userId: string, limit: number = ROOM_LIST_LIMIT): Promise<Room[]> {
    // Two index ranges joined, rather than one OR the optimizer may answer with a full scan.
    const rows = await selectRows<RoomRow>(
      this.#db,
      `(SELECT * FROM rooms WHERE buyer_id = :userId ORDER BY id DESC LIMIT :limit)
       UNION ALL
       (SELECT * FROM rooms WHERE seller_id = :userId AND buyer_id <> :userId ORDER BY id DESC LIMIT :limit)
       ORDER BY id DESC LIMIT :limit`,
      { userId, limit },
    )
    return rows.map(toRoom)
  }
}

/** The room's other member, seen from `userId`. */
export const otherMember = (room: Room, userId: string): string =>
  room.buyerId === userId ? room.sellerId : room.buyerId

function toRoom(row: RoomRow): Room {
  return {
    id: row.id,
    goodsId: row.goods_id,
    buyerId: row.buyer_id,
    sellerId: row.seller_id,
    createdAt: new Date(row.created_at),
  }
}
