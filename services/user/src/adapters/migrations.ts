import { changeRows, type Migration } from '@timedeal/platform'
import type { Sequelize } from 'sequelize'

/** Every table of the service: InnoDB, and text compared byte for byte. */
const createTable = (sequelize: Sequelize, name: string, definition: string) =>
  changeRows(
    sequelize,
    `CREATE TABLE ${name} (${definition}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  )

/** Versioned schema changes of `timedeal_user`, applied in order at start or by `main.ts migrate`. */
export const migrations: readonly Migration[] = [
  {
    name: '0001-create-users',
    up: async ({ sequelize }) => {
      // The e-mail address is stored lower-cased, so its unique key is the "one account per
      // address" rule. Phone and address are sealed with AES-256-GCM as `keyId:iv:ciphertext:tag`.
      await createTable(
        sequelize,
        'users',
        `
          id                   CHAR(36)     NOT NULL,
          email                VARCHAR(254) NOT NULL,
          name                 VARCHAR(100) NOT NULL,
          role                 VARCHAR(16)  NOT NULL,
          password_hash        VARCHAR(255) NOT NULL,
          email_verified_at    DATETIME(3)  NULL,
          phone_encrypted      TEXT         NULL,
          address_encrypted    TEXT         NULL,
          password_changed_at  DATETIME(3)  NOT NULL,
          created_at           DATETIME(3)  NOT NULL,
          updated_at           DATETIME(3)  NOT NULL,
          PRIMARY KEY (id),
          UNIQUE KEY email (email)
        `,
      )
    },
  },
  {
    name: '0002-create-email-verifications',
    up: async ({ sequelize }) => {
      // One pending code per account: a new sign-up replaces it.
      await createTable(
        sequelize,
        'email_verifications',
        `
          user_id      CHAR(36)     NOT NULL,
          code_digest  VARCHAR(128) NOT NULL,
          attempts     INT          NOT NULL DEFAULT 0,
          expires_at   DATETIME(3)  NOT NULL,
          created_at   DATETIME(3)  NOT NULL,
          PRIMARY KEY (user_id),
          FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
        `,
      )
    },
  },
  {
    name: '0003-create-sessions',
    up: async ({ sequelize }) => {
      await createTable(
        sequelize,
        'session_families',
        `
          id              CHAR(36)    NOT NULL,
          user_id         CHAR(36)    NOT NULL,
          created_at      DATETIME(3) NOT NULL,
          revoked_at      DATETIME(3) NULL,
          revoked_reason  VARCHAR(32) NULL,
          PRIMARY KEY (id),
          KEY session_families_user_id (user_id),
          FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
        `,
      )
      // The SHA-256 of each opaque token: a leaked table holds nothing a client could present.
      await createTable(
        sequelize,
        'refresh_tokens',
        `
          token_hash  CHAR(64)    NOT NULL,
          family_id   CHAR(36)    NOT NULL,
          created_at  DATETIME(3) NOT NULL,
          expires_at  DATETIME(3) NOT NULL,
          used_at     DATETIME(3) NULL,
          PRIMARY KEY (token_hash),
          KEY refresh_tokens_family_id (family_id),
          KEY refresh_tokens_expires_at (expires_at),
          FOREIGN KEY (family_id) REFERENCES session_families (id) ON DELETE CASCADE
        `,
      )
    },
  },
  {
    name: '0004-create-signing-keys',
    up: async ({ sequelize }) => {
      // The private key is sealed with the data-encryption key, like personal data.
      await createTable(
        sequelize,
        'signing_keys',
        `
          kid                    VARCHAR(64) NOT NULL,
          algorithm              VARCHAR(16) NOT NULL,
          public_jwk             TEXT        NOT NULL,
          private_key_encrypted  TEXT        NOT NULL,
          created_at             DATETIME(3) NOT NULL,
          activates_at           DATETIME(3) NOT NULL,
          retires_at             DATETIME(3) NULL,
          PRIMARY KEY (kid)
        `,
      )
    },
  },
  {
    name: '0005-create-dev-mail',
    up: async ({ sequelize }) => {
      // Written only by the development mail sink (MAILER=sink).
      await createTable(
        sequelize,
        'dev_mail',
        `
          id          BIGINT       NOT NULL AUTO_INCREMENT,
          to_address  VARCHAR(254) NOT NULL,
          subject     VARCHAR(255) NOT NULL,
          body        TEXT         NOT NULL,
          created_at  DATETIME(3)  NOT NULL,
          PRIMARY KEY (id),
          KEY dev_mail_to_address_id (to_address, id)
        `,
      )
    },
  },
  {
    name: '0006-sign-ups-apart-from-accounts',
    up: async ({ sequelize }) => {
      // Sign-ups wait here until their address is verified; each keeps the password and role
      // it was made with, so a second sign-up of an address never changes the first one.
      await createTable(
        sequelize,
        'sign_ups',
        `
          id             CHAR(36)     NOT NULL,
          email          VARCHAR(254) NOT NULL,
          name           VARCHAR(100) NOT NULL,
          role           VARCHAR(16)  NOT NULL,
          password_hash  VARCHAR(255) NOT NULL,
          created_at     DATETIME(3)  NOT NULL,
          PRIMARY KEY (id),
          KEY sign_ups_email_created_at (email, created_at),
          KEY sign_ups_created_at (created_at)
        `,
      )
      // Unverified accounts become sign-ups; `users` holds verified accounts only from now on.
      await changeRows(
        sequelize,
        `INSERT INTO sign_ups (id, email, name, role, password_hash, created_at)
         SELECT id, email, name, role, password_hash, created_at FROM users WHERE email_verified_at IS NULL`,
      )
      // The code proves the mailbox, so it belongs to the address, not to one sign-up. Codes
      // pending now are dropped (they last 15 minutes); signing up again mails a new one.
      await changeRows(sequelize, 'DROP TABLE email_verifications')
      await changeRows(sequelize, 'DELETE FROM users WHERE email_verified_at IS NULL')
      await createTable(
        sequelize,
        'email_verifications',
        `
          email        VARCHAR(254) NOT NULL,
          code_digest  VARCHAR(128) NOT NULL,
          attempts     INT          NOT NULL DEFAULT 0,
          expires_at   DATETIME(3)  NOT NULL,
          created_at   DATETIME(3)  NOT NULL,
          PRIMARY KEY (email)
        `,
      )
    },
  },
]
