import { withSqlTimes } from '@timedeal/platform'
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'

type Replacements = Record<string, unknown>

/** Rows of a SELECT with named `:replacements`. */
export function selectRows<Row extends object>(
  sequelize: Sequelize,
  sql: string,
  replacements: Replacements = {},
  transaction?: Transaction,
): Promise<Row[]> {
  return sequelize.query<Row>(sql, {
    replacements: withSqlTimes(replacements),
    type: QueryTypes.SELECT,
    transaction: transaction ?? null,
  })
}

/** Runs an INSERT, UPDATE or DELETE and returns how many rows it changed. */
export async function changeRows(
  sequelize: Sequelize,
  sql: string,
  replacements: Replacements = {},
  transaction?: Transaction,
): Promise<number> {
  const [result] = await sequelize.query(sql, {
    replacements: withSqlTimes(replacements),
    transaction: transaction ?? null,
    raw: true,
  })
  return (result as { affectedRows?: number }).affectedRows ?? 0
}
