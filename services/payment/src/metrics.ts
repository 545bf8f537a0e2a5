import { Counter, type Registry } from 'prom-client'

export interface PaymentMetrics {
  /** Payment operations, by kind (charge, refund, void) and outcome. */
  readonly payments: Counter<'kind' | 'outcome'>
  /** Charge lookups at the provider, by the answer it gave. */
  readonly providerLookups: Counter<'answer'>
}

export function createPaymentMetrics(registry: Registry): PaymentMetrics {
  return {
    payments: new Counter({
      name: 'payments_total',
      help: 'Payment operations, by kind (charge, refund, void) and outcome.',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    providerLookups: new Counter({
      name: 'payment_provider_lookups_total',
      help: 'Charge lookups at the provider, by answer (absent, pending, captured, declined, failed).',
      labelNames: ['answer'],
      registers: [registry],
    }),
  }
}
