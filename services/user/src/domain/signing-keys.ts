/**
 * The life of a token-signing key: published in the JWKS ahead of use, signing while current,
 * then retired but still published until every token it signed has expired.
 */
export interface SigningKeyTimes {
  readonly kid: string
  readonly activatesAt: Date
  readonly retiresAt: Date | null
}

export interface KeyPolicy {
  /** How long a key signs before a scheduled rotation replaces it. */
  readonly lifetimeMs: number
  /**
   * How long a new key is published before it signs. Verifiers refetch the JWKS at most every
   * 30 s on an unknown key id, so publishing longer ahead than that means none ever rejects a
   * fresh token after a rotation.
   */
  readonly publishAheadMs: number
  readonly accessTokenTtlMs: number
}

/** Beyond the token lifetime a retired key stays published this long: clock skew, and replicas that still cached it. */
export const RETIRED_KEY_MARGIN_MS = 5 * 60_000

/** Retired keys are deleted this long after nobody can use them any more. */
export const RETIRED_KEY_KEEP_MS = 24 * 60 * 60_000

const isActive = (key: SigningKeyTimes, now: Date) =>
  key.activatesAt.getTime() <= now.getTime() && (key.retiresAt === null || key.retiresAt.getTime() > now.getTime())

const isPending = (key: SigningKeyTimes, now: Date) => key.activatesAt.getTime() > now.getTime()

const publishedUntil = (key: SigningKeyTimes, policy: KeyPolicy) =>
  key.retiresAt === null
    ? Number.POSITIVE_INFINITY
    : key.retiresAt.getTime() + policy.accessTokenTtlMs + RETIRED_KEY_MARGIN_MS

/** The key that signs now: the most recently activated one that has not retired. */
export function currentSigningKey<K extends SigningKeyTimes>(keys: readonly K[], now: Date): K | undefined {
  return keys
    .filter((key) => isActive(key, now))
    .reduce<K | undefined>((newest, key) => (!newest || key.activatesAt > newest.activatesAt ? key : newest), undefined)
}

/** What the JWKS lists: keys about to sign, the signing key, and retired keys whose tokens may still be alive. */
export function publishedKeys<K extends SigningKeyTimes>(keys: readonly K[], now: Date, policy: KeyPolicy): K[] {
  return keys.filter((key) => publishedUntil(key, policy) > now.getTime())
}

/** Keys nobody can use any more, kept a while for the record and then deleted. */
export function prunableKeys<K extends SigningKeyTimes>(keys: readonly K[], now: Date, policy: KeyPolicy): K[] {
  return keys.filter((key) => publishedUntil(key, policy) + RETIRED_KEY_KEEP_MS <= now.getTime())
}

/** A scheduled rotation is due when no key is waiting to take over and the signing key is old (or missing). */
export function rotationDue(keys: readonly SigningKeyTimes[], now: Date, policy: KeyPolicy): boolean {
  if (keys.some((key) => isPending(key, now))) return false
  const current = currentSigningKey(keys, now)
  return !current || now.getTime() - current.activatesAt.getTime() >= policy.lifetimeMs
}

export interface RotationPlan {
  /** When the new key starts signing. */
  readonly activatesAt: Date
  /** Keys to retire at that instant: every one not yet given a retirement. */
  readonly retiring: readonly string[]
}

/**
 * A rotation at `now`. The very first key signs at once (no verifier can hold an older set);
 * later ones wait out the publish-ahead time while the current key keeps signing.
 */
export function planRotation(keys: readonly SigningKeyTimes[], now: Date, policy: KeyPolicy): RotationPlan {
  const hasSigned = keys.some((key) => key.activatesAt.getTime() <= now.getTime())
  const activatesAt = new Date(now.getTime() + (hasSigned ? policy.publishAheadMs : 0))
  return { activatesAt, retiring: keys.filter((key) => key.retiresAt === null).map((key) => key.kid) }
}
