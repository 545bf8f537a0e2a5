import { ROLES } from '@timedeal/platform'
import { z } from 'zod'

// What the caller's own profile looks like in an answer: `/me` and `/me/mypage` show the same one.

export const profile = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  phone: z.string().nullable(),
  address: z.string().nullable(),
  createdAt: z.string(),
})

/** The caller's token is valid but the account behind it is gone. */
export const ACCOUNT_GONE = { 404: ['ACCOUNT_NOT_FOUND'] } as const
