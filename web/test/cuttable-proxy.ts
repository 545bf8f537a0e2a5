/**
 * A TCP proxy the browser tests put between one browser and the gateway, to cut its network
 * and restore it. The browser's own offline mode leaves open WebSockets alone; cutting here
 * breaks them the way a lost network does, and refuses new connections until restored.
 */
import { connect, createServer, type Socket } from 'node:net'
import { listenOnFreePort } from '@timedeal/platform/testing'

export interface CuttableProxy {
  /** `http://127.0.0.1:<port>`: the origin the browser uses. */
  readonly url: string
  /** Every connection through the proxy is dropped, and new ones are closed at once. */
  cut(): void
  restore(): void
  close(): Promise<void>
}

export async function startCuttableProxy(targetPort: number): Promise<CuttableProxy> {
  const open = new Set<Socket>()
  let isCut = false
  const server = createServer((client) => {
    if (isCut) {
      client.destroy()
      return
    }
    const upstream = connect(targetPort, '127.0.0.1')
    for (const socket of [client, upstream]) {
      open.add(socket)
      socket.on('close', () => open.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream).pipe(client)
  })
  const port = await listenOnFreePort(server)
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      isCut = true
      for (const socket of open) socket.destroy()
    },
    restore() {
      isCut = false
    },
    async close() {
      for (const socket of open) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
