/**
 * The one idiom for raw SQL in every service: named `:replacements`, instants written with their
 * milliseconds, and an optional transaction. Adapters call these instead of `sequelize.query`.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { sqlTime, withSqlTimes } from './mysql.ts'

export type SqlReplacements = Record<string, unknown>

/**
 * One value escaped as a replacement is written into the statement (an instant with its
 * milliseconds), for statements that carry many values: named replacements make every call scan
 * a text as long as its rows and look each name up.
 */
export const sqlValue = (sequelize: Sequelize, value: unknown): string =>
  sequelize.escape((value instanceof Date ? sqlTime(value) : value) as string)

/** Rows as the list after VALUES, `(…), (…)`, each value as {@link sqlValue} writes it. */
export const sqlRows = (sequelize: Sequelize, rows: readonly (readonly unknown[])[]): string =>
  rows.map((row) => `(${row.map((value) => sqlValue(sequelize, value)).join(', ')})`).join(', ')

/** Rows of a SELECT; without replacements the statement goes as written, as for {@link changeRows}. */
export function selectRows<Row extends object>(
  sequelize: Sequelize,
  sql: string,
  replacements: SqlReplacements = {},
  transaction?: Transaction,
): Promise<Row[]> {
  return sequelize.query<Row>(sql, {
    ...(hasAny(replacements) ? { replacements: withSqlTimes(replacements) } : {}),
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
