import { headersAreEscaped, type StompVersion, unescapeHeaderText } from './escaping.ts'
import { CLIENT_COMMANDS, SERVER_COMMANDS, type StompFrame, type StompHeader } from './frame.ts'
import { DEFAULT_FRAME_LIMITS, type FrameLimits } from './limits.ts'
import { StompProtocolError } from './protocol-error.ts'

export interface FrameDecoderOptions extends Partial<FrameLimits> {
  /** The negotiated version; decides header escaping. Until CONNECTED it hardly matters. */
  readonly version?: StompVersion
}

export interface DecodeResult {
  /** Whole frames, in the order they arrived. */
  readonly frames: StompFrame[]
  /** End-of-line octets seen between frames: the peer's heart-beats. */
  readonly heartbeats: number
  /** Set once the peer broke the protocol; frames before the fault are still returned. */
  readonly error?: StompProtocolError
}

export interface FrameDecoder {
  /** Feeds the next bytes of the stream (a string is taken as UTF-8). Never throws. */
  push(chunk: Uint8Array | string): DecodeResult
  /** Switches header escaping once the session has negotiated a version. */
  setVersion(version: StompVersion): void
  readonly version: StompVersion
  readonly limits: FrameLimits
  /** Bytes held for the frame in progress; never more than `limits.maxFrameBytes`. */
  readonly bufferedBytes: number
}

const LF = 0x0a
const CR = 0x0d
const NUL = 0x00
const KNOWN_COMMANDS: ReadonlySet<string> = new Set<string>([...CLIENT_COMMANDS, ...SERVER_COMMANDS])
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const utf8Encoder = new TextEncoder()

/** An incremental STOMP frame decoder for one connection's byte stream. */
export function createFrameDecoder(options: FrameDecoderOptions = {}): FrameDecoder {
  const { version = '1.2', ...limitOverrides } = options
  const limits: FrameLimits = { ...DEFAULT_FRAME_LIMITS, ...withoutUndefined(limitOverrides) }
  const parser = new FrameParser(limits, version)
  return {
    push: (chunk) => parser.push(typeof chunk === 'string' ? utf8Encoder.encode(chunk) : chunk),
    setVersion: (next) => {
      parser.version = next
    },
    get version() {
      return parser.version
    },
    limits,
    get bufferedBytes() {
      return parser.bufferedBytes
    },
  }
}

function withoutUndefined(limits: Partial<FrameLimits>): Partial<FrameLimits> {
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined))
}

type Phase = 'between-frames' | 'command' | 'headers' | 'body' | 'nul' | 'failed'

/** Bytes gathered in parts, so a frame split into many small chunks is copied once. */
class ByteParts {
  private parts: Uint8Array[] = []
  length = 0

  add(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.parts.push(bytes.slice())
    this.length += bytes.length
  }

  take(): Uint8Array {
    const whole = this.parts.length === 1 ? (this.parts[0] as Uint8Array) : concat(this.parts, this.length)
    this.parts = []
    this.length = 0
    return whole
  }
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  const whole = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    whole.set(part, offset)
    offset += part.length
  }
  return whole
}

class FrameParser {
  version: StompVersion
  private phase: Phase = 'between-frames'
  private failure: StompProtocolError | undefined
  private pendingCarriageReturn = false
  private readonly line = new ByteParts()
  private readonly body = new ByteParts()
  private frameBytes = 0
  private command = ''
  private headers: StompHeader[] = []
  private contentLength: number | undefined

  private readonly limits: FrameLimits

  constructor(limits: FrameLimits, version: StompVersion) {
    this.limits = limits
    this.version = version
  }

  get bufferedBytes(): number {
    return this.line.length + this.body.length
  }

  push(chunk: Uint8Array): DecodeResult {
    if (this.failure) return { frames: [], heartbeats: 0, error: this.failure }
    const frames: StompFrame[] = []
    let heartbeats = 0
    try {
      let at = 0
      while (at < chunk.length) {
        if (this.phase === 'between-frames') {
          const { next, eols } = this.skipEndOfLines(chunk, at)
          heartbeats += eols
          at = next
        } else if (this.phase === 'command' || this.phase === 'headers') {
          at = this.readLine(chunk, at)
        } else if (this.phase === 'body') {
          at = this.readBody(chunk, at)
        } else {
          at = this.readTerminator(chunk, at, frames)
        }
      }
      return { frames, heartbeats }
    } catch (error) {
      this.fail(error)
      return { frames, heartbeats, error: this.failure }
    }
  }

  private fail(error: unknown): void {
    this.failure =
      error instanceof StompProtocolError ? error : new StompProtocolError('MALFORMED_HEADER', 'malformed frame')
    this.phase = 'failed'
    this.line.take()
    this.body.take()
    this.headers = []
  }

  /** EOLs between frames are heart-beats; anything else starts a frame's command line. */
  private skipEndOfLines(chunk: Uint8Array, from: number): { next: number; eols: number } {
    let at = from
    let eols = 0
    while (at < chunk.length) {
      const byte = chunk[at]
      if (this.pendingCarriageReturn) {
        if (byte !== LF) throw new StompProtocolError('BAD_END_OF_LINE', 'carriage return without line feed')
        this.pendingCarriageReturn = false
        eols++
      } else if (byte === CR) {
        this.pendingCarriageReturn = true
      } else if (byte === LF) {
        eols++
      } else {
        this.startFrame()
        return { next: at, eols }
      }
      at++
    }
    return { next: at, eols }
  }

  private startFrame(): void {
    this.phase = 'command'
    this.frameBytes = 0
    this.command = ''
    this.headers = []
    this.contentLength = undefined
  }

  /** Reads up to the next LF; a NUL before it means the frame ended inside its headers. */
  private readLine(chunk: Uint8Array, from: number): number {
    // One byte of slack for the CR of a CR LF line end; past that, scanning further is pointless.
    const lineRoom = this.limits.maxHeaderLineBytes + 1 - this.line.length
    const scanEnd = Math.min(chunk.length, from + lineRoom + 1)
    let at = from
    while (at < scanEnd && chunk[at] !== LF && chunk[at] !== NUL) at++
    if (at - from > lineRoom) throw lineTooLong()
    this.countFrameBytes(at - from)
    this.line.add(chunk.subarray(from, at))
    if (at === chunk.length) return at
    if (chunk[at] === NUL) throw new StompProtocolError('MALFORMED_HEADER', 'frame ended before its blank line')
    this.countFrameBytes(1)
    this.endLine(this.line.take())
    return at + 1
  }

  private endLine(raw: Uint8Array): void {
    const bytes = raw.at(-1) === CR ? raw.subarray(0, -1) : raw
    if (bytes.length > this.limits.maxHeaderLineBytes) throw lineTooLong()
    if (this.phase === 'command') this.readCommand(bytes)
    else if (bytes.length === 0) this.startBody()
    else this.readHeader(bytes)
  }

  private readCommand(bytes: Uint8Array): void {
    const command = decodeUtf8(bytes)
    if (!KNOWN_COMMANDS.has(command)) throw new StompProtocolError('UNKNOWN_COMMAND', 'unknown command')
    this.command = command
    this.phase = 'headers'
  }

  private readHeader(bytes: Uint8Array): void {
    if (this.headers.length >= this.limits.maxHeaders) {
      throw new StompProtocolError('TOO_MANY_HEADERS', `more than ${this.limits.maxHeaders} headers`)
    }
    const text = decodeUtf8(bytes)
    const colon = text.indexOf(':')
    if (colon <= 0) throw new StompProtocolError('MALFORMED_HEADER', 'header line without a name and colon')
    const escaped = headersAreEscaped(this.command, this.version)
    const name = escaped ? unescapeHeaderText(text.slice(0, colon), this.version) : text.slice(0, colon)
    const value = escaped ? unescapeHeaderText(text.slice(colon + 1), this.version) : text.slice(colon + 1)
    this.headers.push([name, value])
    if (name === 'content-length' && this.contentLength === undefined) this.contentLength = this.parseLength(value)
  }

  private parseLength(value: string): number {
    if (!/^\d{1,15}$/.test(value)) throw new StompProtocolError('BAD_CONTENT_LENGTH', 'content-length is not a number')
    const length = Number(value)
    if (length > this.limits.maxBodyBytes) throw bodyTooLarge(this.limits)
    return length
  }

  private startBody(): void {
    this.phase = this.contentLength === 0 ? 'nul' : 'body'
  }

  /** With content-length, takes exactly that many bytes; without, the body ends at the first NUL. */
  private readBody(chunk: Uint8Array, from: number): number {
    const wanted = this.contentLength
    let end: number
    if (wanted === undefined) {
      const nul = chunk.indexOf(NUL, from)
      end = nul === -1 ? chunk.length : nul
    } else {
      end = Math.min(chunk.length, from + (wanted - this.body.length))
    }
    if (this.body.length + (end - from) > this.limits.maxBodyBytes) throw bodyTooLarge(this.limits)
    this.countFrameBytes(end - from)
    this.body.add(chunk.subarray(from, end))
    const complete = wanted === undefined ? end < chunk.length : this.body.length === wanted
    if (complete) this.phase = 'nul'
    return end
  }

  private readTerminator(chunk: Uint8Array, at: number, frames: StompFrame[]): number {
    if (chunk[at] !== NUL) throw new StompProtocolError('MISSING_NUL', 'frame body not followed by NUL')
    this.countFrameBytes(1)
    frames.push({ command: this.command, headers: this.headers, body: this.body.take() })
    this.headers = []
    this.phase = 'between-frames'
    return at + 1
  }

  private countFrameBytes(count: number): void {
    this.frameBytes += count
    if (this.frameBytes > this.limits.maxFrameBytes) {
      throw new StompProtocolError('FRAME_TOO_LARGE', `frame larger than ${this.limits.maxFrameBytes} bytes`)
    }
  }
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new StompProtocolError('INVALID_UTF8', 'header is not valid UTF-8')
  }
}

function lineTooLong(): StompProtocolError {
  return new StompProtocolError('HEADER_LINE_TOO_LONG', 'header line too long')
}

function bodyTooLarge(limits: FrameLimits): StompProtocolError {
  return new StompProtocolError('BODY_TOO_LARGE', `body larger than ${limits.maxBodyBytes} bytes`)
}
