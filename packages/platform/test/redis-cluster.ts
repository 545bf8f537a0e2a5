/**
 * A Redis Cluster of three primaries for tests and benchmarks, from the same Debian `redis-server`
 * as the shared Redis, on private ports of loopback (never 6379), data and logs under the state
 * folder. Starting is idempotent: a cluster already answering on those ports (started by the
 * run's global setup, an earlier suite or a benchmark) is reused, not started twice.
 *
 *   ports      TIMEDEAL_REDIS_CLUSTER_PORT (default 17001) and the next two; each node's cluster
 *              bus listens 10000 above, so all stay below 32768
 *   data       .state/data/redis-cluster/<port>/ (nodes.conf, no persistence: test data only)
 *   logs       .state/logs/redis-cluster-<port>.log
 *   pids       .state/run/redis-cluster-<port>.pid, so only the processes started here are stopped
 */
import { execFile, spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const repoRoot = resolve(import.meta.dirname, '../../..')
const stateDir = () => resolve(repoRoot, process.env.TIMEDEAL_STATE_DIR ?? '.state')
const HOST = '127.0.0.1'
const PRIMARIES = 3
const START_TIMEOUT_MS = 30_000

export interface TestRedisCluster {
  /** `host:port` of every primary: the value of `REDIS_CLUSTER_NODES`. */
  readonly nodes: readonly string[]
  /** True when this call started the servers (and its caller should stop them). */
  readonly started: boolean
}

export function testClusterPorts(env: NodeJS.ProcessEnv = process.env): number[] {
  const base = Number(env.TIMEDEAL_REDIS_CLUSTER_PORT ?? 17001)
  if (!Number.isInteger(base) || base < 1024 || base + PRIMARIES - 1 + 10_000 >= 32_768) {
    throw new Error(`TIMEDEAL_REDIS_CLUSTER_PORT=${base}: expected a port from 1024 with port + 10002 below 32768`)
  }
  return Array.from({ length: PRIMARIES }, (_, index) => base + index)
}

const pidFile = (port: number) => join(stateDir(), 'run', `redis-cluster-${port}.pid`)

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 10_000 })
  return stdout
}

const answers = (port: number) =>
  cli(port, 'ping').then(
    (out) => out.trim() === 'PONG',
    () => false,
  )

async function clusterReady(ports: readonly number[]): Promise<boolean> {
  for (const port of ports) {
    const info = await cli(port, 'cluster', 'info').catch(() => '')
    if (!/cluster_state:ok/.test(info) || !new RegExp(`cluster_known_nodes:${ports.length}\\b`).test(info)) {
      return false
    }
  }
  return true
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`the test Redis Cluster: ${what} within ${START_TIMEOUT_MS} ms`)
    await new Promise((done) => setTimeout(done, 100))
  }
}

function startNode(port: number): void {
  const data = join(stateDir(), 'data', 'redis-cluster', String(port))
  // A fresh node each start: a cluster of test data is rebuilt, never recovered.
  rmSync(data, { recursive: true, force: true })
  mkdirSync(data, { recursive: true })
  mkdirSync(join(stateDir(), 'run'), { recursive: true })
  mkdirSync(join(stateDir(), 'logs'), { recursive: true })
  const log = openSync(join(stateDir(), 'logs', `redis-cluster-${port}.log`), 'w')
  const args = ['--bind', HOST, '--port', String(port), '--dir', data, '--cluster-enabled', 'yes']
  args.push('--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000')
  args.push('--appendonly', 'no', '--save', '', '--daemonize', 'no', '--logfile', '', '--maxclients', '10000')
  const server = spawn('redis-server', args, { detached: true, stdio: ['ignore', log, log] })
  closeSync(log)
  server.unref()
  writeFileSync(pidFile(port), String(server.pid))
}

/**
 * Starts the three primaries and joins them into one cluster covering every slot, unless such a
 * cluster already answers on the ports. A node answering alone (a cluster half started) is an
 * error that names the port, not something to guess about.
 */
export async function startTestRedisCluster(env: NodeJS.ProcessEnv = process.env): Promise<TestRedisCluster> {
  const ports = testClusterPorts(env)
  const nodes = ports.map((port) => `${HOST}:${port}`)
  if (await clusterReady(ports)) return { nodes, started: false }
  const lock = join(stateDir(), 'run', 'redis-cluster.lock')
  mkdirSync(join(stateDir(), 'run'), { recursive: true })
  // Test files start side by side; one of them creates the cluster, the others wait for it.
  let held = false
  try {
    // A lock left by a process killed while creating is older than any creation takes.
    if (Date.now() - statSync(lock).mtimeMs > 2 * START_TIMEOUT_MS) rmSync(lock, { force: true })
  } catch {
    // No lock.
  }
  try {
    closeSync(openSync(lock, 'wx'))
    held = true
  } catch {
    await waitFor('another process is creating it and it is not ready', () => clusterReady(ports))
    return { nodes, started: false }
  }
  try {
    for (const port of ports) {
      if (await answers(port)) {
        throw new Error(
          `port ${port} answers but is not part of a ready test cluster: stop it or set TIMEDEAL_REDIS_CLUSTER_PORT`,
        )
      }
    }
    for (const port of ports) startNode(port)
    for (const port of ports) await waitFor(`port ${port} did not answer`, () => answers(port))
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: START_TIMEOUT_MS,
    })
    await waitFor('the slots were not all served', () => clusterReady(ports))
    return { nodes, started: true }
  } finally {
    if (held) unlinkSync(lock)
  }
}

/** Stops the nodes this state folder's pid files name (and only those). */
export async function stopTestRedisCluster(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  for (const port of testClusterPorts(env)) {
    let pid: number
    try {
      pid = Number(readFileSync(pidFile(port), 'utf8'))
    } catch {
      continue
    }
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // Already gone.
    }
    rmSync(pidFile(port), { force: true })
  }
}

/**
 * For a suite: the cluster's nodes, started if need be, and `release`, which stops it only if
 * this call started it (a full run's cluster is started and stopped by the run's global setup).
 */
export async function useTestRedisCluster(): Promise<{ nodes: readonly string[]; release(): Promise<void> }> {
  const cluster = await startTestRedisCluster()
  return { nodes: cluster.nodes, release: () => (cluster.started ? stopTestRedisCluster() : Promise.resolve()) }
}
