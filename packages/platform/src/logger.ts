import { pino } from 'pino'

export type Logger = pino.Logger
export type LogLevel = pino.LevelWithSilent

/** The one logger: JSON lines on stdout (or `destination`), ISO times, the service name on every line. */
export function createLogger(service: string, level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }
  return destination ? pino(options, destination) : pino(options)
}

/**
 * Sends process warnings to the structured log instead of bare stderr lines. kafkajs 2.2
 * schedules a timer with a negative delay on Node 24 (harmless: it fires at once), which Node
 * reports as TimeoutNegativeWarning on every connection; that one is dropped.
 */
export function routeProcessWarnings(logger: Logger): void {
  process.removeAllListeners('warning')
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') return
    logger.warn({ warning: warning.name, detail: warning.message }, 'process warning')
  })
}
