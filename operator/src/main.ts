import { parseArgs } from 'node:util'
import { createLogger, type Logger, loadSettingsOrExit, orExit, routeProcessWarnings } from '@timedeal/platform'
import { checkSettings, type OperatorSettings, settingsSchema } from './settings.ts'

const usage = `usage:
  timedeal-operator run                       watch the cluster and reconcile (leader election, metrics on OPERATOR_PORT)
  timedeal-operator apply -f <file|dir>...    reconcile the resources in YAML files once, without Kubernetes
        [--wait]                              wait for StockWarmups whose time has not come
        [--topic-prefix <prefix>]             put before every topic name (default KAFKA_TOPIC_PREFIX)
`

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}`)
  process.exit(2)
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(usage)
    return
  }
  if (command !== 'run' && command !== 'apply') fail(`unknown command '${command}': expected run or apply`)
  const settings = orExit(() => checkSettings(loadSettingsOrExit(settingsSchema)))
  const logger = createLogger(settings.SERVICE_NAME, settings.LOG_LEVEL)
  routeProcessWarnings(logger)
  if (command === 'run') {
    if (rest.length > 0) fail(`run takes no arguments, got '${rest.join(' ')}'`)
    const { runOperator } = await import('./runtime/run.ts')
    await runOperator(settings, logger)
    return
  }
  process.exitCode = await apply(rest, settings, logger)
}

async function apply(args: string[], settings: OperatorSettings, logger: Logger): Promise<number> {
  let parsed: ReturnType<typeof parseApplyArgs>
  try {
    parsed = parseApplyArgs(args)
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error))
  }
  const files = parsed.values.file ?? []
  if (files.length === 0) fail('apply needs at least one -f <file|dir>')
  // Loaded only for `apply`, so `run` never pulls in the file-reading side (and the reverse).
  const { applyCommand } = await import('./cli/apply.ts')
  return applyCommand(
    {
      files,
      wait: parsed.values.wait ?? false,
      topicPrefix: parsed.values['topic-prefix'] ?? settings.KAFKA_TOPIC_PREFIX,
    },
    settings,
    logger,
  )
}

const parseApplyArgs = (args: string[]) =>
  parseArgs({
    args,
    options: {
      file: { type: 'string', short: 'f', multiple: true },
      wait: { type: 'boolean' },
      'topic-prefix': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  })

await main(process.argv.slice(2))
