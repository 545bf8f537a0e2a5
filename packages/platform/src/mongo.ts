import mongoose, { type Connection } from 'mongoose'
import type { Logger } from './logger.ts'

export interface MongoOptions {
  readonly url: string
  readonly database: string
  readonly logger: Logger
}

/** A mongoose connection of its own (not the global one), connected before it is returned. */
export async function createMongo(options: MongoOptions): Promise<Connection> {
  const connection = mongoose.createConnection(options.url, {
    dbName: options.database,
    serverSelectionTimeoutMS: 5_000,
    // FerretDB and single-node servers have no replica set to retry writes on.
    retryWrites: false,
    autoIndex: true,
  })
  connection.on('error', (error: Error) => options.logger.warn({ err: error }, 'mongodb connection error'))
  await connection.asPromise()
  return connection
}

export async function pingMongo(connection: Connection): Promise<void> {
  const db = connection.db
  if (!db) throw new Error('mongodb connection is not open')
  await db.admin().command({ ping: 1 })
}
