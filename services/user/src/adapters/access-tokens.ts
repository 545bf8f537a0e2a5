import { randomUUID } from 'node:crypto'
import type { Role } from '@timedeal/platform'
import { SignJWT } from 'jose'
import { SIGNING_ALGORITHM, type SigningKeyStore } from './signing-keys.ts'

export interface AccessTokenSubject {
  readonly userId: string
  readonly role: Role
  /** The session family the token belongs to (`sid`), so "sign out other sessions" can spare it. */
  readonly sessionId: string
}

export interface IssuedAccessToken {
  readonly token: string
  readonly expiresInSeconds: number
}

export interface AccessTokenIssuer {
  issue(subject: AccessTokenSubject): Promise<IssuedAccessToken>
}

/**
 * Short-lived access tokens in the shape the platform's verifier checks (RFC 9068 `at+jwt`):
 * EdDSA with the current key's `kid`, `iss`, `aud`, `sub` (the user id) and `role`.
 */
export function createAccessTokenIssuer(options: {
  readonly keys: SigningKeyStore
  readonly issuer: string
  readonly audience: string
  readonly ttlSeconds: number
  readonly clock: () => Date
}): AccessTokenIssuer {
  return {
    async issue(subject) {
      const key = await options.keys.signingKey()
      const issuedAt = Math.floor(options.clock().getTime() / 1000)
      const token = await new SignJWT({ role: subject.role, sid: subject.sessionId })
        .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(subject.userId)
        .setJti(randomUUID())
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + options.ttlSeconds)
        .sign(key.privateKey)
      return { token, expiresInSeconds: options.ttlSeconds }
    },
  }
}
