import { Counter, type Registry } from 'prom-client'

export interface UserMetrics {
  readonly signIns: Counter<'outcome'>
  readonly signUps: Counter<'outcome'>
  readonly refreshes: Counter<'outcome'>
  readonly keyRotations: Counter<'trigger'>
}

export function createUserMetrics(registry: Registry): UserMetrics {
  return {
    signIns: new Counter({
      name: 'user_sign_ins_total',
      help: 'Sign-in attempts by outcome: success, invalid_credentials, not_verified, rate_limited.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    signUps: new Counter({
      name: 'user_sign_ups_total',
      help: 'Sign-ups by outcome: created, repeated (code sent again), already_verified, rate_limited.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    refreshes: new Counter({
      name: 'user_token_refreshes_total',
      help: 'Refresh-token exchanges by outcome: rotated, reuse_detected, revoked, expired, unknown.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    keyRotations: new Counter({
      name: 'user_signing_key_rotations_total',
      help: 'Signing-key rotations by trigger: schedule or on_demand.',
      labelNames: ['trigger'],
      registers: [registry],
    }),
  }
}
