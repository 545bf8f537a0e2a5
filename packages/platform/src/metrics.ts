import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'

/** A registry per service (not the global one), so tests can build several apps in one process. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry })
  return registry
}

export function httpDurationHistogram(registry: Registry): Histogram<'method' | 'route' | 'status'> {
  const name = 'http_server_request_duration_seconds'
  // Both listeners of a service record into the one histogram (internal routes keep their /internal paths).
  const existing = registry.getSingleMetric(name)
  if (existing) return existing as Histogram<'method' | 'route' | 'status'>
  return new Histogram({
    name,
    help: 'Duration of HTTP requests handled, by route template and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  })
}
