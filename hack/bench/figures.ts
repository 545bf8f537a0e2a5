/** Small helpers the benchmark reports share. */

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
