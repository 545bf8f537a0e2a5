import { StompProtocolError } from './protocol-error.ts'

export type StompVersion = '1.0' | '1.1' | '1.2'

/**
 * Whether header names and values of `command` are escaped: STOMP 1.0 has no escaping, and
 * 1.1/1.2 leave CONNECT and CONNECTED alone so a 1.0 peer can still read them.
 */
export function headersAreEscaped(command: string, version: StompVersion): boolean {
  return version !== '1.0' && command !== 'CONNECT' && command !== 'CONNECTED'
}

/** STOMP 1.2 escaping (`\r` `\n` `\c` `\\`), the set the encoder always writes. */
export function escapeHeaderText(text: string): string {
  return text.replace(/[\\\r\n:]/g, (char) => ESCAPES[char] ?? char)
}

const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\r': '\\r', '\n': '\\n', ':': '\\c' }
const UNESCAPES_1_1: Readonly<Record<string, string>> = { '\\': '\\', n: '\n', c: ':' }
const UNESCAPES_1_2: Readonly<Record<string, string>> = { ...UNESCAPES_1_1, r: '\r' }

/** Reads escaped header text; an escape the version does not define is a protocol error. */
export function unescapeHeaderText(text: string, version: StompVersion): string {
  if (!text.includes('\\')) return text
  const table = version === '1.1' ? UNESCAPES_1_1 : UNESCAPES_1_2
  return text.replace(/\\(.?)/gs, (_escape, char: string) => {
    const replacement = table[char]
    if (replacement === undefined) throw new StompProtocolError('BAD_ESCAPE', 'undefined escape sequence in header')
    return replacement
  })
}
