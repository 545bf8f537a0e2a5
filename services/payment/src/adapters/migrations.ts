import { changeRows, createEventTables, indexInboxByHandledAt, type Migration } from '@timedeal/platform'

/** Versioned schema changes of `timedeal_payment`, applied in order at start or by `main.ts migrate`. */
export const migrations: readonly Migration[] = [
  {
    name: '0001-create-payments',
    up: async ({ sequelize }) => {
      // One payment per order: the unique key is what keeps a redelivered OrderPlaced from
      // charging twice, and a cancelled order's void from being charged later.
      await changeRows(
        sequelize,
        `
        CREATE TABLE payments (
          id                  CHAR(36)        NOT NULL,
          order_id            VARCHAR(64)     NOT NULL,
          buyer_id            VARCHAR(64)     NOT NULL,
          amount              BIGINT UNSIGNED NOT NULL,
          status              VARCHAR(16)     NOT NULL,
          provider            VARCHAR(32)     NOT NULL,
          provider_reference  VARCHAR(128)    NULL,
          failure_code        VARCHAR(64)     NULL,
          created_at          DATETIME(3)     NOT NULL,
          completed_at        DATETIME(3)     NULL,
          failed_at           DATETIME(3)     NULL,
          refunded_at         DATETIME(3)     NULL,
          refund_reference    VARCHAR(128)    NULL,
          PRIMARY KEY (id),
          UNIQUE KEY payments_by_order (order_id),
          KEY payments_by_buyer (buyer_id, created_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  ...createEventTables({ outbox: '0002-create-outbox', inbox: '0003-create-inbox' }),
  {
    name: '0004-create-sandbox-ledger',
    up: async ({ sequelize }) => {
      // The sandbox provider's own books, standing in for a real provider's: written only by
      // SandboxProvider, outside payment-service's transactions, never joined with `payments`.
      // They live here so a lookup after a restart, or from another replica, finds what was
      // taken; a real provider leaves them empty.
      await changeRows(
        sequelize,
        `
        CREATE TABLE sandbox_charges (
          idempotency_key  VARCHAR(191)    NOT NULL,
          order_id         VARCHAR(64)     NULL,
          amount           BIGINT UNSIGNED NOT NULL,
          outcome          VARCHAR(16)     NOT NULL,
          reference        VARCHAR(128)    NULL,
          decline_code     VARCHAR(64)     NULL,
          requested_at     DATETIME(3)     NOT NULL,
          settles_at       DATETIME(3)     NOT NULL,
          PRIMARY KEY (idempotency_key)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
      await changeRows(
        sequelize,
        `
        CREATE TABLE sandbox_refunds (
          idempotency_key  VARCHAR(191)    NOT NULL,
          charge_reference VARCHAR(128)    NOT NULL,
          amount           BIGINT UNSIGNED NOT NULL,
          reference        VARCHAR(128)    NOT NULL,
          refunded_at      DATETIME(3)     NOT NULL,
          PRIMARY KEY (idempotency_key),
          KEY sandbox_refunds_by_charge (charge_reference)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      )
    },
  },
  // The relay forgets inbox ids past their retention; this index finds them.
  indexInboxByHandledAt('0005-index-inbox-by-handled-at'),
]
