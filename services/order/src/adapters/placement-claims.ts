/**
 * The claim step of placing orders, grouped: the claims of placements that arrive together go
 * to MySQL in one statement (one commit) instead of one each, so a burst of buyers costs a few
 * claim statements. Each claim keeps its own outcome: a key the grouped statement did not give
 * to its claim (its order exists, a twin holds it, two claims of one key came together) is
 * claimed again alone, and so is every claim of a batch that deadlocked, which is exactly what
 * it would have met alone.
 */
import { createBatcher, type Logger } from '@timedeal/platform'
import type { Counter } from 'prom-client'
import { DatabaseError } from 'sequelize'
import type { PlacementClaim } from '../domain/placement.ts'
import type { ClaimOutcome, PlacementStore } from './placement-store.ts'

/** Claims a key for a placement: `claimed`, `placed` (its order answers), or `taken`. */
export type ClaimPlacement = (claim: PlacementClaim) => Promise<ClaimOutcome>

export interface PlacementClaimsOptions {
  readonly placements: PlacementStore
  /** Claims sent in one statement at most; 1 claims each key in a statement of its own. */
  readonly maxBatch: number
  /** Grouped statements running at once at most; claims arriving meanwhile form the next. */
  readonly maxInFlight: number
  /** How long the first claim of a group waits for others (0: the claims of one event-loop turn). */
  readonly lingerMs: number
  /** Counts claim statements by kind (batch, single). */
  readonly statements?: Counter<'kind'>
  readonly logger: Logger
}

const isDeadlock = (error: unknown) =>
  error instanceof DatabaseError && (error.parent as { code?: string }).code === 'ER_LOCK_DEADLOCK'

export function createPlacementClaims(options: PlacementClaimsOptions): ClaimPlacement {
  const { placements, maxBatch, maxInFlight, lingerMs, statements } = options

  async function claimOne(claim: PlacementClaim): Promise<ClaimOutcome> {
    statements?.inc({ kind: 'single' })
    return placements.claim(claim)
  }

  async function claimAll(claims: readonly PlacementClaim[]): Promise<PromiseSettledResult<ClaimOutcome>[]> {
    if (claims.length > 1) {
      try {
        statements?.inc({ kind: 'batch' })
        const held = await placements.claimTogether(claims)
        return Promise.allSettled(claims.map((claim, i) => (held[i] ? 'claimed' : claimOne(claim))))
      } catch (error) {
        // A deadlock rolls the whole statement back: nothing of it stands, each claim goes alone.
        if (!isDeadlock(error)) throw error
        options.logger.info(
          { size: claims.length, err: error },
          'a group of claims deadlocked; claiming them one by one',
        )
      }
    }
    return Promise.allSettled(claims.map(claimOne))
  }

  if (maxBatch <= 1) return claimOne
  return createBatcher({ run: claimAll, maxBatch, lingerMs, maxInFlight })
}
