import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface UserMetrics {
  readonly signIns: Counter<'outcome'>
  readonly signUps: Counter<'outcome'>
  readonly refreshes: Counter<'outcome'>
  readonly keyRotations: Counter<'trigger'>
  readonly myPageCalls: Counter<'dependency' | 'outcome'>
  readonly myPageCallSeconds: Histogram<'dependency'>
  readonly myPageBreakerState: Gauge<'dependency'>
}

/** The gauge's value of each breaker state. */
export const BREAKER_STATE_VALUES = { closed: 0, open: 1, half_open: 2 } as const

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
    myPageCalls: new Counter({
      name: 'user_mypage_dependency_calls_total',
      help: 'My-page calls to other services by outcome: ok, timeout, breaker_open, busy, unreachable, bad_status, bad_answer.',
      labelNames: ['dependency', 'outcome'],
      registers: [registry],
    }),
    myPageCallSeconds: new Histogram({
      name: 'user_mypage_dependency_duration_seconds',
      help: 'How long a my-page call to another service took, whatever its outcome (retries included).',
      labelNames: ['dependency'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2],
      registers: [registry],
    }),
    myPageBreakerState: new Gauge({
      name: 'user_mypage_dependency_breaker_state',
      help: "State of each dependency's circuit breaker: 0 closed, 1 open, 2 half-open.",
      labelNames: ['dependency'],
      registers: [registry],
    }),
  }
}
