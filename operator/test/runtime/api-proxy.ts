// A plain-HTTP proxy in front of the real API server that can fail on purpose: cut every
// connection, refuse new ones, end watch streams cleanly (as the server does at a watch's
// timeout), hold new watches back, and send the next watch from a version the server no
// longer keeps, so that the server itself answers 410 Gone.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { type RequestOptions, request } from 'node:https'
import type { Socket } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'

export interface ApiProxy {
  /** A kubeconfig that reaches the API server through the proxy (the proxy authenticates). */
  readonly kubeConfig: KubeConfig
  /** Every request path seen, in order. */
  readonly requests: string[]
  /** Destroys every open connection (the client sees errors) and, with `refuse`, every new one. */
  cut(options: { refuse: boolean }): void
  /** Answers nothing from now on, as a network that drops packets: requests hang. */
  stall(): void
  /** Lets connections through again (stalled requests are dropped). */
  restore(): void
  /** Ends every open watch stream cleanly, as the server does when a watch times out. */
  endWatches(): void
  /** Holds new watch requests back until {@link releaseWatches}. */
  holdWatches(): void
  /** Forwards the held watches; with `expired`, from resourceVersion 1, long compacted away. */
  releaseWatches(options: { expired: boolean }): void
  close(): Promise<void>
}

const isWatch = (path: string) => new URL(path, 'http://proxy').searchParams.get('watch') === 'true'

export async function startApiProxy(admin: KubeConfig): Promise<ApiProxy> {
  const cluster = admin.getCurrentCluster()
  assert.ok(cluster)
  const upstream = new URL(cluster.server)
  const tls: RequestOptions = {}
  await admin.applyToHTTPSOptions(tls)
  const sockets = new Set<Socket>()
  /** Open watch responses, with the server's answer once it came. */
  const watches = new Map<ServerResponse, IncomingMessage | undefined>()
  const held: (() => void)[] = []
  const requests: string[] = []
  let refusing = false
  let stalling = false
  const stalled: ServerResponse[] = []
  let holding = false
  let expireHeld = false

  const forward = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const headers = { ...req.headers }
    delete headers.host
    const outgoing = request(
      { ...tls, hostname: upstream.hostname, port: upstream.port, method: req.method, path, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        // Sent at once, as the API server does: a watch's client waits for them.
        res.flushHeaders()
        if (watches.has(res)) watches.set(res, answer)
        answer.pipe(res)
      },
    )
    outgoing.on('error', () => res.destroy())
    res.on('close', () => outgoing.destroy())
    req.pipe(outgoing)
  }

  const server = createServer((req, res) => {
    const path = req.url ?? '/'
    requests.push(path)
    if (refusing) {
      res.destroy()
      return
    }
    if (stalling) {
      stalled.push(res)
      return
    }
    if (!isWatch(path)) {
      forward(req, res, path)
      return
    }
    watches.set(res, undefined)
    res.on('close', () => watches.delete(res))
    const go = () => {
      const url = new URL(path, 'http://proxy')
      if (expireHeld) url.searchParams.set('resourceVersion', '1')
      forward(req, res, `${url.pathname}${url.search}`)
    }
    if (holding) held.push(go)
    else go()
  })
  server.on('connection', (socket) => {
    if (refusing) {
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address && typeof address === 'object')

  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'proxy', server: `http://127.0.0.1:${address.port}`, skipTLSVerify: true }],
    users: [{ name: 'proxied' }],
    contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxied' }],
    currentContext: 'proxy',
  })

  return {
    kubeConfig,
    requests,
    cut({ refuse }) {
      refusing = refuse
      for (const socket of sockets) socket.destroy()
    },
    stall() {
      stalling = true
    },
    restore() {
      refusing = false
      stalling = false
      for (const res of stalled.splice(0)) res.destroy()
    },
    endWatches() {
      for (const [res, answer] of watches) {
        answer?.unpipe(res)
        answer?.destroy()
        res.end()
      }
    },
    holdWatches() {
      holding = true
    },
    releaseWatches({ expired }) {
      holding = false
      expireHeld = expired
      for (const go of held.splice(0)) go()
      expireHeld = false
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of stalled.splice(0)) res.destroy()
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
