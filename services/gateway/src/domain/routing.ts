/** The services behind the gateway, each owning some path prefixes of the public API. */
export const UPSTREAM_NAMES = ['user', 'goods', 'order', 'payment', 'chat'] as const
export type UpstreamName = (typeof UPSTREAM_NAMES)[number]

/** The WebSocket endpoint of the chat, passed through to chat-service. */
export const CHAT_SOCKET_PATH = '/ws/chat'

/**
 * Which service owns which public prefix, as each service mounts its routes (`src/http/index.ts`).
 * A path belongs to a prefix when it is the prefix or continues it after a `/`.
 */
export const PUBLIC_PREFIXES: Readonly<Record<UpstreamName, readonly string[]>> = {
  user: ['/api/users', '/api/auth'],
  goods: ['/api/goods', '/api/wishlist'],
  order: ['/api/orders'],
  payment: ['/api/payments'],
  chat: ['/api/chat'],
}

/** The service that owns `path`, or undefined for a path no service serves publicly. */
export function upstreamOf(path: string): UpstreamName | undefined {
  if (!isPlainPath(path)) return undefined
  for (const name of UPSTREAM_NAMES) {
    if (PUBLIC_PREFIXES[name].some((prefix) => path === prefix || path.startsWith(`${prefix}/`))) return name
  }
  return undefined
}

/**
 * Only plain paths are routed: an encoded slash or dot segment could be read differently by the
 * service than by this table (`/api/orders/..%2f..%2finternal`), so such a path is never forwarded.
 */
function isPlainPath(path: string): boolean {
  if (/%2f|%5c|%2e|\\/i.test(path)) return false
  return !path.split('/').some((segment) => segment === '.' || segment === '..')
}

/** Paths of an OpenAPI document that the gateway routes to `name`: the ones an integrator can try through it. */
export const routedBy = (name: UpstreamName, path: string): boolean => upstreamOf(path) === name
