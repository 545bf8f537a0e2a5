import type { Role } from '@timedeal/platform'
import type { AccountStore } from './adapters/account-store.ts'
import type { PasswordHasher } from './adapters/password-hasher.ts'

export interface DemoAccount {
  /** Fixed, so other services' demo data (the seller's goods) can refer to these accounts. */
  readonly id: string
  readonly email: string
  readonly password: string
  readonly name: string
  readonly role: Role
  readonly phone: string
  readonly address: string
}

/** The demo seller's account id; goods-service's demo goods belong to it (`DEMO_SELLER_ID`). */
export const DEMO_SELLER_ID = '00000000-0000-4000-8000-00000000a001'

/** The accounts `make dev` creates, verified, so the platform can be tried at once. Listed in the README. */
export const DEMO_ACCOUNTS: readonly DemoAccount[] = [
  {
    id: DEMO_SELLER_ID,
    email: 'seller@timedeal.dev',
    password: 'timedeal-seller',
    name: 'Demo Seller',
    role: 'SELLER',
    phone: '+82 2-555-0100',
    address: '1 Market Street, Seoul',
  },
  ...[1, 2, 3].map((n) => ({
    id: `00000000-0000-4000-8000-00000000b00${n}`,
    email: `buyer${n}@timedeal.dev`,
    password: `timedeal-buyer${n}`,
    name: `Demo Buyer ${n}`,
    role: 'BUYER' as const,
    phone: `+82 10-555-010${n}`,
    address: `${n} Buyer Lane, Busan`,
  })),
]

/** Creates the demo accounts that are missing; existing ones (and their changes) are left alone. */
export async function seedDemoAccounts(
  accounts: AccountStore,
  hasher: PasswordHasher,
  now: Date = new Date(),
): Promise<string[]> {
  const created: string[] = []
  for (const demo of DEMO_ACCOUNTS) {
    if (await accounts.findByEmail(demo.email)) continue
    const { password, ...details } = demo
    await accounts.create({ ...details, passwordHash: await hasher.hash(password) }, now)
    created.push(demo.email)
  }
  return created
}
