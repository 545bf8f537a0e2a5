/**
 * What one peer may make the decoder hold. Every limit is checked while bytes arrive, so a
 * frame that would break one is refused before it is buffered in full.
 */
export interface FrameLimits {
  /** Bytes of one frame: command line, header lines, blank line, body and the closing NUL. */
  readonly maxFrameBytes: number
  /** Header lines in one frame, repeats included. */
  readonly maxHeaders: number
  /** Bytes of one command or header line, without its end of line. */
  readonly maxHeaderLineBytes: number
  /** Bytes of one body. */
  readonly maxBodyBytes: number
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = Object.freeze({
  maxFrameBytes: 128 * 1024,
  maxHeaders: 64,
  maxHeaderLineBytes: 8 * 1024,
  maxBodyBytes: 64 * 1024,
})
