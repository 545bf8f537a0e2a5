/**
 * The one idiom for raw SQL in every service: named `:replacements`, instants written with their
 * milliseconds, and an optional transaction. Adapters call these instead of `sequelize.query`.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { withSqlTimes } from './mysql.ts'

export type SqlReplacements = Record<string, unknown>

/** Rows of a SELECT. */
export function selectRows<Row extends object>(
  sequelize: Sequelize,
  sql: string,
  replacements: SqlReplacements = {},
  transaction?: Transaction,
): Promise<Row[]> {
  return sequelize.query<Row>(sql, {
    replacements: withSqlTimes(replacements),
    type: QueryTypes.SELECT,
    transaction: transaction ?? null,
  })
}

/** The first row of a SELECT, or undefined. */
export async function selectRow<Row extends object>(
  sequelize: Sequelize,
  sql: string,
  replacements: SqlReplacements = {},
  transaction?: Transaction,
): Promise<Row | undefined> {
  const [row] = await selectRows<Row>(sequelize, sql, replacements, transaction)
  return row
}

/**
 * Runs an INSERT, UPDATE or DELETE (or DDL) and returns how many rows it changed. Without
 * replacements the statement goes as written, not scanned for them (a long multi-row INSERT).
 */
export async function changeRows(
  sequelize: Sequelize,
  sql: string,
  replacements: SqlReplacements = {},
  transaction?: Transaction,
): Promise<number> {
  const [result, metadata] = await sequelize.query(sql, {
    ...(hasAny(replacements) ? { replacements: withSqlTimes(replacements) } : {}),
    transaction: transaction ?? null,
    raw: true,
  })
  // Sequelize answers an INSERT or UPDATE with [insertId, affectedRows], anything else with the
  // driver's result header twice.
  if (typeof metadata === 'number') return metadata
  return (result as { affectedRows?: number } | undefined)?.affectedRows ?? 0
}

function hasAny(replacements: SqlReplacements): boolean {
  for (const _ in replacements) return true
  return false
}
