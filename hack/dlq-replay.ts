/**
 * Sends dead-lettered events back to the topics they came from:
 *   hack/run.sh node hack/dlq-replay.ts timedeal.orders.dlq [--limit N]
 * Each record is replayed once: the replay's consumer group remembers where it stopped.
 */
import { parseArgs } from 'node:util'
import {
  createLogger,
  eventBusFromSettings,
  kafkaSettings,
  loadSettingsOrExit,
  routeProcessWarnings,
} from '@timedeal/platform'
import { z } from 'zod'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { limit: { type: 'string' }, 'idle-ms': { type: 'string' } },
})
const deadLetterTopic = positionals[0]
if (!deadLetterTopic?.endsWith('.dlq')) {
  process.stderr.write('usage: node hack/dlq-replay.ts <topic>.dlq [--limit N] [--idle-ms MS]\n')
  process.exit(2)
}
const limit = values.limit === undefined ? undefined : Number(values.limit)
if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
  process.stderr.write(`--limit must be a positive whole number, got ${values.limit}\n`)
  process.exit(2)
}

const settings = loadSettingsOrExit(z.object(kafkaSettings()))
const logger = createLogger('dlq-replay', 'warn')
routeProcessWarnings(logger)
const bus = eventBusFromSettings(settings, 'timedeal-dlq-replay', logger)
const { replayed } = await bus.replayDeadLetters({
  deadLetterTopic,
  ...(limit === undefined ? {} : { limit }),
  idleMs: values['idle-ms'] ? Number(values['idle-ms']) : 3_000,
})
process.stdout.write(`replayed ${replayed} record(s) from ${deadLetterTopic}\n`)
