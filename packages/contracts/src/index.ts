export * from './cloudevents.ts'
export * from './events.ts'
export * from './topics.ts'
