/**
 * The load side of `make bench-chat`, run in worker threads so one event loop never carries all
 * the connections: each worker holds the sessions of its own rooms (a room's senders and
 * receivers share a worker, so a latency is read on the clock that stamped it), sends raw STOMP
 * frames at its share of a step's rate and counts the MESSAGE frames that come back. The frames
 * are scanned, not parsed: a bench body never holds a NUL, so a NUL ends a frame.
 */
import { parentPort } from 'node:worker_threads'
import { WebSocket } from 'ws'

/** One session to open: where, its CONNECT and SUBSCRIBE frames, and where it sends. */
export interface SessionPlan {
  readonly url: string
  readonly connectFrame: string
  readonly subscribeFrame: string
  readonly sendDestination: string
  /** Sessions of one room share this number (and a worker). */
  readonly room: number
}

export type ClientCommand =
  | { readonly type: 'open'; readonly plans: readonly SessionPlan[]; readonly concurrency: number }
  | {
      readonly type: 'step'
      readonly step: number
      readonly rate: number
      readonly seconds: number
      readonly drainMs: number
    }
  | { readonly type: 'quiet'; readonly quietMs: number; readonly giveUpMs: number }
  | { readonly type: 'held' }
  | { readonly type: 'close' }

export type ClientReply =
  | { readonly type: 'opened'; readonly held: number; readonly failures: number; readonly firstError?: string }
  | {
      readonly type: 'stepped'
      readonly sent: number
      readonly expected: number
      readonly delivered: number
      readonly latencies: Float64Array
      /** Sessions the server closed during the step. */
      readonly lost: number
    }
  | { readonly type: 'quiet' }
  | { readonly type: 'held'; readonly held: number }
  | { readonly type: 'closed' }

/** About as long as people type. */
export const BENCH_BODY = 'a chat message of an ordinary length, about as long as people type'
const STAMP = Buffer.from('\nbench-sent:')
const MESSAGE_HEADER = Buffer.from('\nmessage:')
const NUL = 0
const LF = 10
const CR = 13

interface Session {
  readonly socket: WebSocket
  readonly plan: SessionPlan
}

/** Deliveries of the current step and when anything last arrived. */
const tally = { step: -1, delivered: 0, latencies: [] as number[], lastArrival: 0, lost: 0 }
let sessions: Session[] = []

/** Splits `data` (after what a previous message left unfinished) into frames and reads each one. */
function frameReader(onFrame: (buffer: Buffer, start: number, end: number) => void) {
  let rest: Buffer | undefined
  return (data: Buffer) => {
    const buffer = rest ? Buffer.concat([rest, data]) : data
    let start = 0
    for (;;) {
      while (start < buffer.length && (buffer[start] === LF || buffer[start] === CR)) start++
      const end = buffer.indexOf(NUL, start)
      if (end < 0) break
      onFrame(buffer, start, end)
      start = end + 1
    }
    rest = start < buffer.length ? Buffer.from(buffer.subarray(start)) : undefined
  }
}

/** The value of the header that `marker` (`\nname:`) starts, if it is within the frame's headers. */
function headerValue(buffer: Buffer, start: number, end: number, marker: Buffer): string | undefined {
  const at = buffer.indexOf(marker, start)
  if (at < 0 || at >= end) return undefined
  const from = at + marker.length
  const lineEnd = buffer.indexOf(LF, from)
  return buffer.toString('latin1', from, lineEnd < 0 || lineEnd > end ? end : lineEnd)
}

function openSession(plan: SessionPlan): Promise<Session> {
  return new Promise<Session>((resolve, reject) => {
    const socket = new WebSocket(plan.url, ['v12.stomp'], { perMessageDeflate: false })
    const timer = setTimeout(() => fail(new Error('no RECEIPT for SUBSCRIBE within 30 s')), 30_000)
    let settled = false
    let subscribed = false
    const fail = (error: Error) => {
      clearTimeout(timer)
      if (!settled) {
        settled = true
        socket.terminate()
        reject(error)
      }
    }
    const read = frameReader((buffer, start, end) => {
      const first = buffer[start]
      if (first === 0x4d /* MESSAGE */) {
        tally.lastArrival = performance.now()
        const stamp = headerValue(buffer, start, end, STAMP)
        if (!stamp) return
        const at = stamp.indexOf('@')
        if (Number(stamp.slice(0, at)) !== tally.step) return
        tally.delivered++
        tally.latencies.push(tally.lastArrival - Number(stamp.slice(at + 1)))
      } else if (first === 0x52 /* RECEIPT */) {
        clearTimeout(timer)
        if (!settled) {
          settled = true
          subscribed = true
          resolve({ socket, plan })
        }
      } else if (first === 0x45 /* ERROR */) {
        fail(new Error(`ERROR: ${headerValue(buffer, start, end, MESSAGE_HEADER) ?? '(no message header)'}`))
      }
    })
    socket.on('message', (data: Buffer) => read(data))
    socket.once('error', (error) => fail(error))
    socket.once('close', () => {
      if (subscribed) tally.lost++
      fail(new Error('closed before SUBSCRIBE was acknowledged'))
    })
    socket.once('open', () => {
      socket.send(Buffer.from(plan.connectFrame))
      socket.send(Buffer.from(plan.subscribeFrame))
    })
  })
}

async function open(plans: readonly SessionPlan[], concurrency: number): Promise<ClientReply> {
  let next = 0
  let failures = 0
  let firstError: string | undefined
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < plans.length) {
        const plan = plans[next++] as SessionPlan
        try {
          sessions.push(await openSession(plan))
        } catch (error) {
          failures++
          firstError ??= error instanceof Error ? error.message : String(error)
        }
      }
    }),
  )
  return { type: 'opened', held: held(), failures, ...(firstError === undefined ? {} : { firstError }) }
}

const held = () => sessions.filter((session) => session.socket.readyState === WebSocket.OPEN).length
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** SENDs at `rate` per second for `seconds`, round-robin over the open sessions, then waits for the deliveries. */
async function step(command: Extract<ClientCommand, { type: 'step' }>): Promise<ClientReply> {
  const open = sessions.filter((session) => session.socket.readyState === WebSocket.OPEN)
  const perRoom = new Map<number, number>()
  for (const { plan } of open) perRoom.set(plan.room, (perRoom.get(plan.room) ?? 0) + 1)
  tally.step = command.step
  tally.delivered = 0
  tally.latencies = []
  tally.lost = 0
  let sent = 0
  let expected = 0
  // Each step starts its round-robin elsewhere, so no session is always first.
  let cursor = command.step * 7
  const started = performance.now()
  const until = started + command.seconds * 1000
  while (open.length > 0 && performance.now() < until) {
    const due = Math.floor(((performance.now() - started) / 1000) * command.rate)
    while (sent < due) {
      const { socket, plan } = open[cursor++ % open.length] as Session
      if (socket.readyState !== WebSocket.OPEN) continue
      socket.send(
        Buffer.from(
          `SEND\ndestination:${plan.sendDestination}\ncontent-type:text/plain\nbench-sent:${command.step}@${performance.now()}\n\n${BENCH_BODY}\0`,
        ),
      )
      sent++
      expected += perRoom.get(plan.room) ?? 0
    }
    await sleep(5)
  }
  const drainUntil = performance.now() + command.drainMs
  while (tally.delivered < expected && performance.now() < drainUntil) await sleep(20)
  const latencies = Float64Array.from(tally.latencies)
  tally.step = -1
  return { type: 'stepped', sent, expected, delivered: tally.delivered, latencies, lost: tally.lost }
}

/** Resolves once nothing arrived for `quietMs` (a backlog left by the step before has drained), or after `giveUpMs`. */
async function quiet(quietMs: number, giveUpMs: number): Promise<ClientReply> {
  const giveUp = performance.now() + giveUpMs
  while (performance.now() - tally.lastArrival < quietMs && performance.now() < giveUp) await sleep(100)
  return { type: 'quiet' }
}

function close(): ClientReply {
  for (const { socket } of sessions) socket.terminate()
  sessions = []
  return { type: 'closed' }
}

async function carryOut(command: ClientCommand): Promise<ClientReply> {
  switch (command.type) {
    case 'open':
      return open(command.plans, command.concurrency)
    case 'step':
      return step(command)
    case 'quiet':
      return quiet(command.quietMs, command.giveUpMs)
    case 'held':
      return { type: 'held', held: held() }
    case 'close':
      return close()
  }
}

parentPort?.on('message', (command: ClientCommand) => {
  void carryOut(command).then((reply) => parentPort?.postMessage(reply))
})
