import { changeRows, type Migration } from '@timedeal/platform'

/** Versioned schema changes of `timedeal_chat`, applied in order at start or by `main.ts migrate`. */
export const migrations: readonly Migration[] = [
  {
    name: '0001-create-rooms',
    up: async ({ sequelize }) => {
      // One room per (goods, buyer): the unique key is what makes opening a room twice answer
      // the first one, even when two requests race.
      await changeRows(
        sequelize,
        `
        CREATE TABLE rooms (
          id          CHAR(36)     NOT NULL,
          goods_id    VARCHAR(64)  NOT NULL,
          buyer_id    VARCHAR(64)  NOT NULL,
          seller_id   VARCHAR(64)  NOT NULL,
          created_at  DATETIME(3)  NOT NULL,
          PRIMARY KEY (id),
          UNIQUE KEY rooms_by_goods_and_buyer (goods_id, buyer_id),
          KEY rooms_by_buyer (buyer_id, id),
          KEY rooms_by_seller (seller_id, id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  {
    name: '0002-create-notifications',
    up: async ({ sequelize }) => {
      // One notification per (user, message): a message consumed twice notifies once.
      await changeRows(
        sequelize,
        `
        CREATE TABLE notifications (
          id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
          user_id     VARCHAR(64)     NOT NULL,
          room_id     CHAR(36)        NOT NULL,
          message_id  CHAR(36)        NOT NULL,
          created_at  DATETIME(3)     NOT NULL,
          read_at     DATETIME(3)     NULL,
          PRIMARY KEY (id),
          UNIQUE KEY notifications_by_message (user_id, message_id),
          KEY notifications_by_user (user_id, id),
          KEY notifications_unread (user_id, read_at, room_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
]
