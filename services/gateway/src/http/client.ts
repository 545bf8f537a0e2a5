import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'

/** `https` when the browser's connection used TLS (here, or at the trusted proxy in front). */
export function forwardedProto(c: Context, trustProxy: boolean): 'http' | 'https' {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  if ((incoming?.socket as { encrypted?: boolean } | undefined)?.encrypted) return 'https'
  if (trustProxy) return c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https' ? 'https' : 'http'
  return 'http'
}

/** The host the browser addressed: the trusted proxy's `X-Forwarded-Host`, else `Host`. */
export function requestedHost(c: Context, trustProxy: boolean): string {
  return (
    (trustProxy ? c.req.header('x-forwarded-host')?.split(',')[0]?.trim() : undefined) || c.req.header('host') || ''
  )
}

/** The gateway's own origin as the browser sees it. */
export const ownOrigin = (c: Context, trustProxy: boolean): string =>
  `${forwardedProto(c, trustProxy)}://${requestedHost(c, trustProxy)}`
