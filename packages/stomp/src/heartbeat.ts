/**
 * Heart-beat arithmetic of STOMP 1.1/1.2 ("Heart-beating"). Each side announces `x,y`: x is the
 * smallest interval at which it can send, y the interval at which it wants to receive; 0 means
 * "cannot send" or "does not want any".
 */
export interface HeartBeat {
  /** Milliseconds between beats this side can send (0: none). */
  readonly send: number
  /** Milliseconds between beats this side wants to receive (0: none). */
  readonly receive: number
}

export const NO_HEART_BEAT: HeartBeat = { send: 0, receive: 0 }

/** The negotiated intervals from the server's point of view; 0 disables that direction. */
export interface HeartBeatPlan {
  /** The server sends something at least this often. */
  readonly serverSendsEvery: number
  /** The server expects something from the client at least this often. */
  readonly clientSendsEvery: number
}

/**
 * Reads a `heart-beat` header value; absent means `0,0`. Returns undefined for anything that is not
 * two non-negative integers, so the caller can answer with an ERROR.
 */
export function parseHeartBeat(value: string | undefined): HeartBeat | undefined {
  if (value === undefined) return NO_HEART_BEAT
  const match = /^\s*(\d{1,9})\s*,\s*(\d{1,9})\s*$/.exec(value)
  if (!match) return undefined
  return { send: Number(match[1]), receive: Number(match[2]) }
}

export function formatHeartBeat(beat: HeartBeat): string {
  return `${beat.send},${beat.receive}`
}

/**
 * The spec's rule: the server sends every max(sx, cy) ms when both are non-zero, and expects the
 * client every max(cx, sy) ms when both are non-zero.
 */
export function negotiateHeartBeat(client: HeartBeat, server: HeartBeat): HeartBeatPlan {
  return {
    serverSendsEvery: server.send > 0 && client.receive > 0 ? Math.max(server.send, client.receive) : 0,
    clientSendsEvery: client.send > 0 && server.receive > 0 ? Math.max(client.send, server.receive) : 0,
  }
}
