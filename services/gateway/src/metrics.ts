/** Every metric the gateway exports besides the platform's own (HTTP requests), created once per registry. */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { UpstreamName } from './domain/routing.ts'

export interface GatewayMetrics {
  readonly upstreamFailures: Counter<'upstream' | 'kind'>
  readonly breakerOpen: Gauge<'upstream'>
  readonly rateLimited: Counter<'scope'>
  readonly rateLimitSkipped: Counter<'scope'>
  readonly openTunnels: Gauge
}

export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  const registers = [registry]
  return {
    upstreamFailures: new Counter({
      name: 'gateway_upstream_failures_total',
      help: 'Requests a service did not answer, by service and why (unreachable, timeout, breaker-open).',
      labelNames: ['upstream', 'kind'],
      registers,
    }),
    breakerOpen: new Gauge({
      name: 'gateway_upstream_breaker_open',
      help: '1 while requests to a service are refused at once after repeated failures.',
      labelNames: ['upstream'],
      registers,
    }),
    rateLimited: new Counter({
      name: 'gateway_rate_limited_total',
      help: 'Requests refused with 429, by the limit they were over (address, user).',
      labelNames: ['scope'],
      registers,
    }),
    rateLimitSkipped: new Counter({
      name: 'gateway_rate_limit_skipped_total',
      help: 'Requests let through uncounted because Redis failed or was slow, by limit.',
      labelNames: ['scope'],
      registers,
    }),
    openTunnels: new Gauge({
      name: 'gateway_websocket_tunnels',
      help: 'WebSocket connections passed through to chat-service now.',
      registers,
    }),
  }
}

export const breakerChanged = (metrics: GatewayMetrics) => (upstream: UpstreamName, open: boolean) =>
  metrics.breakerOpen.set({ upstream }, open ? 1 : 0)
