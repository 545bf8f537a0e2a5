/** Small helpers the benchmark reports share. */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bool, loadSettingsOrExit } from '@timedeal/platform'
import { z } from 'zod'

/** The value below which `share` of the samples fall (nearest rank); 0 for no samples. */
export function percentile(values: readonly number[], share: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(share * sorted.length) - 1))
  return sorted[index] ?? 0
}

export const round = (value: number, digits = 1): number => {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

export const escapeXml = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

/** The closing sections every benchmark report has: ratios, environment, notes. */
export function reportTail(options: {
  readonly ratios: Record<string, number>
  readonly environment: Record<string, string>
  readonly notes: readonly string[]
  readonly formatRatio: (value: number) => string
}): string[] {
  return [
    '## Ratios',
    '',
    ...Object.entries(options.ratios).map(([name, value]) => `- ${name}: **${options.formatRatio(value)}**`),
    '',
    '## Environment',
    '',
    ...Object.entries(options.environment).map(([name, value]) => `- ${name}: ${value}`),
    '',
    '## Notes',
    '',
    ...options.notes.map((note) => `- ${note}`),
    '',
  ]
}

/** The first value of a Prometheus metric in an exposition text. */
export function metricValue(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text)
  return match ? Number(match[1]) : undefined
}

/** Where every benchmark writes its chart and report. */
export const resultsFolder = fileURLToPath(new URL('../../bench-results/', import.meta.url))

/**
 * Writes `<name>-<time>.svg` and `<name>-<time>.md` under bench-results/ (the report links the
 * chart by its file name); returns the report's path.
 */
export async function saveReport(options: {
  readonly name: string
  readonly svg: string
  readonly markdown: (chartFile: string, when: Date) => string
}): Promise<string> {
  const when = new Date()
  const stamp = when.toISOString().replaceAll(':', '-').replace(/\..*$/, '')
  await mkdir(resultsFolder, { recursive: true })
  const chartFile = `${options.name}-${stamp}.svg`
  await writeFile(join(resultsFolder, chartFile), options.svg)
  const reportFile = join(resultsFolder, `${options.name}-${stamp}.md`)
  await writeFile(reportFile, options.markdown(chartFile, when))
  return reportFile
}

/** `BENCH_QUICK=true`: smaller default counts and phases, so a run checks a benchmark in about two minutes. */
export const quickMode = (): boolean => loadSettingsOrExit(z.object({ BENCH_QUICK: bool(false) })).BENCH_QUICK

/** A figure beside its bar: whether the run met it. A figure the run could not measure (null) is not met. */
export const goal = (value: number | null, bar: number, direction: 'atLeast' | 'atMost') => ({
  value,
  [direction]: bar,
  met: value !== null && (direction === 'atLeast' ? value >= bar : value <= bar),
})
