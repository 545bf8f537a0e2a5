import { type Caller, Problem } from '@timedeal/platform'
import { decodeJwt } from 'jose'
import type { AccountStore, ProfileChanges } from '../adapters/account-store.ts'
import type { PasswordHasher } from '../adapters/password-hasher.ts'
import type { RateLimiter } from '../adapters/rate-limiter.ts'
import type { SessionStore } from '../adapters/session-store.ts'
import { type ProfileView, profileView } from '../domain/accounts.ts'
import { type LimitSettings, limitRules, rateLimited } from './limits.ts'

export interface ProfileDeps {
  readonly accounts: AccountStore
  readonly sessions: SessionStore
  readonly hasher: PasswordHasher
  readonly limiter: RateLimiter
  readonly limits: LimitSettings
  readonly clock: () => Date
}

const gone = () =>
  new Problem({ status: 404, code: 'ACCOUNT_NOT_FOUND', detail: 'the account of this token no longer exists' })

/** The caller's own account: view, edit, change password. */
export function createProfiles(deps: ProfileDeps) {
  const { accounts, clock } = deps

  async function view(userId: string): Promise<ProfileView> {
    const account = await accounts.findById(userId)
    if (!account) throw gone()
    return profileView(account)
  }

  return {
    view,

    async update(userId: string, changes: ProfileChanges): Promise<ProfileView> {
      if (!(await accounts.findById(userId))) throw gone()
      await accounts.updateProfile(userId, changes, clock())
      return view(userId)
    },

    /**
     * Needs the current password (a stolen access token alone cannot take the account over),
     * counts against the same limit as sign-in, and ends every other session of the account.
     */
    async changePassword(
      caller: Caller,
      input: { currentPassword: string; newPassword: string },
      clientAddress: string,
    ): Promise<void> {
      const account = await accounts.findById(caller.id)
      if (!account) throw gone()
      const verdict = await deps.limiter.hit(limitRules('login', account.email, clientAddress, deps.limits))
      if (!verdict.allowed) throw rateLimited(verdict)
      if (!(await deps.hasher.verify(account.passwordHash, input.currentPassword))) {
        throw new Problem({ status: 403, code: 'CURRENT_PASSWORD_WRONG', detail: 'the current password is wrong' })
      }
      await accounts.changePassword(account.id, await deps.hasher.hash(input.newPassword), clock())
      // The token was verified before this point; its session id only decides which session stays.
      const { sid } = decodeJwt(caller.token)
      await deps.sessions.revokeAllOf(
        account.id,
        'password-changed',
        clock(),
        typeof sid === 'string' ? sid : undefined,
      )
    },
  }
}

export type Profiles = ReturnType<typeof createProfiles>
