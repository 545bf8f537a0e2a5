import type { Migration } from '@timedeal/platform'
import { DataTypes } from 'sequelize'

const utf8 = { charset: 'utf8mb4', collate: 'utf8mb4_bin' }
const instant = (allowNull = false) => ({ type: DataTypes.DATE(3), allowNull })
const userId = { type: DataTypes.CHAR(36), allowNull: false }

/** Versioned schema changes of `timedeal_user`, applied in order at start or by `main.ts migrate`. */
export const migrations: readonly Migration[] = [
  {
    name: '0001-create-users',
    up: async ({ queryInterface }) => {
      await queryInterface.createTable(
        'users',
        {
          id: { type: DataTypes.CHAR(36), primaryKey: true },
          // Stored lower-cased, so the unique index is the "one account per address" rule.
          email: { type: DataTypes.STRING(254), allowNull: false, unique: true },
          name: { type: DataTypes.STRING(100), allowNull: false },
          role: { type: DataTypes.STRING(16), allowNull: false },
          password_hash: { type: DataTypes.STRING(255), allowNull: false },
          email_verified_at: instant(true),
          // Personal data, sealed with AES-256-GCM as `keyId:iv:ciphertext:tag`.
          phone_encrypted: { type: DataTypes.TEXT, allowNull: true },
          address_encrypted: { type: DataTypes.TEXT, allowNull: true },
          password_changed_at: instant(),
          created_at: instant(),
          updated_at: instant(),
        },
        utf8,
      )
    },
  },
  {
    name: '0002-create-email-verifications',
    up: async ({ queryInterface }) => {
      await queryInterface.createTable(
        'email_verifications',
        {
          // One pending code per account: a new sign-up replaces it.
          user_id: { ...userId, primaryKey: true, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
          code_digest: { type: DataTypes.STRING(128), allowNull: false },
          attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
          expires_at: instant(),
          created_at: instant(),
        },
        utf8,
      )
    },
  },
  {
    name: '0003-create-sessions',
    up: async ({ queryInterface }) => {
      await queryInterface.createTable(
        'session_families',
        {
          id: { type: DataTypes.CHAR(36), primaryKey: true },
          user_id: { ...userId, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
          created_at: instant(),
          revoked_at: instant(true),
          revoked_reason: { type: DataTypes.STRING(32), allowNull: true },
        },
        utf8,
      )
      await queryInterface.addIndex('session_families', ['user_id'])
      await queryInterface.createTable(
        'refresh_tokens',
        {
          // SHA-256 of the opaque token: a leaked table holds nothing a client could present.
          token_hash: { type: DataTypes.CHAR(64), primaryKey: true },
          family_id: {
            type: DataTypes.CHAR(36),
            allowNull: false,
            references: { model: 'session_families', key: 'id' },
            onDelete: 'CASCADE',
          },
          created_at: instant(),
          expires_at: instant(),
          used_at: instant(true),
        },
        utf8,
      )
      await queryInterface.addIndex('refresh_tokens', ['family_id'])
      await queryInterface.addIndex('refresh_tokens', ['expires_at'])
    },
  },
  {
    name: '0004-create-signing-keys',
    up: async ({ queryInterface }) => {
      await queryInterface.createTable(
        'signing_keys',
        {
          kid: { type: DataTypes.STRING(64), primaryKey: true },
          algorithm: { type: DataTypes.STRING(16), allowNull: false },
          public_jwk: { type: DataTypes.TEXT, allowNull: false },
          // Sealed with the data-encryption key, like personal data.
          private_key_encrypted: { type: DataTypes.TEXT, allowNull: false },
          created_at: instant(),
          activates_at: instant(),
          retires_at: instant(true),
        },
        utf8,
      )
    },
  },
  {
    name: '0005-create-dev-mail',
    up: async ({ queryInterface }) => {
      // Written only by the development mail sink (MAILER=sink).
      await queryInterface.createTable(
        'dev_mail',
        {
          id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
          to_address: { type: DataTypes.STRING(254), allowNull: false },
          subject: { type: DataTypes.STRING(255), allowNull: false },
          body: { type: DataTypes.TEXT, allowNull: false },
          created_at: instant(),
        },
        utf8,
      )
      await queryInterface.addIndex('dev_mail', ['to_address', 'id'])
    },
  },
  {
    name: '0006-sign-ups-apart-from-accounts',
    up: async ({ queryInterface, sequelize }) => {
      // Sign-ups wait here until their address is verified; each keeps the password and role
      // it was made with, so a second sign-up of an address never changes the first one.
      await queryInterface.createTable(
        'sign_ups',
        {
          id: { type: DataTypes.CHAR(36), primaryKey: true },
          email: { type: DataTypes.STRING(254), allowNull: false },
          name: { type: DataTypes.STRING(100), allowNull: false },
          role: { type: DataTypes.STRING(16), allowNull: false },
          password_hash: { type: DataTypes.STRING(255), allowNull: false },
          created_at: instant(),
        },
        utf8,
      )
      await queryInterface.addIndex('sign_ups', ['email', 'created_at'])
      await queryInterface.addIndex('sign_ups', ['created_at'])
      // Unverified accounts become sign-ups; `users` holds verified accounts only from now on.
      await sequelize.query(
        `INSERT INTO sign_ups (id, email, name, role, password_hash, created_at)
         SELECT id, email, name, role, password_hash, created_at FROM users WHERE email_verified_at IS NULL`,
      )
      // The code proves the mailbox, so it belongs to the address, not to one sign-up. Codes
      // pending now are dropped (they last 15 minutes); signing up again mails a new one.
      await queryInterface.dropTable('email_verifications')
      await sequelize.query('DELETE FROM users WHERE email_verified_at IS NULL')
      await queryInterface.createTable(
        'email_verifications',
        {
          email: { type: DataTypes.STRING(254), primaryKey: true },
          code_digest: { type: DataTypes.STRING(128), allowNull: false },
          attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
          expires_at: instant(),
          created_at: instant(),
        },
        utf8,
      )
    },
  },
]
