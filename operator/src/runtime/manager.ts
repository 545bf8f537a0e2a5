import type { Logger } from '@timedeal/platform'
import type { OperatorSettings } from '../settings.ts'

/** Runs the operator until a signal: informers, work queue, leader election, health and metrics. */
export async function runOperator(settings: OperatorSettings, logger: Logger): Promise<void> {
  logger.fatal({ port: settings.OPERATOR_PORT }, 'the operator runtime is not built yet')
  process.exitCode = 1
}
