/** An optional instant (a Date or epoch ms) as the APIs show it: ISO 8601, or null while it has not happened. */
export function isoOrNull(value: Date | number | null): string | null {
  return value === null ? null : new Date(value).toISOString()
}

/** An optional DATETIME column as a Date (the driver may hand back a string), or null. */
export function dateOrNull(value: Date | string | null): Date | null {
  return value ? new Date(value) : null
}
