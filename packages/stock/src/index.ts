/**
 * Live stock in Redis: the key layout, the Lua scripts and a typed store over them. goods-service
 * and the operator's warm-up both use this package, so what one writes is what the other reads.
 */
export * from './keys.ts'
export * from './ledger.ts'
export * from './scripts.ts'
export * from './store.ts'
