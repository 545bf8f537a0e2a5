import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { selectRow } from '@timedeal/platform'
import { createTestDatabase, type TestDatabase } from '@timedeal/platform/testing'
import { migrations } from '../src/adapters/migrations.ts'
import { classifyProviderFailure } from '../src/adapters/order-events.ts'
import { ProviderUnavailableError } from '../src/adapters/provider.ts'
import { type SandboxOptions, SandboxProvider, sandboxBehaviour } from '../src/adapters/sandbox-provider.ts'
import { paymentOfCharge, refunded, settlementFor, voidedPayment } from '../src/domain/payment.ts'

const never = () => new AbortController().signal

describe('the sandbox provider (its books in a real MariaDB)', () => {
  let database: TestDatabase
  before(async () => {
    database = await createTestDatabase('payment_sandbox', migrations)
  })
  after(async () => {
    await database?.drop()
  })
  const sandboxWith = (options: Partial<SandboxOptions> = {}) =>
    new SandboxProvider({
      sequelize: database.sequelize,
      failureRate: 0,
      latencyMs: 0,
      lateCaptureMs: 0,
      outageMs: 0,
      ...options,
    })

  test('decides each outcome from the request alone', () => {
    assert.equal(sandboxBehaviour({ amount: 10_000 }), 'approve')
    assert.equal(sandboxBehaviour({ amount: 10_013 }), 'decline')
    assert.equal(sandboxBehaviour({ amount: 113 }), 'decline')
    assert.equal(sandboxBehaviour({ amount: 5_408 }), 'hang')
    assert.equal(sandboxBehaviour({ amount: 1_503 }), 'unavailable')
    assert.equal(sandboxBehaviour({ amount: 2_504 }), 'late-capture')
    assert.equal(sandboxBehaviour({ amount: 10_000, paymentToken: 'tok_late_capture' }), 'late-capture')
    assert.equal(sandboxBehaviour({ amount: 10_000, paymentToken: 'tok_decline' }), 'decline')
    assert.equal(sandboxBehaviour({ amount: 10_000, paymentToken: 'tok_timeout' }), 'hang')
    assert.equal(sandboxBehaviour({ amount: 10_000, paymentToken: 'tok_unavailable' }), 'unavailable')
  })

  test('approves, declines, and answers a repeated key with its first answer', async () => {
    const sandbox = sandboxWith()
    const approved = await sandbox.charge({ idempotencyKey: 'charge:a', orderId: 'a', amount: 1_000 }, never())
    assert.ok(approved.approved)
    assert.deepEqual(
      await sandbox.charge({ idempotencyKey: 'charge:a', orderId: 'a', amount: 1_000 }, never()),
      approved,
    )
    assert.deepEqual(await sandbox.charge({ idempotencyKey: 'charge:b', orderId: 'b', amount: 2_013 }, never()), {
      approved: false,
      code: 'CARD_DECLINED',
    })
    const refund = await sandbox.refund({ idempotencyKey: 'refund:a', chargeReference: 'x', amount: 1_000 }, never())
    assert.deepEqual(
      await sandbox.refund({ idempotencyKey: 'refund:a', chargeReference: 'x', amount: 1_000 }, never()),
      refund,
    )
  })

  test('charges made at once do not cost three statements each on the sandbox books, and a repeated key still gets its first answer', async () => {
    const sandbox = sandboxWith()
    const request = (index: number) => ({
      idempotencyKey: `at-once:${index}`,
      orderId: `at-once:${index}`,
      amount: 1_000,
    })
    const first = await sandbox.charge({ ...request(0), amount: 1_013 }, never())
    const statements: string[] = []
    database.sequelize.addHook('afterQuery', 'count-ledger-statements', (_options, query) => {
      const { sql } = query as { sql?: string }
      if (sql?.includes('sandbox_charges')) statements.push(sql)
    })
    const requests = Array.from({ length: 20 }, (_, index) => request(index))
    let answers: Awaited<ReturnType<SandboxProvider['charge']>>[]
    try {
      answers = await Promise.all([...requests, request(5)].map((each) => sandbox.charge(each, never())))
    } finally {
      database.sequelize.removeHook('afterQuery', 'count-ledger-statements')
    }
    assert.deepEqual(answers[0], first)
    assert.ok(answers.slice(1, 20).every((answer) => answer.approved))
    assert.deepEqual(answers[20], answers[5])
    const counted = await selectRow<{ charges: number | string }>(
      database.sequelize,
      "SELECT COUNT(*) AS charges FROM sandbox_charges WHERE idempotency_key LIKE 'at-once:%'",
    )
    assert.equal(Number(counted?.charges), 20)
    // One read of the keys, one write of the new ones, one re-read because a key came twice.
    assert.equal(statements.length, 3, statements.join('\n'))
  })

  test('declines at the configured random rate, and keeps that answer for a retry', async () => {
    const draws = [0.1, 0.9]
    const sandbox = sandboxWith({ failureRate: 0.5, random: () => draws.shift() ?? 0 })
    const first = await sandbox.charge({ idempotencyKey: 'k1', orderId: '1', amount: 1_000 }, never())
    assert.deepEqual(first, { approved: false, code: 'RANDOM_DECLINE' })
    assert.deepEqual(await sandbox.charge({ idempotencyKey: 'k1', orderId: '1', amount: 1_000 }, never()), first)
    assert.ok((await sandbox.charge({ idempotencyKey: 'k2', orderId: '2', amount: 1_000 }, never())).approved)
  })

  test('a hanging charge ends when the caller gives up; an unavailable one rejects', async () => {
    const sandbox = sandboxWith()
    const started = Date.now()
    await assert.rejects(
      sandbox.charge({ idempotencyKey: 'h', orderId: 'h', amount: 408 }, AbortSignal.timeout(100)),
      (error: Error) => error.name === 'TimeoutError',
    )
    assert.ok(Date.now() - started < 2_000)
    await assert.rejects(
      sandbox.charge({ idempotencyKey: 'u', orderId: 'u', amount: 503 }, never()),
      ProviderUnavailableError,
    )
  })

  test('a late capture takes the money without answering; a lookup says pending until it lands, and a restarted sandbox still finds it', async () => {
    const sandbox = sandboxWith({ lateCaptureMs: 400 })
    await assert.rejects(
      sandbox.charge({ idempotencyKey: 'late', orderId: 'late', amount: 2_504 }, AbortSignal.timeout(100)),
      (error: Error) => error.name === 'TimeoutError',
    )
    assert.deepEqual(await sandbox.findCharge('late', never()), { state: 'pending' })
    await new Promise((resolve) => setTimeout(resolve, 400))
    const restarted = sandboxWith()
    const found = await restarted.findCharge('late', never())
    assert.equal(found.state, 'captured')
    assert.equal(found.state === 'captured' && found.amount, 2_504)
    // A repeated request gets the first answer now that there is one.
    assert.deepEqual(await restarted.charge({ idempotencyKey: 'late', orderId: 'late', amount: 2_504 }, never()), {
      approved: true,
      reference: found.state === 'captured' ? found.reference : '',
    })
  })

  test('a charge that met an outage fails every call about it until the outage ends, then is approved', async () => {
    const sandbox = sandboxWith({ outageMs: 300 })
    const request = { idempotencyKey: 'down', orderId: 'down', amount: 1_503 }
    await assert.rejects(sandbox.charge(request, never()), ProviderUnavailableError)
    await assert.rejects(sandbox.charge(request, never()), ProviderUnavailableError)
    await assert.rejects(sandbox.findCharge('down', never()), ProviderUnavailableError)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const approved = await sandbox.charge(request, never())
    assert.ok(approved.approved)
    assert.deepEqual(await sandbox.charge(request, never()), approved)
    assert.deepEqual(await sandbox.findCharge('down', never()), {
      state: 'captured',
      reference: approved.reference,
      amount: 1_503,
    })
  })

  test('a lookup after an outage that took nothing says absent and closes the key', async () => {
    const sandbox = sandboxWith()
    await assert.rejects(
      sandbox.charge({ idempotencyKey: 'was-down', orderId: 'was-down', amount: 503 }, never()),
      ProviderUnavailableError,
    )
    assert.deepEqual(await sandbox.findCharge('was-down', never()), { state: 'absent' })
    assert.deepEqual(await sandbox.charge({ idempotencyKey: 'was-down', orderId: 'was-down', amount: 503 }, never()), {
      approved: false,
      code: 'CHARGE_CLOSED',
    })
  })

  test('looking up a key that took nothing closes it, so a charge arriving later is refused', async () => {
    const sandbox = sandboxWith()
    assert.deepEqual(await sandbox.findCharge('lost', never()), { state: 'absent' })
    assert.deepEqual(await sandbox.charge({ idempotencyKey: 'lost', orderId: 'lost', amount: 1_000 }, never()), {
      approved: false,
      code: 'CHARGE_CLOSED',
    })
    assert.deepEqual(await sandbox.findCharge('lost', never()), { state: 'absent' })
    await sandbox.charge({ idempotencyKey: 'kept', orderId: 'kept', amount: 1_013 }, never())
    assert.deepEqual(await sandbox.findCharge('kept', never()), { state: 'declined', code: 'CARD_DECLINED' })
  })
})

describe('payment rules', () => {
  const at = new Date('2030-01-01T00:00:00.000Z')
  const input = { id: 'p1', orderId: 'o1', buyerId: 'b1', amount: 5_000, provider: 'sandbox', at }

  test('a charge comes to a completed or a failed payment', () => {
    const completed = paymentOfCharge(input, { approved: true, reference: 'ref' })
    assert.deepEqual([completed.status, completed.providerReference, completed.completedAt], ['COMPLETED', 'ref', at])
    const failed = paymentOfCharge(input, { approved: false, code: 'CARD_DECLINED' })
    assert.deepEqual([failed.status, failed.failureCode, failed.failedAt], ['FAILED', 'CARD_DECLINED', at])
  })

  test('only a completed payment is refunded; an order never charged is voided', () => {
    const completed = paymentOfCharge(input, { approved: true, reference: 'ref' })
    assert.equal(settlementFor(completed), 'refund')
    assert.equal(settlementFor(undefined), 'void')
    const back = refunded(completed, 'refund-ref', at)
    assert.equal(back.status, 'REFUNDED')
    assert.equal(settlementFor(back), 'none')
    assert.equal(settlementFor(paymentOfCharge(input, { approved: false, code: 'X' })), 'none')
    assert.equal(settlementFor(voidedPayment(input)), 'none')
    assert.throws(() => refunded(back, 'again', at), /cannot be refunded/)
  })

  test('a provider that is down or cannot say counts as an outage for the consumer; other failures are not judged here', () => {
    assert.equal(classifyProviderFailure(new ProviderUnavailableError('down')), 'infrastructure')
    assert.equal(classifyProviderFailure(new Error('a bug')), undefined)
  })
})
