export * from './cloudevents.ts'
export * from './events.ts'
export * from './stock-signals.ts'
export * from './topics.ts'
