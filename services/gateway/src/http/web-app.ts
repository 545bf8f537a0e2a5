import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { extname, join, resolve, sep } from 'node:path'
import { Readable } from 'node:stream'
import { type AppEnv, Problem } from '@timedeal/platform'
import { type Context, Hono } from 'hono'
import { getMimeType } from 'hono/utils/mime'
import { isApiPath } from './edge.ts'

/** Vite names every file under assets/ by its content: a new build is a new name. */
const IMMUTABLE = 'public, max-age=31536000, immutable'
/** Everything else (index.html above all) is checked again each time, so a new build shows at once. */
const REVALIDATE = 'no-cache'

/**
 * The built web app (`web/dist`): its files, and `index.html` for the app's own routes (any
 * other GET that is not under /api or /ws and names no file), so a reload of a deep link works.
 * The folder is looked at on every request: `make build` while the gateway runs is enough.
 */
export function webAppRoutes(distDir: string): Hono<AppEnv> {
  const root = resolve(distDir)
  return new Hono<AppEnv>().all('*', async (c, next) => {
    if ((c.req.method !== 'GET' && c.req.method !== 'HEAD') || isApiPath(c.req.path)) return next()
    const index = join(root, 'index.html')
    if (!(await isFile(index))) {
      if (c.req.path !== '/') return next()
      throw new Problem({
        status: 404,
        code: 'WEB_APP_NOT_BUILT',
        detail: `the web app is not built: run \`make build\`, which writes ${distDir}; the API is at /api and its reference at /api/docs`,
      })
    }
    const file = fileOf(root, c.req.path)
    if (!file) return next()
    if (await isFile(file)) return serveFile(c, file, file.startsWith(join(root, 'assets') + sep))
    // A path with an extension names a file that does not exist; the rest are the app's routes.
    if (extname(c.req.path) !== '') return next()
    return serveFile(c, index, false)
  })
}

function fileOf(root: string, path: string): string | undefined {
  let decoded: string
  try {
    decoded = decodeURIComponent(path)
  } catch {
    return undefined
  }
  if (decoded.includes('\0')) return undefined
  const file = resolve(root, `.${decoded}`)
  return file === root || file.startsWith(root + sep) ? file : undefined
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (found) => found.isFile(),
    () => false,
  )
}

async function serveFile(c: Context, file: string, immutable: boolean): Promise<Response> {
  const found = await stat(file)
  const headers = {
    'content-type': getMimeType(file) ?? 'application/octet-stream',
    'content-length': String(found.size),
    'cache-control': immutable ? IMMUTABLE : REVALIDATE,
    'last-modified': found.mtime.toUTCString(),
  }
  const since = c.req.header('if-modified-since')
  if (since && Math.floor(found.mtimeMs / 1000) <= Math.floor(Date.parse(since) / 1000)) {
    return c.body(null, 304, { 'cache-control': headers['cache-control'], 'last-modified': headers['last-modified'] })
  }
  if (c.req.method === 'HEAD') return c.body(null, 200, headers)
  return c.body(Readable.toWeb(createReadStream(file)) as ReadableStream, 200, headers)
}
