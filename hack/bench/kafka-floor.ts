/**
 * The durable hop alone, for `make bench-chat`: records produced with acks=all (gathered while a
 * request is on its way, as chat-service does) and consumed by a group at the end of the topic,
 * with no chat code around them. Its latency is the floor under chat-service's SEND → MESSAGE,
 * which RabbitMQ, routing in memory, does not pay.
 */
import { randomUUID } from 'node:crypto'
import { rawKafka, testKafkaNames, uniqueName } from '@timedeal/platform/testing'
import { percentile, round } from './figures.ts'

export interface FloorStep {
  readonly recordsPerSecond: number
  readonly sent: number
  readonly received: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly keptUp: boolean
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Doubles the rate from `firstRate` until p99 passes `p99LimitMs` (twice at one rate) or records
 * fall behind, at most `maxSteps` steps.
 */
export async function kafkaFloor(options: {
  readonly brokers: readonly string[]
  readonly firstRate: number
  readonly maxSteps: number
  readonly seconds: number
  readonly p99LimitMs: number
  readonly partitions: number
}): Promise<FloorStep[]> {
  const kafka = rawKafka('bench-chat-floor', options.brokers)
  const topic = testKafkaNames.topic(`bench.chat.floor.${randomUUID().slice(0, 8)}`)
  const admin = kafka.admin()
  await admin.connect()
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  // The same long-poll bound as the platform's consumers.
  const consumer = kafka.consumer({ groupId: uniqueName('bench-chat-floor'), maxWaitTimeInMs: 500 })
  const steps: FloorStep[] = []
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: options.partitions, replicationFactor: 1 }],
    })
    await producer.connect()
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: false })
    const tally = { step: -1, received: 0, latencies: [] as number[] }
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
    await consumer.run({
      partitionsConsumedConcurrently: options.partitions,
      eachMessage: async ({ message }) => {
        const [step, sentAt] = (message.value?.toString() ?? '').split('@')
        if (Number(step) !== tally.step) return
        tally.received++
        tally.latencies.push(performance.now() - Number(sentAt))
      },
    })
    await joined
    // The group starts at the end only once its first fetch has placed it there.
    await sleep(2000)
    let rate = options.firstRate
    let repeated = false
    for (let step = 0; steps.length < options.maxSteps; step++) {
      tally.step = step
      tally.received = 0
      tally.latencies = []
      const sent = await produceFor(producer, topic, step, rate, options.seconds)
      const drainUntil = performance.now() + 2000
      while (tally.received < sent && performance.now() < drainUntil) await sleep(20)
      const p99Ms = percentile(tally.latencies, 0.99)
      const result = {
        recordsPerSecond: rate,
        sent,
        received: tally.received,
        p50Ms: round(percentile(tally.latencies, 0.5), 2),
        p99Ms: round(p99Ms, 2),
        keptUp: tally.received >= sent * 0.99 && p99Ms <= options.p99LimitMs,
      }
      steps.push(result)
      if (result.keptUp) {
        rate *= 2
        repeated = false
        continue
      }
      // As for chat-service: all in but over the p99 limit is tried once more at the same rate.
      if (repeated || result.received < sent * 0.99) break
      repeated = true
    }
    return steps
  } finally {
    await consumer.disconnect().catch(() => undefined)
    await producer.disconnect().catch(() => undefined)
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined)
    await admin.disconnect().catch(() => undefined)
  }
}

/** Sends `rate` records a second for `seconds`; what falls due while a request is out goes in the next one. */
async function produceFor(
  producer: ReturnType<ReturnType<typeof rawKafka>['producer']>,
  topic: string,
  step: number,
  rate: number,
  seconds: number,
): Promise<number> {
  const started = performance.now()
  const until = started + seconds * 1000
  let sent = 0
  let inFlight: Promise<unknown> | undefined
  const pending: { key: string; value: string }[] = []
  while (performance.now() < until) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate)
    for (; sent < due; sent++) pending.push({ key: randomUUID(), value: `${step}@${performance.now()}` })
    if (!inFlight && pending.length > 0) {
      const messages = pending.splice(0)
      inFlight = producer.send({ topic, acks: -1, messages }).finally(() => {
        inFlight = undefined
      })
    }
    await sleep(1)
  }
  if (pending.length > 0) {
    await inFlight
    await producer.send({ topic, acks: -1, messages: pending.splice(0) })
  }
  await inFlight
  return sent
}
