import { z } from 'zod'
import { normalizeEmail, PASSWORD_MAX_LENGTH, passwordWeakness } from '../domain/accounts.ts'

// Input fields several resources take, validated once at the edge; the flows receive typed,
// normalized values.

export const email = z
  .string({ error: 'expected an e-mail address' })
  .trim()
  .toLowerCase()
  .pipe(z.email({ error: 'expected an e-mail address' }).max(254, 'expected at most 254 characters'))
  .transform(normalizeEmail)

export const newPassword = z.string({ error: 'expected a password' }).superRefine((value, ctx) => {
  const weakness = passwordWeakness(value)
  if (weakness) ctx.addIssue({ code: 'custom', message: weakness })
})

// Existing passwords are not re-judged, only bounded (argon2 would hash megabytes otherwise).
export const givenPassword = z
  .string({ error: 'expected a password' })
  .min(1)
  .max(PASSWORD_MAX_LENGTH * 4)

export const name = z.string({ error: 'expected a name' }).trim().min(1, 'expected a name').max(100)
