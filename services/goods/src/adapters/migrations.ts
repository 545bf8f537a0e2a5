import type { Migration } from '@timedeal/platform'

/** Versioned schema changes of `timedeal_goods`, applied in order at start or by `main.ts migrate`. */
export const migrations: readonly Migration[] = []
