/**
 * An instant as a DATETIME(3) literal in UTC (connections run at +00:00). Sequelize's own
 * escaping of a Date drops the milliseconds, which sale windows and ordering need.
 */
export const sqlTime = (instant: Date): string => instant.toISOString().replace('T', ' ').replace('Z', '')
