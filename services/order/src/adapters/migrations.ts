import { changeRows, createEventTables, indexInboxByHandledAt, type Migration } from '@timedeal/platform'

/** Versioned schema changes of `timedeal_order`, applied in order at start or by `main.ts migrate`. */
export const migrations: readonly Migration[] = [
  {
    name: '0001-create-orders',
    up: async ({ sequelize }) => {
      // One order per (buyer, Idempotency-Key): the unique key is what makes a retried placement
      // return the first order instead of a second one.
      await changeRows(
        sequelize,
        `
        CREATE TABLE orders (
          id               CHAR(36)        NOT NULL,
          buyer_id         VARCHAR(64)     NOT NULL,
          seller_id        VARCHAR(64)     NOT NULL,
          goods_id         VARCHAR(64)     NOT NULL,
          reservation_id   VARCHAR(64)     NOT NULL,
          idempotency_key  VARCHAR(128)    NOT NULL,
          quantity         INT UNSIGNED    NOT NULL,
          unit_price       BIGINT UNSIGNED NOT NULL,
          total_amount     BIGINT UNSIGNED NOT NULL,
          state            VARCHAR(20)     NOT NULL,
          version          INT UNSIGNED    NOT NULL,
          payment_id       VARCHAR(64)     NULL,
          failure_reason   VARCHAR(255)    NULL,
          placed_at        DATETIME(3)     NOT NULL,
          paid_at          DATETIME(3)     NULL,
          failed_at        DATETIME(3)     NULL,
          cancelled_at     DATETIME(3)     NULL,
          shipped_at       DATETIME(3)     NULL,
          delivered_at     DATETIME(3)     NULL,
          returned_at      DATETIME(3)     NULL,
          expired_at       DATETIME(3)     NULL,
          state_since      DATETIME(3)     NOT NULL,
          PRIMARY KEY (id),
          UNIQUE KEY orders_by_idempotency_key (buyer_id, idempotency_key),
          UNIQUE KEY orders_by_reservation (reservation_id),
          KEY orders_by_buyer (buyer_id, id),
          KEY orders_by_seller (seller_id, id),
          KEY orders_by_state (state, state_since)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  ...createEventTables({ outbox: '0002-create-outbox', inbox: '0003-create-inbox' }),
  {
    name: '0004-orders-pay-by',
    up: async ({ sequelize }) => {
      // The payment deadline comes from the reservation's own hold. Orders placed before this
      // kept the old fixed deadline: ten minutes after placement.
      await changeRows(sequelize, 'ALTER TABLE orders ADD COLUMN pay_by DATETIME(3) NULL AFTER placed_at')
      await changeRows(sequelize, 'UPDATE orders SET pay_by = placed_at + INTERVAL 10 MINUTE')
      await changeRows(
        sequelize,
        'ALTER TABLE orders MODIFY pay_by DATETIME(3) NOT NULL, ADD KEY orders_by_payment_deadline (state, pay_by)',
      )
    },
  },
  {
    name: '0005-create-placements',
    up: async ({ sequelize }) => {
      // One row per Idempotency-Key being placed (PLACING, held by `token` until `until`) or
      // refused (REFUSED, answered the same way until `until`). A placed key has its order
      // instead: the row goes in the order's transaction.
      await changeRows(
        sequelize,
        `
        CREATE TABLE placements (
          buyer_id         VARCHAR(64)     NOT NULL,
          idempotency_key  VARCHAR(128)    NOT NULL,
          goods_id         VARCHAR(64)     NOT NULL,
          quantity         INT UNSIGNED    NOT NULL,
          state            VARCHAR(10)     NOT NULL,
          token            CHAR(32)        NOT NULL,
          reservation_id   VARCHAR(64)     NOT NULL,
          refusal          TEXT            NULL,
          until            DATETIME(3)     NOT NULL,
          PRIMARY KEY (buyer_id, idempotency_key),
          KEY placements_by_until (until)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  // The relay forgets inbox ids past their retention; this index finds them.
  indexInboxByHandledAt('0006-index-inbox-by-handled-at'),
]
