/**
 * A goods catalog of its own for tests and the benchmark: a fresh database with goods-service's
 * schema, created by goods-service's own `migrate` command so the warm-up always reads exactly
 * the table goods-service writes.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import mysql from 'mysql2/promise'
import type { MysqlSource } from './source.ts'

const goodsMain = fileURLToPath(new URL('../../../services/goods/src/main.ts', import.meta.url))

export interface CatalogGoods {
  readonly id: string
  readonly stockOnHand: number
  readonly initialStock?: number
  readonly saleStartsAt: number
  readonly saleEndsAt: number
  readonly purchaseLimit?: number | null
  readonly version?: number
}

export interface GoodsCatalog {
  readonly source: MysqlSource
  readonly pool: mysql.Pool
  insert(goods: readonly CatalogGoods[]): Promise<void>
  /** Drops the database and closes the pool. */
  drop(): Promise<void>
}

export async function createGoodsCatalog(server: Omit<MysqlSource, 'database'>, prefix: string): Promise<GoodsCatalog> {
  const database = `timedeal_test_${prefix}_${randomBytes(4).toString('hex')}`
  const admin = await mysql.createConnection({ ...server })
  try {
    await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`)
  } finally {
    await admin.end()
  }
  const source = { ...server, database }
  await migrateWithGoodsService(source)
  const pool = mysql.createPool({ ...source, timezone: 'Z', connectionLimit: 4 })
  return {
    source,
    pool,
    async insert(goods) {
      for (let start = 0; start < goods.length; start += 5_000) {
        const now = new Date()
        const rows = goods
          .slice(start, start + 5_000)
          .map((item) => [
            item.id,
            'seller-1',
            `goods ${item.id}`,
            '',
            1_000,
            item.initialStock ?? item.stockOnHand,
            item.stockOnHand,
            new Date(item.saleStartsAt),
            new Date(item.saleEndsAt),
            item.purchaseLimit ?? null,
            item.version ?? 1,
            now,
            now,
          ])
        await pool.query(
          `INSERT INTO goods (id, seller_id, name, description, price, initial_stock, stock_on_hand, sale_starts_at,
             sale_ends_at, purchase_limit, version, created_at, updated_at) VALUES ?`,
          [rows],
        )
      }
    },
    async drop() {
      await pool.query(`DROP DATABASE \`${database}\``)
      await pool.end()
    },
  }
}

async function migrateWithGoodsService(source: MysqlSource): Promise<void> {
  const child = spawn(process.execPath, [goodsMain, 'migrate'], {
    env: {
      ...process.env,
      MYSQL_HOST: source.host,
      MYSQL_PORT: String(source.port),
      MYSQL_USER: source.user,
      MYSQL_PASSWORD: source.password,
      MYSQL_DATABASE: source.database,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let errors = ''
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString()
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`goods-service migrate exited with ${code}: ${errors.slice(-2_000)}`)
}
