/** Why the decoder refused the bytes; stable, so the session and tests can tell cases apart. */
export type StompProtocolErrorCode =
  | 'FRAME_TOO_LARGE'
  | 'TOO_MANY_HEADERS'
  | 'HEADER_LINE_TOO_LONG'
  | 'BODY_TOO_LARGE'
  | 'UNKNOWN_COMMAND'
  | 'MALFORMED_HEADER'
  | 'BAD_ESCAPE'
  | 'BAD_CONTENT_LENGTH'
  | 'MISSING_NUL'
  | 'BAD_END_OF_LINE'
  | 'INVALID_UTF8'

/**
 * A peer broke the protocol. `message` is short and safe to send back as the ERROR frame's
 * `message` header (it never echoes the peer's bytes).
 */
export class StompProtocolError extends Error {
  readonly code: StompProtocolErrorCode

  constructor(code: StompProtocolErrorCode, message: string) {
    super(message)
    this.name = 'StompProtocolError'
    this.code = code
  }
}
