import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'

/** Who is calling, for per-address limits: the gateway's last `X-Forwarded-For` hop when trusted, else the socket. */
export function clientAddressOf(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const lastHop = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim()
    if (lastHop) return lastHop
  }
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket.remoteAddress ?? 'unknown'
}
