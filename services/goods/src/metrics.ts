import { Counter, Gauge, type Registry } from 'prom-client'

/** Every metric of goods-service (and of its ledger worker), registered once on the process's registry. */
export interface GoodsMetrics {
  readonly reservations: Counter<'outcome'>
  readonly releases: Counter<'reason'>
  readonly coldLoads: Counter
  readonly ledgerApplied: Counter
}

/**
 * Creates the metrics on the registry. Given `ledgerLag`, it also registers gauges of how far the
 * write-behind is behind, read at scrape time so the lag shown is the lag right now.
 */
export function createGoodsMetrics(registry: Registry, ledgerLag?: () => Promise<LedgerLag>): GoodsMetrics {
  if (ledgerLag) registerLedgerLag(registry, ledgerLag)
  return {
    reservations: new Counter({
      name: 'stock_reservations_total',
      help: 'Reservation attempts by outcome (RESERVED, REPLAYED or the refusal code).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    releases: new Counter({
      name: 'stock_releases_total',
      help: 'Reservations whose units went back to stock, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    coldLoads: new Counter({
      name: 'stock_cold_loads_total',
      help: 'Goods whose stock was not in Redis and was loaded from MySQL by this process.',
      registers: [registry],
    }),
    ledgerApplied: new Counter({
      name: 'stock_ledger_applied_entries_total',
      help: 'Ledger entries this process applied to MySQL (replays that changed nothing are not counted).',
      registers: [registry],
    }),
  }
}

/** How far the write-behind is behind the ledger stream. */
export interface LedgerLag {
  /** Entries appended to the stream and not yet applied to MySQL (undelivered plus pending). */
  readonly entries: number
  /** Age of the oldest entry not yet applied, in ms; 0 when nothing waits. */
  readonly oldestAgeMs: number
}

function registerLedgerLag(registry: Registry, lag: () => Promise<LedgerLag>): void {
  new Gauge({
    name: 'stock_ledger_lag_entries',
    help: 'Ledger entries in Redis not yet applied to MySQL by the write-behind.',
    registers: [registry],
    async collect() {
      this.set((await lag()).entries)
    },
  })
  new Gauge({
    name: 'stock_ledger_oldest_unapplied_seconds',
    help: 'Age of the oldest ledger entry not yet applied to MySQL.',
    registers: [registry],
    async collect() {
      this.set((await lag()).oldestAgeMs / 1000)
    },
  })
}
