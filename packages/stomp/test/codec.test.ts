import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  CLIENT_COMMANDS,
  createFrameDecoder,
  type DecodeResult,
  encodeFrame,
  type FrameDecoder,
  headersAreEscaped,
  headerValue,
  SERVER_COMMANDS,
  type StompFrame,
  type StompHeader,
  StompProtocolError,
} from '../src/index.ts'

const utf8 = new TextEncoder()
const bytes = (text: string) => utf8.encode(text)
const text = (body: Uint8Array) => new TextDecoder().decode(body)

/** Feeds every chunk and gathers what the decoder yielded, as a session would. */
function decodeAll(decoder: FrameDecoder, chunks: readonly (Uint8Array | string)[]) {
  const frames: StompFrame[] = []
  let heartbeats = 0
  let error: StompProtocolError | undefined
  for (const chunk of chunks) {
    const result = decoder.push(chunk)
    frames.push(...result.frames)
    heartbeats += result.heartbeats
    error ??= result.error
  }
  return { frames, heartbeats, error }
}

function decodeOne(wire: string | Uint8Array, options: Parameters<typeof createFrameDecoder>[0] = {}): StompFrame {
  const { frames, error } = decodeAll(createFrameDecoder(options), [wire])
  assert.equal(error, undefined)
  assert.equal(frames.length, 1)
  return frames[0] as StompFrame
}

function decodeError(chunks: readonly (string | Uint8Array)[], options: Parameters<typeof createFrameDecoder>[0] = {}) {
  const { error } = decodeAll(createFrameDecoder(options), chunks)
  assert.ok(error instanceof StompProtocolError, 'expected a protocol error')
  return error
}

describe('frame decoder', () => {
  test('reads the command, the headers in order and the body of a frame', () => {
    const frame = decodeOne('SEND\ndestination:/pub/rooms/1\ncontent-type:text/plain\n\nhello\0')
    assert.equal(frame.command, 'SEND')
    assert.deepEqual(frame.headers, [
      ['destination', '/pub/rooms/1'],
      ['content-type', 'text/plain'],
    ])
    assert.equal(text(frame.body), 'hello')
  })

  test('counts end-of-line octets between frames as heart-beats, LF and CR LF alike', () => {
    const decoder = createFrameDecoder()
    const { frames, heartbeats } = decodeAll(decoder, ['\n', '\r', '\n\n', 'DISCONNECT\n\n\0', '\r\n\n'])
    assert.equal(heartbeats, 5)
    assert.deepEqual(
      frames.map((frame) => frame.command),
      ['DISCONNECT'],
    )
  })

  test('yields several frames that arrive in one chunk, in order', () => {
    const { frames, heartbeats } = decodeAll(createFrameDecoder(), [
      'SEND\ndestination:/a\n\none\0\nSEND\ndestination:/b\n\ntwo\0SUBSCRIBE\nid:0\ndestination:/c\n\n\0',
    ])
    assert.equal(heartbeats, 1)
    assert.deepEqual(
      frames.map((frame) => [frame.command, headerValue(frame, 'destination'), text(frame.body)]),
      [
        ['SEND', '/a', 'one'],
        ['SEND', '/b', 'two'],
        ['SUBSCRIBE', '/c', ''],
      ],
    )
  })

  test('reassembles one frame split across many chunks, down to single bytes', () => {
    const wire = bytes('SEND\r\ndestination:/a\r\ncontent-length:5\r\n\r\nab\0cd\0')
    const decoder = createFrameDecoder()
    const results = Array.from(wire, (byte) => decoder.push(Uint8Array.of(byte)))
    assert.deepEqual(
      results.map((result) => result.frames.length),
      [...Array(wire.length - 1).fill(0), 1],
    )
    assert.deepEqual(results.at(-1)?.frames[0]?.body, bytes('ab\0cd'))
  })

  test('keeps NUL octets of a body whose content-length covers them', () => {
    const body = Uint8Array.of(0, 1, 0, 255, 0)
    const wire = new Uint8Array([...bytes('SEND\ndestination:/a\ncontent-length:5\n\n'), ...body, 0])
    assert.deepEqual(decodeOne(wire).body, body)
  })

  test('ends a body without content-length at the first NUL', () => {
    const { frames, error } = decodeAll(createFrameDecoder(), ['SEND\ndestination:/a\n\nab\0cd\0'])
    assert.equal(text(frames[0]?.body ?? new Uint8Array()), 'ab')
    assert.equal(error?.code, 'MALFORMED_HEADER', '"cd" then NUL is no frame')
  })

  test('refuses a content-length body not followed by NUL', () => {
    assert.equal(decodeError(['SEND\ncontent-length:2\n\nabc\0']).code, 'MISSING_NUL')
  })

  test('refuses a content-length that is not a number', () => {
    assert.equal(decodeError(['SEND\ncontent-length:-1\n\n\0']).code, 'BAD_CONTENT_LENGTH')
    assert.equal(decodeError(['SEND\ncontent-length:1e3\n\n\0']).code, 'BAD_CONTENT_LENGTH')
  })

  test('the first content-length wins when it is repeated', () => {
    const frame = decodeOne('SEND\ncontent-length:2\ncontent-length:9\n\na\0\0')
    assert.deepEqual(frame.body, Uint8Array.of(0x61, 0))
  })

  test('decodes the escapes \\r \\n \\c \\\\ in header names and values (STOMP 1.2)', () => {
    const frame = decodeOne('SEND\na\\cb:one\\rtwo\\nthree\\cfour\\\\five\n\n\0')
    assert.deepEqual(frame.headers, [['a:b', 'one\rtwo\nthree:four\\five']])
  })

  test('leaves CONNECT and CONNECTED headers unescaped', () => {
    const connect = decodeOne('CONNECT\nlogin:a\\nb\npasscode:x:y\n\n\0')
    assert.deepEqual(connect.headers, [
      ['login', 'a\\nb'],
      ['passcode', 'x:y'],
    ])
    assert.deepEqual(decodeOne('CONNECTED\nserver:s\\q\n\n\0').headers, [['server', 's\\q']])
  })

  test('leaves every header unescaped in STOMP 1.0', () => {
    const decoder = createFrameDecoder({ version: '1.0' })
    const { frames, error } = decodeAll(decoder, ['SEND\ndestination:/a\\q\n\n\0'])
    assert.equal(error, undefined)
    assert.deepEqual(frames[0]?.headers, [['destination', '/a\\q']])
  })

  test('applies the version the session negotiated to the frames after it', () => {
    const decoder = createFrameDecoder({ version: '1.0' })
    assert.equal(decoder.push('SEND\nx:a\\b\n\n\0').frames.length, 1)
    decoder.setVersion('1.2')
    assert.equal(decoder.version, '1.2')
    assert.equal(decoder.push('SEND\nx:a\\b\n\n\0').error?.code, 'BAD_ESCAPE')
  })

  test('refuses an escape the version does not define', () => {
    const error = decodeError(['SEND\ndestination:/a\\t\n\n\0'])
    assert.equal(error.code, 'BAD_ESCAPE')
    assert.equal(error.message, 'undefined escape sequence in header')
    assert.equal(decodeError(['SEND\ndestination:/a\\\n\n\0']).code, 'BAD_ESCAPE')
    assert.equal(decodeError(['SEND\nx:\\r\n\n\0'], { version: '1.1' }).code, 'BAD_ESCAPE')
    assert.deepEqual(decodeOne('SEND\nx:\\n\\c\\\\\n\n\0', { version: '1.1' }).headers, [['x', '\n:\\']])
  })

  test('accepts CR LF and LF line ends, mixed', () => {
    const frame = decodeOne('SEND\r\na:1\nb:2\r\n\nbody\0')
    assert.deepEqual(frame.headers, [
      ['a', '1'],
      ['b', '2'],
    ])
  })

  test('keeps repeated headers in order, so the first one wins', () => {
    const frame = decodeOne('MESSAGE\nfoo:first\nbar:x\nfoo:second\n\n\0')
    assert.deepEqual(frame.headers, [
      ['foo', 'first'],
      ['bar', 'x'],
      ['foo', 'second'],
    ])
    assert.equal(headerValue(frame, 'foo'), 'first')
  })

  test('keeps colons after the first one in a header value and empty values', () => {
    assert.deepEqual(decodeOne('CONNECT\nhost:a:b\nlogin:\n\n\0').headers, [
      ['host', 'a:b'],
      ['login', ''],
    ])
  })

  test('reads header names and values as UTF-8, even when a character is split across chunks', () => {
    const wire = bytes('SEND\nnäme:wert 😀 中\n\n\0')
    const split = wire.indexOf(0xf0) + 2
    const { frames, error } = decodeAll(createFrameDecoder(), [wire.subarray(0, split), wire.subarray(split)])
    assert.equal(error, undefined)
    assert.deepEqual(frames[0]?.headers, [['näme', 'wert 😀 中']])
  })

  test('refuses a header that is not valid UTF-8', () => {
    const wire = new Uint8Array([...bytes('SEND\nx:'), 0xc3, 0x28, ...bytes('\n\n\0')])
    assert.equal(decodeError([wire]).code, 'INVALID_UTF8')
  })

  test('refuses an unknown command, a header without a colon or name, and a frame without a blank line', () => {
    assert.equal(decodeError(['GET / HTTP/1.1\r\n']).code, 'UNKNOWN_COMMAND')
    assert.equal(decodeError(['send\n\n\0']).code, 'UNKNOWN_COMMAND')
    assert.equal(decodeError(['SEND\nno-colon\n\n\0']).code, 'MALFORMED_HEADER')
    assert.equal(decodeError(['SEND\n:value\n\n\0']).code, 'MALFORMED_HEADER')
    assert.equal(decodeError(['DISCONNECT\n\0']).code, 'MALFORMED_HEADER')
  })

  test('refuses a carriage return between frames that no line feed follows', () => {
    assert.equal(decodeError(['\r', 'SEND\n\n\0']).code, 'BAD_END_OF_LINE')
  })

  test('returns the frames before a fault with the error, and only the error after it', () => {
    const decoder = createFrameDecoder()
    const first = decoder.push('SEND\n\nok\0BOGUS\n\n\0')
    assert.equal(first.frames.length, 1)
    assert.equal(first.error?.code, 'UNKNOWN_COMMAND')
    const later = decoder.push('SEND\n\nok\0')
    assert.deepEqual(later.frames, [])
    assert.equal(later.error, first.error)
    assert.equal(decoder.bufferedBytes, 0)
  })
})

describe('frame decoder limits', () => {
  test('the defaults apply to limits not given', () => {
    const decoder = createFrameDecoder({ maxHeaders: 3 })
    assert.equal(decoder.limits.maxHeaders, 3)
    assert.ok(decoder.limits.maxFrameBytes > 0)
  })

  test('refuses a frame larger than maxFrameBytes before holding all of it', () => {
    const decoder = createFrameDecoder({ maxFrameBytes: 100, maxBodyBytes: 1000 })
    let result: DecodeResult = decoder.push('SEND\n\n')
    for (let i = 0; i < 20 && !result.error; i++) {
      result = decoder.push('x'.repeat(10))
      assert.ok(decoder.bufferedBytes <= 100)
    }
    assert.equal(result.error?.code, 'FRAME_TOO_LARGE')
    assert.equal(result.error?.message, 'frame larger than 100 bytes')
  })

  test('counts headers toward maxFrameBytes', () => {
    const error = decodeError([`SEND\nx:${'a'.repeat(60)}\ny:${'b'.repeat(60)}\n\n\0`], { maxFrameBytes: 100 })
    assert.equal(error.code, 'FRAME_TOO_LARGE')
  })

  test('accepts a frame of exactly maxFrameBytes', () => {
    const wire = 'SEND\n\nabcd\0'
    assert.equal(decodeOne(wire, { maxFrameBytes: wire.length }).command, 'SEND')
    assert.equal(decodeError([wire], { maxFrameBytes: wire.length - 1 }).code, 'FRAME_TOO_LARGE')
  })

  test('refuses more headers than maxHeaders, repeats included', () => {
    assert.equal(decodeOne('SEND\na:1\na:2\n\n\0', { maxHeaders: 2 }).headers.length, 2)
    const error = decodeError(['SEND\na:1\na:2\na:3\n\n\0'], { maxHeaders: 2 })
    assert.equal(error.code, 'TOO_MANY_HEADERS')
  })

  test('refuses a header line longer than maxHeaderLineBytes, even one that never ends', () => {
    assert.equal(decodeOne(`SEND\nx:${'a'.repeat(8)}\r\n\n\0`, { maxHeaderLineBytes: 10 }).headers.length, 1)
    assert.equal(
      decodeError([`SEND\nx:${'a'.repeat(9)}\n\n\0`], { maxHeaderLineBytes: 10 }).code,
      'HEADER_LINE_TOO_LONG',
    )
    const decoder = createFrameDecoder({ maxHeaderLineBytes: 10 })
    let result = decoder.push('SEND\nx:')
    for (let i = 0; i < 5 && !result.error; i++) result = decoder.push('aaaa')
    assert.equal(result.error?.code, 'HEADER_LINE_TOO_LONG')
  })

  test('applies maxHeaderLineBytes to the command line too', () => {
    assert.equal(decodeError(['x'.repeat(50)], { maxHeaderLineBytes: 20 }).code, 'HEADER_LINE_TOO_LONG')
  })

  test('refuses a content-length above maxBodyBytes before any of the body arrives', () => {
    const error = decodeError(['SEND\ncontent-length:11\n\n'], { maxBodyBytes: 10 })
    assert.equal(error.code, 'BODY_TOO_LARGE')
    assert.equal(error.message, 'body larger than 10 bytes')
  })

  test('refuses a body without content-length once it passes maxBodyBytes', () => {
    assert.equal(decodeOne(`SEND\n\n${'a'.repeat(10)}\0`, { maxBodyBytes: 10 }).body.length, 10)
    const decoder = createFrameDecoder({ maxBodyBytes: 10 })
    const { error } = decodeAll(decoder, ['SEND\n\n', 'aaaaaa', 'aaaaaa'])
    assert.equal(error?.code, 'BODY_TOO_LARGE')
    assert.equal(decoder.bufferedBytes, 0)
  })
})

describe('frame encoder', () => {
  test('writes the command, the headers, a content-length for the body and the NUL', () => {
    const wire = encodeFrame(
      { command: 'MESSAGE', headers: [['destination', '/a']], body: Uint8Array.of(1, 0, 2) },
      { escape: true },
    )
    assert.deepEqual(wire, new Uint8Array([...bytes('MESSAGE\ndestination:/a\ncontent-length:3\n\n'), 1, 0, 2, 0]))
  })

  test('writes no content-length for an empty body and replaces a given one', () => {
    assert.equal(
      text(
        encodeFrame({ command: 'RECEIPT', headers: [['receipt-id', '7']], body: new Uint8Array() }, { escape: true }),
      ),
      'RECEIPT\nreceipt-id:7\n\n\0',
    )
    const given: StompHeader[] = [
      ['content-length', '99'],
      ['a', 'b'],
    ]
    assert.equal(
      text(encodeFrame({ command: 'MESSAGE', headers: given, body: bytes('hi') }, { escape: true })),
      'MESSAGE\na:b\ncontent-length:2\n\nhi\0',
    )
  })

  test('escapes header names and values when asked, and not otherwise', () => {
    const headers: StompHeader[] = [['a:b', 'c\\d\re\nf:g']]
    const escaped = encodeFrame({ command: 'MESSAGE', headers, body: new Uint8Array() }, { escape: true })
    assert.equal(text(escaped), 'MESSAGE\na\\cb:c\\\\d\\re\\nf\\cg\n\n\0')
    const plain = encodeFrame(
      { command: 'CONNECTED', headers: [['server', 'x:y\\z']], body: new Uint8Array() },
      { escape: false },
    )
    assert.equal(text(plain), 'CONNECTED\nserver:x:y\\z\n\n\0')
  })

  test('refuses header text that would break the frame when it may not escape', () => {
    const frame = (headers: StompHeader[]) => ({ command: 'CONNECTED', headers, body: new Uint8Array() })
    assert.throws(() => encodeFrame(frame([['message', 'a\nb']]), { escape: false }), RangeError)
    assert.throws(() => encodeFrame(frame([['a:b', 'c']]), { escape: false }), RangeError)
  })
})

// Property and fuzz tests: what the encoder writes, the decoder reads back, whatever the split.

const COMMANDS = [...CLIENT_COMMANDS, ...SERVER_COMMANDS]
const TRICKY_PIECES = ['\\', ':', '\r', '\n', '\\c', '\\n', 'é', '中', '😀', ' ', '\t']
const headerText = (tricky: readonly string[], minLength: number) =>
  fc
    .array(fc.oneof(fc.constantFrom(...tricky), fc.string({ unit: 'grapheme-ascii', maxLength: 6 })), {
      minLength,
      maxLength: 6,
    })
    .map((pieces) => pieces.join(''))
    .filter((value) => value.length >= minLength)

/** Frames the encoder can write: headers of CONNECT and CONNECTED are never escaped. */
const frameArbitrary = (escapes: (command: string) => boolean) =>
  fc.constantFrom(...COMMANDS).chain((command) => {
    const escaped = escapes(command)
    const name = headerText(TRICKY_PIECES, 1).filter(
      (value) => value !== 'content-length' && (escaped || !/[\r\n:]/.test(value)),
    )
    const value = headerText(TRICKY_PIECES, 0).filter((value) => escaped || !/[\r\n]/.test(value))
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200, size: 'medium' }),
      fc.array(fc.constantFrom(0, 10, 13, 0x5c), { maxLength: 20 }).map((octets) => Uint8Array.from(octets)),
    )
    return fc.record({
      command: fc.constant(command),
      headers: fc.array(fc.tuple(name, value), { maxLength: 8 }),
      body,
    })
  })

const asDecoded = (frame: StompFrame): StompFrame => ({
  command: frame.command,
  headers: frame.body.length > 0 ? [...frame.headers, ['content-length', String(frame.body.length)]] : frame.headers,
  body: frame.body,
})

function splitAt(wire: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (wire.length + 1)))].sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let from = 0
  for (const point of [...points, wire.length]) {
    chunks.push(wire.subarray(from, point))
    from = point
  }
  return chunks
}

function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    whole.set(part, offset)
    offset += part.length
  }
  return whole
}

describe('codec properties', () => {
  for (const version of ['1.2', '1.0'] as const) {
    test(`decodes what it encodes, with heart-beats between frames and any split (STOMP ${version})`, () => {
      const escapes = (command: string) => headersAreEscaped(command, version)
      const heartbeat = fc.constantFrom('', '\n', '\r\n', '\n\n')
      fc.assert(
        fc.property(
          fc.array(fc.tuple(frameArbitrary(escapes), heartbeat), { minLength: 1, maxLength: 5 }),
          fc.array(fc.nat(), { maxLength: 12 }),
          (framesWithBeats, cuts) => {
            const parts = framesWithBeats.flatMap(([frame, beats]) => [
              bytes(beats),
              encodeFrame(frame, { escape: escapes(frame.command) }),
            ])
            const decoded = decodeAll(createFrameDecoder({ version }), splitAt(concatAll(parts), cuts))
            assert.equal(decoded.error, undefined)
            assert.deepEqual(
              decoded.frames,
              framesWithBeats.map(([frame]) => asDecoded(frame)),
            )
            const expectedBeats = framesWithBeats.reduce((sum, [, beats]) => sum + beats.split('\n').length - 1, 0)
            assert.equal(decoded.heartbeats, expectedBeats)
          },
        ),
        { numRuns: 300 },
      )
    })
  }

  const limits = { maxFrameBytes: 300, maxHeaders: 6, maxHeaderLineBytes: 40, maxBodyBytes: 120 }

  /** What any decoder result must look like, whatever the bytes were. */
  function assertWellFormed(decoder: FrameDecoder, results: readonly DecodeResult[]) {
    let failed: StompProtocolError | undefined
    for (const result of results) {
      if (failed) {
        assert.deepEqual(result.frames, [])
        assert.equal(result.error, failed)
      }
      for (const frame of result.frames) {
        assert.ok(COMMANDS.includes(frame.command as (typeof COMMANDS)[number]))
        assert.ok(frame.headers.length <= limits.maxHeaders)
        assert.ok(frame.body.length <= limits.maxBodyBytes)
      }
      if (result.error) {
        assert.ok(result.error instanceof StompProtocolError)
        assert.ok(result.error.message.length > 0 && result.error.message.length < 80)
      }
      failed ??= result.error
    }
    assert.ok(decoder.bufferedBytes <= limits.maxFrameBytes)
  }

  function pushAll(chunks: readonly Uint8Array[], version: '1.0' | '1.1' | '1.2') {
    const decoder = createFrameDecoder({ ...limits, version })
    const results = chunks.map((chunk) => {
      const result = decoder.push(chunk)
      assert.ok(decoder.bufferedBytes <= limits.maxFrameBytes, 'holds no more than one frame')
      return result
    })
    assertWellFormed(decoder, results)
  }

  const version = fc.constantFrom('1.0' as const, '1.1' as const, '1.2' as const)

  test('random bytes yield only frames or an error, never a throw, within the limits', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', 'SEND\n', 'SEND\n\n', 'MESSAGE\ncontent-length:50\n\n', 'CONNECT\nlogin:'),
        fc.array(fc.uint8Array({ maxLength: 400, size: 'max' }), { maxLength: 8, size: 'max' }),
        version,
        (start, chunks, chosenVersion) => pushAll([bytes(start), ...chunks], chosenVersion),
      ),
      { numRuns: 500 },
    )
  })

  test('mutated valid frames yield only frames or an error, never a throw, within the limits', () => {
    const mutation = fc.record({
      at: fc.nat(),
      octet: fc.integer({ min: 0, max: 255 }),
      kind: fc.constantFrom('set', 'insert', 'delete'),
    })
    fc.assert(
      fc.property(
        fc.array(
          frameArbitrary(() => true),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(mutation, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        version,
        (frames, mutations, cuts, chosenVersion) => {
          const octets = Array.from(concatAll(frames.map((frame) => encodeFrame(frame, { escape: true }))))
          for (const { at, octet, kind } of mutations) {
            const index = at % (octets.length + 1)
            if (kind === 'set') octets[index] = octet
            else if (kind === 'insert') octets.splice(index, 0, octet)
            else octets.splice(index, 1)
          }
          pushAll(splitAt(Uint8Array.from(octets), cuts), chosenVersion)
        },
      ),
      { numRuns: 500 },
    )
  })
})
