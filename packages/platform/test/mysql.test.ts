import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DataTypes, QueryTypes, type Sequelize } from 'sequelize'
import { type Migration, migrate, pingMysql } from '../src/mysql.ts'
import { connectTestMysql, testLogger, uniqueName } from './support.ts'

const database = uniqueName('timedeal_test')

describe('MySQL through sequelize (real MariaDB)', () => {
  let sequelize: Sequelize

  before(async () => {
    const admin = connectTestMysql('information_schema')
    await admin.query(`CREATE DATABASE \`${database}\``)
    await admin.close()
    sequelize = connectTestMysql(database)
  })

  after(async () => {
    await sequelize.query(`DROP DATABASE \`${database}\``)
    await sequelize.close()
  })

  test('answers a ping', async () => {
    await pingMysql(sequelize)
  })

  const migrations: Migration[] = [
    {
      name: '0001-create-widgets',
      up: async ({ queryInterface }) => {
        await queryInterface.createTable('widgets', {
          id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
          name: { type: DataTypes.STRING(64), allowNull: false, unique: true },
        })
      },
    },
    {
      name: '0002-add-widget-colour',
      up: async ({ queryInterface }) => {
        await queryInterface.addColumn('widgets', 'colour', { type: DataTypes.STRING(16), allowNull: true })
      },
    },
  ]

  test('applies versioned migrations once, even when several processes start together', async () => {
    const others = [connectTestMysql(database), connectTestMysql(database), connectTestMysql(database)]
    try {
      const results = await Promise.all([sequelize, ...others].map((db) => migrate(db, migrations, testLogger)))
      const applied = results.flat().sort()
      assert.deepEqual(applied, ['0001-create-widgets', '0002-add-widget-colour'])
      assert.deepEqual(await migrate(sequelize, migrations, testLogger), [])
      const recorded = await sequelize.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name', {
        type: QueryTypes.SELECT,
      })
      assert.deepEqual(
        recorded.map((row) => row.name),
        ['0001-create-widgets', '0002-add-widget-colour'],
      )
    } finally {
      await Promise.all(others.map((db) => db.close()))
    }
  })

  test('refuses migrations listed out of order', async () => {
    await assert.rejects(migrate(sequelize, [...migrations].reverse(), testLogger), /sort order/)
  })

  test('a transaction that rolls back leaves nothing behind', async () => {
    await migrate(sequelize, migrations, testLogger)
    await assert.rejects(
      sequelize.transaction(async (transaction) => {
        await sequelize.query("INSERT INTO widgets (name, colour) VALUES ('left-behind', 'red')", { transaction })
        const [inside] = await sequelize.query<{ n: number }>('SELECT COUNT(*) AS n FROM widgets', {
          type: QueryTypes.SELECT,
          transaction,
        })
        assert.equal(Number(inside?.n), 1)
        // The unique name makes the second insert fail: the first must not survive.
        await sequelize.query("INSERT INTO widgets (name) VALUES ('left-behind')", { transaction })
      }),
      /Duplicate entry|Validation error/,
    )
    const [after] = await sequelize.query<{ n: number }>(
      "SELECT COUNT(*) AS n FROM widgets WHERE name = 'left-behind'",
      {
        type: QueryTypes.SELECT,
      },
    )
    assert.equal(Number(after?.n), 0)
  })

  test('a transaction that commits keeps its rows', async () => {
    await migrate(sequelize, migrations, testLogger)
    await sequelize.transaction(async (transaction) => {
      await sequelize.query("INSERT INTO widgets (name) VALUES ('kept')", { transaction })
    })
    const [row] = await sequelize.query<{ n: number }>("SELECT COUNT(*) AS n FROM widgets WHERE name = 'kept'", {
      type: QueryTypes.SELECT,
    })
    assert.equal(Number(row?.n), 1)
  })
})
