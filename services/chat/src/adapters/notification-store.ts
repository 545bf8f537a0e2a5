import { changeRows, dateOrNull, selectRow, selectRows } from '@timedeal/platform'
import type { Sequelize } from 'sequelize'

/** A message a member was not present to see. */
export interface Notification {
  /** Increasing: later notifications have larger ids. */
  readonly id: string
  readonly userId: string
  readonly roomId: string
  readonly messageId: string
  readonly at: Date
  readonly readAt: Date | null
}

export interface NewNotification {
  readonly userId: string
  readonly roomId: string
  readonly messageId: string
  readonly at: Date
}

interface NotificationRow {
  id: number | string
  user_id: string
  room_id: string
  message_id: string
  created_at: Date
  read_at: Date | null
}

export interface NotificationPage {
  readonly notifications: Notification[]
  /** The id to continue before, or null on the last page. */
  readonly lastId: string | null
}

/** What to mark read: everything of the user's, one room of theirs, or some notifications by id. */
export type ReadSelection = { readonly all: true } | { readonly roomId: string } | { readonly ids: readonly string[] }

/** The `notifications` table. */
export class NotificationStore {
  readonly #db: Sequelize

  constructor(db: Sequelize) {
    this.#db = db
  }

  /** Records the notification once per (user, message): adding it again answers the first one. */
  async add(notification: NewNotification): Promise<Notification> {
    await changeRows(
      this.#db,
      `INSERT IGNORE INTO notifications (user_id, room_id, message_id, created_at)
       VALUES (:userId, :roomId, :messageId, :at)`,
      { ...notification },
    )
    const row = await selectRow<NotificationRow>(
      this.#db,
      'SELECT * FROM notifications WHERE user_id = :userId AND message_id = :messageId',
      { ...notification },
    )
    if (!row) throw new Error(`notification of ${notification.messageId} for ${notification.userId} vanished`)
    return toNotification(row)
  }

  /**
   * Records many at once (one INSERT, one SELECT), each once per (user, message); answers them
   * as stored, including those recorded before.
   */
  async addMany(notifications: readonly NewNotification[]): Promise<Notification[]> {
    if (notifications.length === 0) return []
    const replacements: Record<string, unknown> = {}
    notifications.forEach(({ userId, roomId, messageId, at }, index) => {
      Object.assign(replacements, { [`u${index}`]: userId, [`r${index}`]: roomId, [`m${index}`]: messageId })
      replacements[`a${index}`] = at
    })
    const indexes = notifications.map((_, index) => index)
    await changeRows(
      this.#db,
      `INSERT IGNORE INTO notifications (user_id, room_id, message_id, created_at)
       VALUES ${indexes.map((index) => `(:u${index}, :r${index}, :m${index}, :a${index})`).join(', ')}`,
      replacements,
    )
    const rows = await selectRows<NotificationRow>(
      this.#db,
      `SELECT * FROM notifications
       WHERE (user_id, message_id) IN (${indexes.map((index) => `(:u${index}, :m${index})`).join(', ')})
       ORDER BY id`,
      replacements,
    )
    return rows.map(toNotification)
  }

  /** The user's unread notifications, across rooms. */
  async unreadCount(userId: string): Promise<number> {
    const row = await selectRow<{ n: number | string }>(
      this.#db,
      'SELECT COUNT(*) AS n FROM notifications WHERE user_id = :userId AND read_at IS NULL',
      { userId },
    )
    return Number(row?.n ?? 0)
  }

  /** The user's unread notifications per room, for the rooms asked; a room without any is absent. */
  async unreadByRoom(userId: string, roomIds: readonly string[]): Promise<Map<string, number>> {
    if (roomIds.length === 0) return new Map()
    const rows = await selectRows<{ room_id: string; n: number | string }>(
      this.#db,
      `SELECT room_id, COUNT(*) AS n FROM notifications
       WHERE user_id = :userId AND read_at IS NULL AND room_id IN (:roomIds)
       GROUP BY room_id`,
      { userId, roomIds: [...roomIds] },
    )
    return new Map(rows.map((row) => [row.room_id, Number(row.n)]))
  }

  /** The user's notifications, newest first, before the notification `beforeId` when given. */
  async list(
    userId: string,
    page: { limit: number; beforeId?: string | undefined; unreadOnly?: boolean },
  ): Promise<NotificationPage> {
    const rows = await selectRows<NotificationRow>(
      this.#db,
      `SELECT * FROM notifications WHERE user_id = :userId
       ${page.beforeId ? 'AND id < :beforeId' : ''} ${page.unreadOnly ? 'AND read_at IS NULL' : ''}
       ORDER BY id DESC LIMIT :limit`,
      { userId, beforeId: page.beforeId ?? null, limit: page.limit + 1 },
    )
    const notifications = rows.slice(0, page.limit).map(toNotification)
    const more = rows.length > page.limit
    return { notifications, lastId: more ? (notifications.at(-1)?.id ?? null) : null }
  }

  /** Marks the user's selected unread notifications read; answers how many changed. */
  async markRead(userId: string, selection: ReadSelection, at: Date = new Date()): Promise<number> {
    if ('ids' in selection && selection.ids.length === 0) return 0
    const where = 'ids' in selection ? 'AND id IN (:ids)' : 'roomId' in selection ? 'AND room_id = :roomId' : ''
    return changeRows(
      this.#db,
      `UPDATE notifications SET read_at = :at WHERE user_id = :userId AND read_at IS NULL ${where}`,
      {
        userId,
        at,
        ids: 'ids' in selection ? [...selection.ids] : null,
        roomId: 'roomId' in selection ? selection.roomId : null,
      },
    )
  }

  /** Entering a room reads what it held for the user. */
  markRoomRead(roomId: string, userId: string, at: Date = new Date()): Promise<number> {
    return this.markRead(userId, { roomId }, at)
  }
}

function toNotification(row: NotificationRow): Notification {
  return {
    id: String(row.id),
    userId: row.user_id,
    roomId: row.room_id,
    messageId: row.message_id,
    at: new Date(row.created_at),
    readAt: dateOrNull(row.read_at),
  }
}
