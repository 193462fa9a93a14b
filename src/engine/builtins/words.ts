// words: text → the maximal runs of a character class, optionally lowercased first, on UTF-8
// bytes. Pure.
//
// The class is a bracket of printable ASCII characters and ranges ("[a-z0-9]+", "[a-z']+"): on
// bytes, membership is one table lookup, and since every byte of a multi-byte UTF-8 character is
// >= 0x80, a character outside ASCII is always a separator. That is exactly what the UDF twin
// `line => line.toLowerCase().match(/[a-z0-9]+/g) ?? []` computes, with one wrinkle that the
// scanner handles by hand: JavaScript's toLowerCase turns two non-ASCII characters into ASCII
// letters, U+0130 "İ" into "i" + U+0307 (a separator), and U+212A KELVIN SIGN into "k". No other
// code point lowercases to anything with an ASCII character (checked over all of Unicode).
//
// Tokens are handed over as (buffer, start, end) without making a string: a consumer that counts
// them (count_by_value) hashes the bytes; others get strings, made once per token at the boundary.

export const DEFAULT_WORD_PATTERN = '[a-z0-9]+'

/** The 256-entry membership table of a word pattern, or a message saying why it is not one. */
export function parseWordPattern(pattern: string): Uint8Array | string {
  const m = /^\[(.+)\]\+$/s.exec(pattern)
  if (m === null) return `"pattern" must be one bracket class of ASCII characters followed by "+", such as "[a-z0-9]+"`
  const body = m[1]!
  if (body.startsWith('^')) return `"pattern" cannot be a negated class ("[^...]"): list the characters a word is made of`
  const table = new Uint8Array(256)
  const chars: number[] = []
  for (let i = 0; i < body.length; i++) {
    let c = body.charCodeAt(i)
    if (c === 0x5c) { // backslash: the next character as it is
      i++
      if (i >= body.length) return '"pattern" ends with a lone backslash'
      c = body.charCodeAt(i)
      if (/[a-zA-Z0-9]/.test(body[i]!)) return `"pattern": the escape \\${body[i]} is not supported; list the characters, or escape only punctuation`
    }
    if (c < 0x20 || c > 0x7e) return `"pattern" may hold only printable ASCII characters (found U+${c.toString(16).padStart(4, '0').toUpperCase()})`
    chars.push(c)
    // a range: x-y, where "-" is neither first nor last in the class
    if (body[i + 1] === '-' && i + 2 < body.length) {
      let hi = body.charCodeAt(i + 2)
      let skip = 2
      if (hi === 0x5c) { hi = body.charCodeAt(i + 3); skip = 3 }
      if (!(hi >= 0x20 && hi <= 0x7e)) return '"pattern" may hold only printable ASCII characters'
      if (hi < c) return `"pattern": the range ${body[i]}-${String.fromCharCode(hi)} is out of order`
      for (let x = c + 1; x <= hi; x++) chars.push(x)
      i += skip
    }
  }
  for (const c of chars) table[c] = 1
  return table
}

/** The membership table a scanner uses: with `lowercase`, a byte counts by its lowercase form
 *  (so "A" is in "[a-z]+" and comes out as "a"). */
function scanTable(cls: Uint8Array, lowercase: boolean): Uint8Array {
  const t = new Uint8Array(256)
  for (let b = 0; b < 128; b++) {
    const l = lowercase && b >= 0x41 && b <= 0x5a ? b + 32 : b
    t[b] = cls[l]!
  }
  return t
}

export type TokenSink = (buf: Uint8Array, start: number, end: number) => void

/** Splits UTF-8 text into words; the same instance serves every line of a task. */
export class WordScanner {
  private readonly table: Uint8Array
  private readonly lower: boolean
  private readonly hasI: boolean
  private readonly hasK: boolean
  /** the token being built (lowercased, or joined across İ and K) */
  private tok: Uint8Array = new Uint8Array(256)
  private readonly encoder = new TextEncoder()
  private scratch: Uint8Array = new Uint8Array(4096)

  constructor(cls: Uint8Array, lowercase: boolean) {
    this.table = scanTable(cls, lowercase)
    this.lower = lowercase
    this.hasI = cls[0x69] === 1
    this.hasK = cls[0x6b] === 1
  }

  /** The words of `bytes[from, to)` in order. Line breaks are never in a class, so a region of
   *  several lines scans in one pass, as each line would alone. */
  scan(bytes: Uint8Array, from: number, to: number, sink: TokenSink): void {
    const table = this.table
    const lower = this.lower
    let tok = this.tok
    let n = 0
    for (let i = from; i < to; i++) {
      const b = bytes[i]!
      if (table[b] === 1) {
        if (n === tok.length) tok = this.grow()
        tok[n++] = lower && b >= 0x41 && b <= 0x5a ? b + 32 : b
        continue
      }
      if (lower && b >= 0xc4) {
        if (b === 0xc4 && i + 1 < to && bytes[i + 1] === 0xb0) {
          // İ → "i" then U+0307, which ends the word
          if (this.hasI) { if (n === tok.length) tok = this.grow(); tok[n++] = 0x69 }
          i += 1
          if (n > 0) { sink(tok, 0, n); n = 0 }
          continue
        }
        if (b === 0xe2 && i + 2 < to && bytes[i + 1] === 0x84 && bytes[i + 2] === 0xaa) {
          i += 2
          if (this.hasK) { if (n === tok.length) tok = this.grow(); tok[n++] = 0x6b; continue }
        }
      }
      if (n > 0) { sink(tok, 0, n); n = 0 }
    }
    if (n > 0) sink(tok, 0, n)
  }

  /** The words of one string (a record from a function, not from the input). */
  scanString(s: string, sink: TokenSink): void {
    if (s.length * 3 > this.scratch.length) this.scratch = new Uint8Array(s.length * 3 + 16)
    const { written } = this.encoder.encodeInto(s, this.scratch)
    this.scan(this.scratch, 0, written, sink)
  }

  private grow(): Uint8Array {
    const t = new Uint8Array(this.tok.length * 2)
    t.set(this.tok)
    this.tok = t
    return t
  }
}

const latin1 = new TextDecoder('latin1')

/** A token as a string: words are ASCII, so one byte is one character. */
export function tokenString(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[])
  return latin1.decode(buf.subarray(start, end))
}
