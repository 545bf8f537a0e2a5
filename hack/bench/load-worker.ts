/**
 * One thread of the load generator (see load.ts): sends its share of the requests over an undici
 * keep-alive pool, closed-loop (a number of clients, each waiting for its answer) or open-loop
 * (a fixed arrival rate, whatever the answers do), and posts back one record per request.
 */
import { randomUUID } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'
import { Pool } from 'undici'
import type { LoadResults, WorkerTask } from './load.ts'

const task = workerData as WorkerTask

/** A template split once into literal text and `{{name}}` slots. */
function compile(template: string): (index: number) => string {
  const parts = template.split(/\{\{(\w+)\}\}/)
  const rotations = task.plan.rotate ?? {}
  return (index) => {
    let text = ''
    for (let part = 0; part < parts.length; part += 1) {
      const piece = parts[part] ?? ''
      if (part % 2 === 0) text += piece
      else if (piece === 'uuid') text += randomUUID()
      else if (piece === 'index') text += String(index)
      else {
        const values = rotations[piece] ?? []
        text += values[index % values.length] ?? ''
      }
    }
    return text
  }
}

const body = compile(task.plan.body)
const headers = Object.entries(task.plan.headers).map(([name, value]) => [name, compile(value)] as const)
const pool = new Pool(task.plan.origin, { connections: task.connections, pipelining: 1 })

const results: LoadResults = { intendedAt: [], latencyMs: [], status: [], kept: [], cpuMicros: 0, seconds: 0 }

/** The field the plan keeps from a JSON answer, or the problem's code of a refusal. */
function keptOf(status: number, text: string): string {
  const field = status < 300 ? task.plan.keep : 'code'
  if (!field) return ''
  try {
    const value = (JSON.parse(text) as Record<string, unknown>)[field]
    return value === undefined ? '' : String(value)
  } catch {
    return ''
  }
}

/** Sends request `index`; its latency counts from `intendedMs` (performance clock). */
async function send(index: number, intendedMs: number, epochOfZero: number): Promise<void> {
  let status = 0
  let kept = ''
  try {
    const requestHeaders: Record<string, string> = { 'content-type': 'application/json' }
    for (const [name, value] of headers) requestHeaders[name] = value(index)
    const answer = await pool.request({
      path: task.plan.path,
      method: task.plan.method,
      headers: requestHeaders,
      body: body(index),
    })
    status = answer.statusCode
    kept = keptOf(status, await answer.body.text())
  } catch (error) {
    kept = error instanceof Error ? error.message.slice(0, 80) : String(error)
  }
  results.intendedAt.push(epochOfZero + intendedMs)
  results.latencyMs.push(performance.now() - intendedMs)
  results.status.push(status)
  results.kept.push(kept)
}

/** Each client sends its next request once the last one was answered. */
async function closedLoop(clients: number, total: number, deadline: number, epochOfZero: number): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total && performance.now() < deadline) {
        const index = task.first + next++ * task.stride
        await send(index, performance.now(), epochOfZero)
      }
    }),
  )
}

/**
 * Request i is due at `start + i / rate`. A request that is due goes out whatever is still in
 * flight, and its latency counts from when it was due, so a backlog shows as latency.
 */
async function openLoop(rate: number, seconds: number, start: number, epochOfZero: number): Promise<void> {
  const intervalMs = 1000 / rate
  const count = Math.floor(rate * seconds)
  const inFlight = new Set<Promise<void>>()
  for (let local = 0; local < count; local += 1) {
    const due = start + local * intervalMs
    const wait = due - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    const sending = send(task.first + local * task.stride, due, epochOfZero)
    inFlight.add(sending)
    void sending.finally(() => inFlight.delete(sending))
  }
  await Promise.all(inFlight)
}

async function main(): Promise<void> {
  const cpuBefore = process.threadCpuUsage()
  // Every thread starts at the same wall-clock instant; the performance clock times the requests.
  const startIn = Math.max(0, task.startAtEpochMs - Date.now())
  await new Promise((resolve) => setTimeout(resolve, startIn))
  const start = performance.now()
  const epochOfZero = Date.now() - start
  const { mode } = task
  if (mode.kind === 'closed') {
    await closedLoop(mode.clients, mode.total, start + mode.seconds * 1000, epochOfZero)
  } else {
    await openLoop(mode.rate, mode.seconds, start + task.offsetMs, epochOfZero)
  }
  results.seconds = (performance.now() - start) / 1000
  await pool.close()
  const cpu = process.threadCpuUsage(cpuBefore)
  results.cpuMicros = cpu.user + cpu.system
  parentPort?.postMessage(results)
}

void main()
