/**
 * Idempotent consumers: the id of each handled event is recorded in the same MySQL transaction
 * as its effect, so an event delivered again (a rebalance, a replay, a relay that published
 * twice) finds its id and changes nothing.
 */
import type { CloudEvent } from '@timedeal/contracts'
import { DataTypes, QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { type Migration, sqlTime } from './mysql.ts'

export const INBOX_TABLE = 'inbox'

export const createInboxTable = (name: string): Migration => ({
  name,
  up: async ({ queryInterface }) => {
    await queryInterface.createTable(INBOX_TABLE, {
      consumer: { type: DataTypes.STRING(64), primaryKey: true },
      event_id: { type: DataTypes.STRING(64), primaryKey: true },
      event_type: { type: DataTypes.STRING(128), allowNull: false },
      handled_at: { type: DataTypes.DATE(3), allowNull: false },
    })
  },
  down: async ({ queryInterface }) => {
    await queryInterface.dropTable(INBOX_TABLE)
  },
})

/**
 * Runs `effect` and records `event` as handled by `consumer`, atomically. Returns false (and
 * runs nothing) when this consumer already handled the event.
 */
export async function handleOnce(
  sequelize: Sequelize,
  consumer: string,
  event: CloudEvent,
  effect: (transaction: Transaction) => Promise<void>,
): Promise<boolean> {
  return sequelize.transaction(async (transaction) => {
    // INSERT IGNORE both claims the id and, through the primary key's lock, makes a concurrent
    // delivery of the same event wait for this one's outcome.
    const [, affected] = await sequelize.query(
      `INSERT IGNORE INTO ${INBOX_TABLE} (consumer, event_id, event_type, handled_at) VALUES (?, ?, ?, ?)`,
      { replacements: [consumer, event.id, event.type, sqlTime(new Date())], transaction, type: QueryTypes.INSERT },
    )
    if (Number(affected) === 0) return false
    await effect(transaction)
    return true
  })
}
