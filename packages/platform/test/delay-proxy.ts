/**
 * A small HTTP proxy a test or a benchmark puts in front of a real service to make it slow or
 * unreachable on demand, without touching the service: every request waits `delayMs` before it
 * is passed on; with `cut`, each connection is closed at once, as a crashed service's would be.
 */
import { Agent, createServer, request as httpRequest } from 'node:http'
import type { Socket } from 'node:net'
import { listenOnFreePort } from './processes.ts'

export interface DelayProxy {
  /** `http://127.0.0.1:<port>`: give this to the caller instead of the service's address. */
  readonly url: string
  /** Where requests go on to; set (or changed) at any time. */
  target: string | undefined
  /** Added before each request is passed on. */
  delayMs: number
  /** Close every connection at once, answering nothing (setting it closes the open ones too). */
  cut: boolean
  /** Requests that reached the proxy (a cut connection counts as one). */
  readonly requests: number
  close(): Promise<void>
}

export async function startDelayProxy(options: { target?: string; delayMs?: number } = {}): Promise<DelayProxy> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  const sockets = new Set<Socket>()
  let requests = 0
  let cut = false
  const server = createServer((incoming, outgoing) => {
    requests += 1
    if (cut) {
      incoming.socket.destroy()
      return
    }
    const target = proxy.target
    if (!target) {
      outgoing.writeHead(502).end()
      return
    }
    setTimeout(() => {
      const upstream = httpRequest(
        new URL(incoming.url ?? '/', target),
        { method: incoming.method, headers: incoming.headers, agent },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(outgoing)
        },
      )
      upstream.on('error', () => outgoing.destroy())
      incoming.pipe(upstream)
    }, proxy.delayMs)
  })
  server.on('connection', (socket) => {
    if (cut) {
      requests += 1
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const port = await listenOnFreePort(server)
  const proxy: DelayProxy = {
    url: `http://127.0.0.1:${port}`,
    target: options.target,
    delayMs: options.delayMs ?? 0,
    get cut() {
      return cut
    },
    set cut(value: boolean) {
      cut = value
      if (value) for (const socket of sockets) socket.destroy()
    },
    get requests() {
      return requests
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      agent.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return proxy
}
