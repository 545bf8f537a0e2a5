import { ApiProblem, api, newIdempotencyKey, type Order } from './api.ts'

/** How many times one click follows the server's `Retry-After` before giving up. */
export const MAX_ASKED_RETRIES = 5

export interface BuySteps {
  /** One attempt to place the order, with the click's key. */
  readonly post: (idempotencyKey: string) => Promise<Order>
  /** The server asked to wait this many seconds before the next attempt. */
  readonly onRetry?: (seconds: number) => void
  readonly wait?: (ms: number) => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A 429 or 503 that says when to come back is the server asking for a retry; anything else is its answer. */
const askedToRetry = (problem: ApiProblem) =>
  problem.retryAfterSeconds !== undefined && (problem.status === 429 || problem.status === 503)

/**
 * One click of Buy: one `Idempotency-Key` for every attempt, so following the server's
 * `Retry-After` can never place a second order. A refusal is thrown as the `ApiProblem` it is.
 */
export async function buyOnce(steps: BuySteps): Promise<Order> {
  const key = newIdempotencyKey()
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await steps.post(key)
    } catch (error) {
      if (!(error instanceof ApiProblem) || !askedToRetry(error) || attempt >= MAX_ASKED_RETRIES) throw error
      const seconds = Math.max(1, error.retryAfterSeconds ?? 1)
      steps.onRetry?.(seconds)
      await (steps.wait ?? sleep)(seconds * 1000)
    }
  }
}

/** `POST /api/orders` (at `base`, the page's own origin by default). */
export const postOrder =
  (goodsId: string, quantity: number, base = '') =>
  (idempotencyKey: string): Promise<Order> =>
    api<Order>(`${base}/api/orders`, {
      method: 'POST',
      headers: { 'idempotency-key': idempotencyKey },
      body: { goodsId, quantity },
    })
