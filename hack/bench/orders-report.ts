/** The figures of `make bench-orders` as people read them: percentiles, an SVG chart, a short report. */

import { escapeXml, reportTail, round } from './figures.ts'

export interface Bar {
  readonly label: string
  readonly perSecond: number
  readonly note: string
}

export interface LatencyRow {
  readonly label: string
  readonly p50Ms: number
  readonly p99Ms: number
}

/** Throughput bars (one scale) above latency bars (p50 solid, p99 light; one scale). */
export function ordersChartSvg(title: string, bars: readonly Bar[], latencies: readonly LatencyRow[]): string {
  const width = 900
  const left = 300
  const span = 440
  const top = 64
  const barRow = 50
  const latencyTop = top + barRow * bars.length + 50
  const latencyRow = 44
  const height = latencyTop + latencyRow * latencies.length + 40
  const maxRate = Math.max(1, ...bars.map((bar) => bar.perSecond))
  const maxMs = Math.max(1, ...latencies.map((row) => row.p99Ms))
  const colours = ['#2f6fdf', '#1d9e74', '#d0643a', '#8a5cd0']
  const throughput = bars.map((bar, index) => {
    const y = top + index * barRow
    const length = Math.max(2, (bar.perSecond / maxRate) * span)
    return [
      `<text x="${left - 12}" y="${y + 20}" text-anchor="end" font-size="14">${escapeXml(bar.label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${length.toFixed(1)}" height="24" rx="3" fill="${colours[index % colours.length]}"/>`,
      `<text x="${(left + length + 8).toFixed(1)}" y="${y + 21}" font-size="13">${Math.round(bar.perSecond).toLocaleString('en-US')}/s</text>`,
      `<text x="${left}" y="${y + 42}" font-size="11" fill="#555">${escapeXml(bar.note)}</text>`,
    ].join('\n  ')
  })
  const latency = latencies.map((row, index) => {
    const y = latencyTop + index * latencyRow
    const p99 = Math.max(2, (row.p99Ms / maxMs) * span)
    const p50 = Math.max(2, (row.p50Ms / maxMs) * span)
    return [
      `<text x="${left - 12}" y="${y + 20}" text-anchor="end" font-size="14">${escapeXml(row.label)}</text>`,
      `<rect x="${left}" y="${y + 6}" width="${p99.toFixed(1)}" height="20" rx="3" fill="#f0b27a"/>`,
      `<rect x="${left}" y="${y + 6}" width="${p50.toFixed(1)}" height="20" rx="3" fill="#c0392b"/>`,
      `<text x="${(left + p99 + 8).toFixed(1)}" y="${y + 21}" font-size="12">p50 ${round(row.p50Ms)} ms · p99 ${round(row.p99Ms)} ms</text>`,
    ].join('\n  ')
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="20" y="32" font-size="18" font-weight="bold">${escapeXml(title)}</text>
  <text x="20" y="52" font-size="12" fill="#555">per second, higher is better</text>
  ${throughput.join('\n  ')}
  <text x="20" y="${latencyTop - 14}" font-size="12" fill="#555">latency (dark: p50, light: p99), lower is better</text>
  ${latency.join('\n  ')}
</svg>
`
}

export function ordersMarkdown(options: {
  readonly title: string
  readonly when: Date
  readonly chartFile: string
  readonly figures: Record<string, number | string | boolean | null>
  readonly ratios: Record<string, number>
  readonly environment: Record<string, string>
  readonly notes: readonly string[]
}): string {
  return [
    `# ${options.title}`,
    '',
    `Run at ${options.when.toISOString()}.`,
    '',
    `![orders](${options.chartFile})`,
    '',
    '| figure | value |',
    '|---|---:|',
    ...Object.entries(options.figures).map(([name, value]) => `| ${name} | ${value} |`),
    '',
    ...reportTail({ ...options, formatRatio: (value) => String(round(value, 3)) }),
  ].join('\n')
}
