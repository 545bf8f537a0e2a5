/** The report and chart of `make bench-chat`. */
import type { ProfileSummary, TimeShare } from './cpu-profile.ts'
import { escapeXml, reportTail } from './figures.ts'
import type { FloorStep } from './kafka-floor.ts'

export interface StepResult {
  readonly offeredSendsPerSecond: number
  readonly sent: number
  readonly delivered: number
  readonly expected: number
  readonly deliveriesPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly keptUp: boolean
  /** CPU cores the server's processes and the load generator used during the step. */
  readonly serverCores: number
  readonly clientCores: number
  /** Connections the server closed during the step. */
  readonly lost: number
}

export interface TargetResult {
  readonly label: string
  readonly kind: 'chat' | 'rabbitmq'
  readonly connections: number
  readonly held: number
  /** Connections still open once the steps were done. */
  readonly heldAtEnd: number
  readonly openSeconds: number
  readonly rssPerConnectionKb: number
  /** The machine's one-minute load average around the steps (other work on the same cores). */
  readonly loadAverage: number
  readonly steps: readonly StepResult[]
  /** The best step that kept up (p99 within the limit and every delivery in), if any. */
  readonly best: StepResult | undefined
  /** The highest rate whose deliveries all arrived, whatever its p99: throughput apart from the latency limit. */
  readonly deliveredInFullPerSecond: number
  /** The step run under the CPU profiler at the highest offered rate (not counted in the figures). */
  readonly profiled?: { readonly step: StepResult; readonly summary: ProfileSummary; readonly files: readonly string[] }
}

export interface Goal {
  readonly name: string
  readonly met: boolean
  readonly detail: string
}

const COLOURS: Record<string, string> = {
  'chat-service ×1': '#2e86de',
  'chat-service ×2': '#54a0ff',
  'RabbitMQ Web-STOMP': '#e67e22',
}

/** Bars of the best delivered rate, grouped by the number of connections. */
export function chartSvg(results: readonly TargetResult[], p99LimitMs: number): string {
  const width = 980
  const rowHeight = 34
  const counts = [...new Set(results.map((result) => result.connections))]
  const max = Math.max(1, ...results.map((result) => result.best?.deliveriesPerSecond ?? 0))
  const parts: string[] = []
  let y = 50
  for (const count of counts) {
    parts.push(
      `<text x="10" y="${y + 14}" font-size="14" font-weight="bold">${count.toLocaleString('en')} connections</text>`,
    )
    y += 24
    for (const result of results.filter((entry) => entry.connections === count)) {
      const value = result.best?.deliveriesPerSecond ?? 0
      const barWidth = Math.max(1, Math.round((value / max) * 460))
      const caption = result.best
        ? `${Math.round(value).toLocaleString('en')} /s · p99 ${result.best.p99Ms} ms · ${result.rssPerConnectionKb} KiB/conn`
        : 'no step kept up'
      parts.push(
        `<text x="20" y="${y + 17}" font-size="13">${escapeXml(result.label)}</text>`,
        `<rect x="190" y="${y}" width="${barWidth}" height="24" fill="${COLOURS[result.label] ?? '#888'}"/>`,
        `<text x="${198 + barWidth}" y="${y + 17}" font-size="12">${escapeXml(caption)}</text>`,
      )
      y += rowHeight
    }
    y += 10
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="24" font-size="16" font-weight="bold">Chat deliveries per second that keep up (p99 ≤ ${p99LimitMs} ms)</text>`,
    ...parts,
    '</svg>',
  ].join('\n')
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`

function shareTable(title: string, rows: readonly TimeShare[]): string[] {
  return [
    `| ${title} | ms | share of busy |`,
    '| --- | ---: | ---: |',
    ...rows.map((row) => `| \`${row.name.replaceAll('|', '\\|')}\` | ${row.ms} | ${percent(row.share)} |`),
    '',
  ]
}

function profileSection(result: TargetResult): string[] {
  if (!result.profiled) return []
  const { step, summary, files } = result.profiled
  return [
    `### ${result.label}, ${result.connections.toLocaleString('en')} connections, ${step.offeredSendsPerSecond} SEND/s`,
    '',
    `During the profiled step: ${step.deliveriesPerSecond} deliveries/s (${step.delivered} / ${step.expected}), p99 ${step.p99Ms} ms; ` +
      `${summary.busyMs} ms busy of ${summary.sampledMs} ms sampled (${summary.busyCores} cores busy). Profiles: ${files.map((file) => `\`${file}\``).join(', ')} (open in Chrome DevTools or speedscope).`,
    '',
    ...shareTable('package (self time, with the Node and native code it called)', summary.byArea),
    ...shareTable('function (self time)', summary.bySelf),
    ...shareTable('project function (total time, callees included)', summary.byTotalOwnCode),
  ]
}

export function markdown(options: {
  readonly results: readonly TargetResult[]
  readonly goals: readonly Goal[]
  readonly floor: readonly FloorStep[]
  readonly ratios: Record<string, number>
  readonly environment: Record<string, string>
  readonly notes: readonly string[]
  readonly chartFile: string
  readonly when: Date
}): string {
  const { results } = options
  return [
    '# Chat benchmark',
    '',
    `Run at ${options.when.toISOString()}.`,
    '',
    `![deliveries per second](${options.chartFile})`,
    '',
    '## Goals',
    '',
    '| goal | met | measured |',
    '| --- | --- | --- |',
    ...options.goals.map((goal) => `| ${goal.name} | ${goal.met ? 'yes' : '**no**'} | ${goal.detail} |`),
    '',
    '## Best step of each target',
    '',
    '| connections | target | held (start / end) | opened in | RSS / connection | best deliveries/s | p50 ms | p99 ms | server CPU cores | delivered in full, any p99 | load |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (result) =>
        `| ${result.connections} | ${result.label} | ${result.held} / ${result.heldAtEnd} | ${result.openSeconds} s | ${result.rssPerConnectionKb} KiB | ${result.best?.deliveriesPerSecond ?? '–'} | ${result.best?.p50Ms ?? '–'} | ${result.best?.p99Ms ?? '–'} | ${result.best?.serverCores ?? '–'} | ${result.deliveredInFullPerSecond}/s | ${result.loadAverage} |`,
    ),
    '',
    '## Steps',
    '',
    '| connections | target | offered SEND/s | deliveries/s | delivered / expected | p50 ms | p99 ms | server CPU | client CPU | lost conns | kept up |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...results.flatMap((result) =>
      result.steps.map(
        (step) =>
          `| ${result.connections} | ${result.label} | ${step.offeredSendsPerSecond} | ${step.deliveriesPerSecond} | ${step.delivered} / ${step.expected} | ${step.p50Ms} | ${step.p99Ms} | ${step.serverCores} | ${step.clientCores} | ${step.lost} | ${step.keptUp ? 'yes' : 'no'} |`,
      ),
    ),
    '',
    '## The durable hop alone: Kafka produce (acks=all) → consume, no chat code',
    '',
    ...(options.floor.length === 0
      ? ['Not measured in this run.', '']
      : [
          '| records/s | received / sent | p50 ms | p99 ms | kept up |',
          '| ---: | ---: | ---: | ---: | --- |',
          ...options.floor.map(
            (step) =>
              `| ${step.recordsPerSecond} | ${step.received} / ${step.sent} | ${step.p50Ms} | ${step.p99Ms} | ${step.keptUp ? 'yes' : 'no'} |`,
          ),
          '',
        ]),
    '## CPU profiles of chat-service at the highest step',
    '',
    ...(results.some((result) => result.profiled)
      ? results.flatMap(profileSection)
      : ['Not profiled in this run.', '']),
    ...reportTail({
      ratios: options.ratios,
      environment: options.environment,
      notes: options.notes,
      formatRatio: (value) => String(value),
    }),
  ].join('\n')
}
