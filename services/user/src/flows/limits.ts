import { createHash } from 'node:crypto'
import { Problem } from '@timedeal/platform'
import type { LimitRule, LimitVerdict } from '../adapters/rate-limiter.ts'

export interface LimitSettings {
  readonly perAccount: number
  readonly perAddress: number
  readonly windowSeconds: number
}

// Counters are keyed by a hash of the address, so Redis holds no e-mail addresses.
const emailKey = (email: string) => createHash('sha256').update(email).digest('hex').slice(0, 32)

export const accountLimitKey = (action: string, email: string) => `${action}:account:${emailKey(email)}`

/** One rule for the account (or e-mail address) and one for the client's network address. */
export function limitRules(action: string, email: string, clientAddress: string, limits: LimitSettings): LimitRule[] {
  return [
    { key: accountLimitKey(action, email), limit: limits.perAccount, windowSeconds: limits.windowSeconds },
    { key: `${action}:address:${clientAddress}`, limit: limits.perAddress, windowSeconds: limits.windowSeconds },
  ]
}

/** What a route that counts attempts may answer with (see {@link rateLimited}), for its documentation. */
export const RATE_LIMIT_PROBLEMS = { 429: ['RATE_LIMITED'] } as const

/** 429 with the wait, in the body and as the `Retry-After` header clients and proxies honour. */
export function rateLimited(verdict: LimitVerdict): Problem {
  return new Problem({
    status: 429,
    code: 'RATE_LIMITED',
    detail: `too many attempts; try again in ${verdict.retryAfterSeconds} s`,
    extensions: { retryAfterSeconds: verdict.retryAfterSeconds },
    headers: { 'retry-after': String(verdict.retryAfterSeconds) },
  })
}
