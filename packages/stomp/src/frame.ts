/**
 * A STOMP frame as the codec and the session exchange it. Headers keep their order and their
 * repeats (the spec says the first occurrence wins); the body is bytes, so a binary body with
 * NUL octets travels unchanged.
 */
export type StompHeader = readonly [name: string, value: string]

export interface StompFrame {
  readonly command: string
  readonly headers: readonly StompHeader[]
  readonly body: Uint8Array
}

/** Commands a client may send (STOMP 1.2, section "Client Frames"). */
export const CLIENT_COMMANDS = [
  'CONNECT',
  'STOMP',
  'SEND',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'ACK',
  'NACK',
  'BEGIN',
  'COMMIT',
  'ABORT',
  'DISCONNECT',
] as const
export type ClientCommand = (typeof CLIENT_COMMANDS)[number]

/** Commands a server sends. */
export const SERVER_COMMANDS = ['CONNECTED', 'MESSAGE', 'RECEIPT', 'ERROR'] as const
export type ServerCommand = (typeof SERVER_COMMANDS)[number]

/** The value of the first header called `name`, as the spec's "first one wins" rule reads it. */
export function headerValue(frame: Pick<StompFrame, 'headers'>, name: string): string | undefined {
  for (const [key, value] of frame.headers) if (key === name) return value
  return undefined
}
