import { changeRows, type Migration } from '@timedeal/platform'

/** Versioned schema changes of `timedeal_goods`, applied in order at start or by `main.ts migrate`. */
export const migrations: readonly Migration[] = [
  {
    name: '0001-create-goods',
    up: async ({ sequelize }) => {
      // stock_on_hand is the durable count: initial stock plus every applied ledger entry. After the
      // write-behind drains it equals the available count in Redis.
      await changeRows(
        sequelize,
        `
        CREATE TABLE goods (
          id              VARCHAR(64)     NOT NULL,
          seller_id       VARCHAR(64)     NOT NULL,
          name            VARCHAR(200)    NOT NULL,
          description     TEXT            NOT NULL,
          price           BIGINT UNSIGNED NOT NULL,
          initial_stock   INT UNSIGNED    NOT NULL,
          stock_on_hand   INT             NOT NULL,
          sale_starts_at  DATETIME(3)     NOT NULL,
          sale_ends_at    DATETIME(3)     NOT NULL,
          purchase_limit  INT UNSIGNED    NULL,
          version         INT UNSIGNED    NOT NULL DEFAULT 1,
          created_at      DATETIME(3)     NOT NULL,
          updated_at      DATETIME(3)     NOT NULL,
          PRIMARY KEY (id),
          KEY goods_by_seller (seller_id, id),
          KEY goods_by_start (sale_starts_at),
          KEY goods_by_end (sale_ends_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  {
    name: '0002-create-wishlist',
    up: async ({ sequelize }) => {
      await changeRows(
        sequelize,
        `
        CREATE TABLE wishlist (
          user_id     VARCHAR(64) NOT NULL,
          goods_id    VARCHAR(64) NOT NULL,
          created_at  DATETIME(3) NOT NULL,
          PRIMARY KEY (user_id, goods_id),
          KEY wishlist_by_goods (goods_id),
          CONSTRAINT wishlist_goods FOREIGN KEY (goods_id) REFERENCES goods (id) ON DELETE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  {
    name: '0003-create-stock-ledger',
    up: async ({ sequelize }) => {
      // Keyed by the Redis stream entry id (<ms>-<seq>), so applying an entry twice is impossible;
      // batch_id tells a batch which rows it inserted itself (and so which deltas to apply).
      await changeRows(
        sequelize,
        `
        CREATE TABLE stock_ledger (
          entry_ms        BIGINT UNSIGNED NOT NULL,
          entry_seq       BIGINT UNSIGNED NOT NULL,
          goods_id        VARCHAR(64)     NOT NULL,
          kind            VARCHAR(16)     NOT NULL,
          delta           INT             NOT NULL,
          reservation_id  VARCHAR(64)     NULL,
          user_id         VARCHAR(64)     NULL,
          occurred_at     DATETIME(3)     NOT NULL,
          batch_id        CHAR(36)        NOT NULL,
          applied_at      DATETIME(3)     NOT NULL,
          PRIMARY KEY (entry_ms, entry_seq),
          KEY ledger_by_goods (goods_id, entry_ms),
          KEY ledger_by_batch (batch_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  {
    name: '0004-stock-ledger-shard',
    up: async ({ sequelize }) => {
      // Live stock is sharded, one ledger stream per shard, and two streams can hand out the same
      // entry id: the key becomes (shard, entry id). Rows from before came from the one stream of
      // the unsharded layout and stay as shard 0; that stream was drained before the upgrade and
      // shard 0's new stream starts later in time, so their ids cannot meet.
      await changeRows(
        sequelize,
        `
        ALTER TABLE stock_ledger
          ADD COLUMN shard SMALLINT UNSIGNED NOT NULL DEFAULT 0 FIRST,
          DROP PRIMARY KEY,
          ADD PRIMARY KEY (shard, entry_ms, entry_seq)`,
      )
    },
  },
]
