/**
 * WebSocket upgrades passed through to a service at the socket level: the client's upgrade
 * request is written to a fresh TCP connection to the service, and from then on bytes flow both
 * ways untouched. The service answers the handshake itself (101, its chosen subprotocol, or a
 * refusal such as 403 for a foreign Origin), so the gateway never terminates the WebSocket, never
 * re-frames a message and never needs to understand STOMP.
 *
 * The listener hands upgrades to this object the way it hands them to a `ws` server
 * (`handleUpgrade`), after the app's route for the path accepted the request; that route first
 * records the headers to add with {@link SocketPassthrough.prepare}.
 */
import { EventEmitter } from 'node:events'
import { type IncomingMessage, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { type Logger, type Problem, problemBody } from '@timedeal/platform'
import type { Upstream } from './upstreams.ts'

/** Headers the gateway sets on a passed-through upgrade; the client's own values are dropped. */
const REPLACED = new Set([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'traceparent',
  'x-request-id',
  'x-timedeal-internal',
])

interface Tunnel {
  close(): void
}

export interface SocketPassthroughOptions {
  readonly upstream: Upstream
  readonly logger: Logger
  /** Answers a failure to reach the service, as the HTTP routes would (502, 503 or 504). */
  readonly problemOf: (error: unknown) => Problem
  readonly onOpen?: () => void
  readonly onClose?: () => void
}

export class SocketPassthrough extends EventEmitter {
  /** What the listener checks before handing upgrades over. */
  readonly options = { noServer: true }
  /** Open tunnels; the listener closes them when it shuts down. */
  readonly clients = new Set<Tunnel>()
  readonly #headers = new WeakMap<IncomingMessage, Record<string, string>>()
  readonly #options: SocketPassthroughOptions

  constructor(options: SocketPassthroughOptions) {
    super()
    this.#options = options
  }

  /** Records the headers to set on this upgrade request when it is passed on. */
  prepare(request: IncomingMessage, headers: Record<string, string>): void {
    this.#headers.set(request, headers)
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, _accepted: unknown): void {
    const added = this.#headers.get(request)
    this.#headers.delete(request)
    if (!added) {
      // Only upgrades the route accepted arrive here; anything else is not ours to pass on.
      socket.destroy()
      return
    }
    void this.#pass(request, socket, head, added)
  }

  close(): void {
    for (const tunnel of this.clients) tunnel.close()
  }

  async #pass(request: IncomingMessage, client: Duplex, head: Buffer, added: Record<string, string>): Promise<void> {
    let service: Socket
    try {
      service = await this.#options.upstream.connect()
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'chat upgrade not passed on: the service cannot be reached')
      refuse(client, this.#options.problemOf(error), request.url ?? '/')
      return
    }
    if (client.destroyed) {
      service.destroy()
      return
    }
    service.setNoDelay(true)
    ;(client as Socket).setNoDelay?.(true)
    service.write(upgradeRequest(request, added))
    if (head.length > 0) service.write(head)

    let open = true
    const tunnel: Tunnel = {
      close: () => {
        if (!open) return
        open = false
        this.clients.delete(tunnel)
        client.destroy()
        service.destroy()
        this.#options.onClose?.()
      },
    }
    this.clients.add(tunnel)
    this.#options.onOpen?.()
    for (const side of [client, service]) {
      side.on('error', tunnel.close)
      side.on('close', tunnel.close)
    }
    // Half-closes are passed on too: a side that ended its writing lets the other finish.
    service.pipe(client)
    client.pipe(service)
  }
}

/** The client's request line and headers, with the gateway's forwarding headers in place of the client's. */
function upgradeRequest(request: IncomingMessage, added: Record<string, string>): string {
  const lines = [`${request.method ?? 'GET'} ${request.url ?? '/'} HTTP/1.1`]
  const raw = request.rawHeaders
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index] as string
    if (REPLACED.has(name.toLowerCase())) continue
    lines.push(`${name}: ${raw[index + 1]}`)
  }
  for (const [name, value] of Object.entries(added)) lines.push(`${name}: ${value}`)
  return `${lines.join('\r\n')}\r\n\r\n`
}

/** An HTTP answer written straight to the socket, since the upgrade was never answered. */
function refuse(socket: Duplex, problem: Problem, instance: string): void {
  if (socket.destroyed) return
  const body = JSON.stringify(problemBody(problem, instance))
  const headers = [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}`,
    'Content-Type: application/problem+json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(problem.headers).map(([name, value]) => `${name}: ${value}`),
  ]
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`)
}
