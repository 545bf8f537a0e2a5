import { escapeHeaderText } from './escaping.ts'
import type { StompFrame } from './frame.ts'

export interface EncodeOptions {
  /** Escape header names and values (STOMP 1.1+, except CONNECT and CONNECTED). */
  readonly escape: boolean
}

const utf8 = new TextEncoder()

/**
 * The bytes of one frame. A non-empty body always gets a `content-length` computed here (any
 * given one is replaced), so NUL octets in the body travel safely.
 */
export function encodeFrame(frame: StompFrame, options: EncodeOptions): Uint8Array {
  let head = `${frame.command}\n`
  for (const [name, value] of frame.headers) {
    if (name === 'content-length') continue
    head += `${headerText(name, options.escape, true)}:${headerText(value, options.escape, false)}\n`
  }
  if (frame.body.length > 0) head += `content-length:${frame.body.length}\n`
  head += '\n'
  const headBytes = utf8.encode(head)
  const bytes = new Uint8Array(headBytes.length + frame.body.length + 1)
  bytes.set(headBytes, 0)
  bytes.set(frame.body, headBytes.length)
  return bytes
}

/** Without escaping, text that would break the frame's lines cannot be written at all. */
function headerText(text: string, escaped: boolean, isName: boolean): string {
  if (escaped) return escapeHeaderText(text)
  if (/[\r\n]/.test(text) || (isName && text.includes(':'))) {
    throw new RangeError(`header ${isName ? 'name' : 'value'} cannot be written without escaping`)
  }
  return text
}
