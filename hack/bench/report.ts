/** Numbers and pictures of a benchmark run: latency percentiles, a bar chart, a short report. */

import { escapeXml, reportTail, round } from './figures.ts'

export interface PhaseResult {
  /** What was measured, for people. */
  readonly label: string
  readonly attempts: number
  readonly reserved: number
  readonly soldOut: number
  readonly errors: number
  readonly seconds: number
  /** Attempts answered per second, whatever the answer. */
  readonly attemptsPerSecond: number
  readonly reservedPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly stock: number
  /** Units handed out beyond the stock. Anything but 0 is a bug. */
  readonly oversold: number
  /** Where a write-behind follows the phase: 'level' once MySQL matches Redis, else what differs. */
  readonly writeBehind?: string
}

/** A horizontal bar per phase: attempts per second, with the latency percentiles beside it. */
export function barChartSvg(title: string, phases: readonly PhaseResult[]): string {
  const width = 860
  const barArea = 420
  const left = 250
  const rowHeight = 56
  const top = 60
  const height = top + rowHeight * phases.length + 40
  const max = Math.max(1, ...phases.map((phase) => phase.attemptsPerSecond))
  const colours = ['#2f6fdf', '#1d9e74', '#d0643a', '#8a5cd0']
  const rows = phases.map((phase, index) => {
    const y = top + index * rowHeight
    const length = Math.max(2, (phase.attemptsPerSecond / max) * barArea)
    const rate = Math.round(phase.attemptsPerSecond).toLocaleString('en-US')
    return [
      `<text x="${left - 12}" y="${y + 22}" text-anchor="end" font-size="14">${escapeXml(phase.label)}</text>`,
      `<rect x="${left}" y="${y + 6}" width="${length.toFixed(1)}" height="26" rx="3" fill="${colours[index % colours.length]}"/>`,
      `<text x="${(left + length + 8).toFixed(1)}" y="${y + 24}" font-size="13">${rate}/s</text>`,
      `<text x="${left}" y="${y + 48}" font-size="11" fill="#555">p50 ${round(phase.p50Ms)} ms · p99 ${round(phase.p99Ms)} ms · oversold ${phase.oversold}</text>`,
    ].join('\n  ')
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="20" y="32" font-size="18" font-weight="bold">${escapeXml(title)}</text>
  ${rows.join('\n  ')}
  <text x="20" y="${height - 14}" font-size="11" fill="#777">attempts answered per second (reserved or refused), higher is better</text>
</svg>
`
}

export function markdownReport(options: {
  readonly title: string
  readonly when: Date
  readonly environment: Record<string, string>
  readonly phases: readonly PhaseResult[]
  readonly ratios: Record<string, number>
  readonly chartFile: string
  readonly notes: readonly string[]
}): string {
  const header =
    '| approach | attempts | reserved | sold out | errors | attempts/s | reserved/s | p50 ms | p99 ms | oversold |'
  const rows = options.phases.map(
    (phase) =>
      `| ${phase.label} | ${phase.attempts} | ${phase.reserved} | ${phase.soldOut} | ${phase.errors} | ${round(phase.attemptsPerSecond, 0)} | ${round(phase.reservedPerSecond, 0)} | ${round(phase.p50Ms)} | ${round(phase.p99Ms)} | ${phase.oversold} |`,
  )
  return [
    `# ${options.title}`,
    '',
    `Run at ${options.when.toISOString()}.`,
    '',
    `![throughput](${options.chartFile})`,
    '',
    header,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    ...reportTail({ ...options, formatRatio: (value) => `${round(value)}×` }),
  ].join('\n')
}
