import mysql2 from 'mysql2'
import { type QueryInterface, QueryTypes, Sequelize } from 'sequelize'
import { SequelizeStorage, Umzug } from 'umzug'
import type { Logger } from './logger.ts'

export interface MysqlOptions {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
  readonly poolMax?: number
  readonly logger: Logger
}

/** A Sequelize instance on mysql2, in UTC, logging SQL only at trace level. */
export function createSequelize(options: MysqlOptions): Sequelize {
  return new Sequelize(options.database, options.user, options.password, {
    dialect: 'mysql',
    dialectModule: mysql2,
    host: options.host,
    port: options.port,
    timezone: '+00:00',
    logging: (sql) => options.logger.trace({ sql }, 'sql'),
    pool: { max: options.poolMax ?? 20, min: 0, acquire: 10_000, idle: 10_000 },
    dialectOptions: { connectTimeout: 5_000, supportBigNumbers: true, dateStrings: false },
    define: { underscored: true, freezeTableName: true },
  })
}

export async function pingMysql(sequelize: Sequelize): Promise<void> {
  await sequelize.query('SELECT 1', { type: QueryTypes.SELECT })
}

/** One versioned schema change of a service. Names sort in the order they apply: `0001-...`. */
export interface Migration {
  readonly name: string
  readonly up: (context: { queryInterface: QueryInterface; sequelize: Sequelize }) => Promise<void>
  readonly down?: (context: { queryInterface: QueryInterface; sequelize: Sequelize }) => Promise<void>
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order. A MySQL named lock
 * makes concurrent starts (several replicas, several test files) apply each migration once.
 */
export async function migrate(
  sequelize: Sequelize,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<string[]> {
  const names = migrations.map((migration) => migration.name)
  const sorted = [...names].sort()
  if (names.some((name, index) => name !== sorted[index]) || new Set(names).size !== names.length) {
    throw new Error(`migrations must have unique names listed in sort order: ${names.join(', ')}`)
  }
  const context = { queryInterface: sequelize.getQueryInterface(), sequelize }
  const umzug = new Umzug({
    migrations: migrations.map((migration) => ({
      name: migration.name,
      up: () => migration.up(context),
      down: () =>
        migration.down ? migration.down(context) : Promise.reject(new Error(`${migration.name} cannot be undone`)),
    })),
    context,
    storage: new SequelizeStorage({ sequelize, tableName: 'schema_migrations' }),
    logger: undefined,
  })
  const lockName = `timedeal.migrations.${sequelize.getDatabaseName()}`
  // The lock is held by one pooled connection, kept for the duration by the transaction.
  return sequelize.transaction(async (transaction) => {
    const [row] = await sequelize.query<{ acquired: number | null }>('SELECT GET_LOCK(?, 60) AS acquired', {
      replacements: [lockName],
      type: QueryTypes.SELECT,
      transaction,
    })
    if (row?.acquired !== 1) throw new Error(`could not take the migration lock ${lockName} within 60 s`)
    try {
      const applied = await umzug.up()
      for (const migration of applied) logger.info({ migration: migration.name }, 'migration applied')
      return applied.map((migration) => migration.name)
    } finally {
      await sequelize.query('SELECT RELEASE_LOCK(?)', { replacements: [lockName], transaction })
    }
  })
}

/**
 * An instant as a DATETIME(3) literal in UTC (connections run at +00:00). Sequelize's escaping
 * of a Date replacement drops the milliseconds; pass instants through this instead.
 */
export const sqlTime = (instant: Date): string => instant.toISOString().replace('T', ' ').replace('Z', '')

/** The same values with every Date turned into a {@link sqlTime} literal, for replacements. */
export function withSqlTimes<T extends Record<string, unknown>>(values: T): Record<keyof T, unknown> {
  return Object.fromEntries(
    Object.entries(values).map(([key, value]) => [key, value instanceof Date ? sqlTime(value) : value]),
  ) as Record<keyof T, unknown>
}
