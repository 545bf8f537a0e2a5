import { changeRows, selectRow, selectRows, sqlValue } from '@timedeal/platform'
import { DatabaseError, type Sequelize, type Transaction, UniqueConstraintError } from 'sequelize'
import type { PlacementClaim, Refusal } from '../domain/placement.ts'

interface PlacementRow {
  buyer_id: string
  idempotency_key: string
  goods_id: string
  quantity: number
  state: PlacementClaim['state']
  token: string
  reservation_id: string
  refusal: string | null
  until: Date
}

export type ClaimOutcome = 'claimed' | 'placed' | 'taken'

/** The widths of the key's columns: a longer value is never put in a statement that ignores errors. */
const MAX_BUYER_ID = 64
const MAX_IDEMPOTENCY_KEY = 128
const MAX_GOODS_ID = 64

const fitsColumns = (claim: PlacementClaim) =>
  claim.buyerId.length <= MAX_BUYER_ID &&
  claim.idempotencyKey.length <= MAX_IDEMPOTENCY_KEY &&
  claim.goodsId.length <= MAX_GOODS_ID

const isDeadlock = (error: unknown) =>
  error instanceof DatabaseError && (error.parent as { code?: string }).code === 'ER_LOCK_DEADLOCK'

/**
 * The `placements` table: who holds each Idempotency-Key being placed, and the refusals
 * remembered. Every change after the claim names the holder's token, so a holder that lost its
 * key (its lease ran out and another request took over) changes nothing.
 */
export class PlacementStore {
  readonly #db: Sequelize

  constructor(db: Sequelize) {
    this.#db = db
  }

  /**
   * Claims the key unless the buyer's order under it is written already, in one statement:
   * `claimed`, `placed` (the order answers for the key), or `taken` when another request holds
   * the key (or its refusal is remembered) or won the race for it: twins inserting the same key
   * as its holder deletes it may deadlock, and InnoDB then rolls one of them back.
   */
  async claim(claim: PlacementClaim): Promise<ClaimOutcome> {
    try {
      const inserted = await changeRows(
        this.#db,
        `INSERT INTO placements (buyer_id, idempotency_key, goods_id, quantity, state, token, reservation_id, until)
         SELECT :buyerId, :idempotencyKey, :goodsId, :quantity, :state, :token, :reservationId, :until FROM DUAL
         WHERE NOT EXISTS (SELECT 1 FROM orders WHERE buyer_id = :buyerId AND idempotency_key = :idempotencyKey)`,
        { ...claim },
      )
      return inserted === 1 ? 'claimed' : 'placed'
    } catch (error) {
      if (error instanceof UniqueConstraintError || isDeadlock(error)) return 'taken'
      throw error
    }
  }

  /**
   * Claims several keys in one statement (one commit): each row goes in unless its buyer's order
   * under that key is written already, as in {@link claim}, and a key someone holds is skipped
   * (IGNORE) instead of failing the others. Answers, per claim, whether it now holds its key;
   * false says nothing more (its order exists, another request holds the key, or its values are
   * not fit for this statement) and the caller asks {@link claim} for that one. All claimed is
   * known from the count of rows written; otherwise one read of the keys tells whose they are.
   */
  async claimTogether(claims: readonly PlacementClaim[]): Promise<boolean[]> {
    const fit = claims.filter(fitsColumns)
    if (fit.length === 0) return claims.map(() => false)
    const value = (of: unknown) => sqlValue(this.#db, of)
    const selects = fit.map((claim) => {
      const [buyerId, idempotencyKey] = [value(claim.buyerId), value(claim.idempotencyKey)]
      // Each row checks its own order by the key, exactly as the claim of one key does.
      return `SELECT ${buyerId}, ${idempotencyKey}, ${value(claim.goodsId)}, ${value(claim.quantity)},
          ${value(claim.state)}, ${value(claim.token)}, ${value(claim.reservationId)}, ${value(claim.until)} FROM DUAL
        WHERE NOT EXISTS (SELECT 1 FROM orders WHERE buyer_id = ${buyerId} AND idempotency_key = ${idempotencyKey})`
    })
    // IGNORE only skips keys held already: every other value is ours and fits its column (fitsColumns).
    const inserted = await changeRows(
      this.#db,
      `INSERT IGNORE INTO placements (buyer_id, idempotency_key, goods_id, quantity, state, token, reservation_id, until)
       ${selects.join(' UNION ALL ')}`,
    )
    let held: Set<string>
    if (inserted === fit.length) held = new Set(fit.map(({ token }) => token))
    else if (inserted === 0) held = new Set()
    else {
      const rows = await selectRows<{ token: string }>(
        this.#db,
        `SELECT token FROM placements WHERE ${this.#keysOf(fit)}`,
      )
      held = new Set(rows.map(({ token }) => token))
    }
    return claims.map((claim) => held.has(claim.token))
  }

  async find(buyerId: string, idempotencyKey: string): Promise<PlacementClaim | undefined> {
    const row = await selectRow<PlacementRow>(
      this.#db,
      'SELECT * FROM placements WHERE buyer_id = :buyerId AND idempotency_key = :idempotencyKey',
      { buyerId, idempotencyKey },
    )
    return row ? toClaim(row) : undefined
  }

  /** Replaces `previous` with `next` unless someone else did first. */
  async takeOver(previous: PlacementClaim, next: PlacementClaim): Promise<boolean> {
    const changed = await changeRows(
      this.#db,
      `UPDATE placements SET state = :state, token = :token, reservation_id = :reservationId, refusal = NULL,
         until = :until
       WHERE buyer_id = :buyerId AND idempotency_key = :idempotencyKey AND token = :previousToken`,
      { ...next, previousToken: previous.token },
    )
    return changed === 1
  }

  /** Remembers the holder's refusal until `until`. */
  async refuse(claim: PlacementClaim, refusal: Refusal, until: Date): Promise<void> {
    await changeRows(
      this.#db,
      `UPDATE placements SET state = 'REFUSED', refusal = :refusal, until = :until
       WHERE buyer_id = :buyerId AND idempotency_key = :idempotencyKey AND token = :token`,
      { ...claim, refusal: JSON.stringify(refusal), until },
    )
  }

  /** Gives the key up without an outcome (goods-service did not answer): the next request tries. */
  async abandon(claim: PlacementClaim): Promise<void> {
    await changeRows(
      this.#db,
      'DELETE FROM placements WHERE buyer_id = :buyerId AND idempotency_key = :idempotencyKey AND token = :token',
      { ...claim },
    )
  }

  /**
   * Ends the claim in the transaction that writes its order (the order answers for the key from
   * then on); false when the holder lost the key, and the transaction must not commit.
   */
  async settle(claim: PlacementClaim, transaction: Transaction): Promise<boolean> {
    const settled = await changeRows(
      this.#db,
      'DELETE FROM placements WHERE buyer_id = :buyerId AND idempotency_key = :idempotencyKey AND token = :token',
      { ...claim },
      transaction,
    )
    return settled === 1
  }

  /**
   * Ends several claims in the transaction that writes their orders, in one statement; how many
   * were still held. Fewer than `claims.length` means a holder lost its key.
   */
  async settleMany(claims: readonly PlacementClaim[], transaction: Transaction): Promise<number> {
    if (claims.length === 0) return 0
    return changeRows(this.#db, `DELETE FROM placements WHERE ${this.#keysOf(claims, true)}`, undefined, transaction)
  }

  /**
   * The claims' keys (and tokens) as a condition: ORed equalities rather than a row IN list, since
   * every MariaDB version reads those by the key; values written in, as the claims may be many.
   */
  #keysOf(claims: readonly PlacementClaim[], withToken = false): string {
    const value = (of: unknown) => sqlValue(this.#db, of)
    return claims
      .map(
        (claim) =>
          `(buyer_id = ${value(claim.buyerId)} AND idempotency_key = ${value(claim.idempotencyKey)}${
            withToken ? ` AND token = ${value(claim.token)}` : ''
          })`,
      )
      .join(' OR ')
  }

  /** Forgets claims and refusals past their time, a batch at a time; returns how many. */
  async prune(now: Date, limit: number): Promise<number> {
    return changeRows(this.#db, 'DELETE FROM placements WHERE until < :now ORDER BY until LIMIT :limit', {
      now,
      limit,
    })
  }
}

function toClaim(row: PlacementRow): PlacementClaim {
  return {
    buyerId: row.buyer_id,
    idempotencyKey: row.idempotency_key,
    goodsId: row.goods_id,
    quantity: Number(row.quantity),
    state: row.state,
    token: row.token,
    reservationId: row.reservation_id,
    refusal: row.refusal ? (JSON.parse(row.refusal) as Refusal) : null,
    until: new Date(row.until),
  }
}
