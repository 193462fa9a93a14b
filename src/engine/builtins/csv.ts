// read_csv with "columns" and "types": projecting and typing CSV columns by name, as DuckDB's
// read_csv(columns, types), Polars' scan_csv(columns, dtypes) and a Spark schema on read do. Pure.
//
// A row is cut at the delimiter as bytes, and only the wanted fields become JS values: a string
// decoded from the field's bytes, or a number parsed from them with no string in between. The other
// fields are only stepped over, in one pass over the line's bytes. A line with a quote takes the
// general parser (CsvParser) and the same typing, so both paths give the same values by construction.
//
// Twin: read_csv without the two fields, then map "r => ({ a: T(r.a), b: T(r.b) })" where T is the
// column's type: "string" the value as is; otherwise '' gives null, and a value gives Number(v)
// ("number", "int") or Math.round(Number(v) * 100) ("cents"), after checking its form (below). The
// checks make a typo fail the task instead of turning into NaN.
import type { NodeSpec } from '../../api/jobs'
import { CsvError, CsvParser } from '../operators/csv'
import { InputLineError } from '../operators/sources'

export type CsvType = 'string' | 'number' | 'int' | 'cents'

/** True when the node asks for a projection or typing. */
export const selectsColumns = (n: NodeSpec): boolean => n.op === 'read_csv' && (n.columns !== undefined || n.types !== undefined)

/** Why the selection cannot run, or null (a submit check). */
export function checkCsvSelection(n: NodeSpec): string | null {
  if (!selectsColumns(n)) return null
  if (n.header === false) return '"columns" and "types" name header columns: they need "header": true (the default)'
  const cols = n.columns
  if (cols !== undefined) {
    if (new Set(cols).size !== cols.length) return `"columns" names a column twice: ${cols.find((c, i) => cols.indexOf(c) !== i)}`
    if (cols.includes('__proto__')) return '"__proto__" cannot be a column name of a record'
  }
  for (const [c, t] of Object.entries(n.types ?? {})) {
    if (cols !== undefined && !cols.includes(c)) return `"types" names "${c}", which is not in "columns": add it there or remove it here`
    if (!['string', 'number', 'int', 'cents'].includes(t)) return `"types"."${c}" must be string, number, int or cents`
  }
  return null
}

const DIGIT0 = 0x30
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
/** Hundredths at most this big convert exactly through Number(v) * 100 (the twin). */
const MAX_CENTS = 2 ** 51

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true })
const encoder = new TextEncoder()

/** A field's text from its bytes: ASCII without a decoder call, anything else as UTF-8. */
function fieldString(buf: Uint8Array, s: number, e: number): string {
  if (e - s <= 32) {
    let ascii = true
    for (let i = s; i < e; i++) if (buf[i]! >= 0x80) { ascii = false; break }
    if (ascii) return asciiString(buf, s, e)
  }
  return utf8.decode(buf.subarray(s, e))
}

/** ASCII bytes as a string. Short fields (ids, codes) pass their bytes as arguments: a view and an
 *  apply() per field cost twice as much. */
function asciiString(b: Uint8Array, s: number, e: number): string {
  switch (e - s) {
    case 0: return ''
    case 1: return String.fromCharCode(b[s]!)
    case 2: return String.fromCharCode(b[s]!, b[s + 1]!)
    case 3: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!)
    case 4: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!)
    case 5: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!)
    case 6: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!)
    case 7: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!)
    case 8: return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!)
    default: return String.fromCharCode.apply(null, b.subarray(s, e) as unknown as number[])
  }
}

const isDigit = (c: number): boolean => c >= DIGIT0 && c <= DIGIT0 + 9

/** "int": [+-]?[0-9]+ as a safe integer, else undefined. */
function parseInt10(buf: Uint8Array, s: number, e: number): number | undefined {
  let i = s
  const neg = buf[i] === MINUS
  if (neg || buf[i] === PLUS) i++
  if (i === e || e - i > 16) return undefined
  let v = 0
  for (; i < e; i++) {
    const c = buf[i]!
    if (!isDigit(c)) return undefined
    v = v * 10 + (c - DIGIT0)
  }
  if (v > Number.MAX_SAFE_INTEGER) return undefined
  return neg ? -v : v
}

/** "cents": [+-]?([0-9]+(\.[0-9]{0,2})?|\.[0-9]{1,2}) as integer hundredths, else undefined. */
function parseCents(buf: Uint8Array, s: number, e: number): number | undefined {
  let i = s
  const neg = buf[i] === MINUS
  if (neg || buf[i] === PLUS) i++
  let v = 0
  let intDigits = 0
  for (; i < e && isDigit(buf[i]!); i++) { v = v * 10 + (buf[i]! - DIGIT0); intDigits++ }
  if (intDigits > 16) return undefined
  let frac = 0
  let fracDigits = 0
  if (i < e && buf[i] === DOT) {
    for (i++; i < e && isDigit(buf[i]!); i++) { frac = frac * 10 + (buf[i]! - DIGIT0); fracDigits++ }
    if (fracDigits > 2) return undefined
    if (intDigits === 0 && fracDigits === 0) return undefined
  } else if (intDigits === 0) return undefined
  if (i !== e) return undefined
  v = v * 100 + (fracDigits === 1 ? frac * 10 : frac)
  if (v > MAX_CENTS) return undefined
  return neg ? -v : v
}

/** "number": [+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?, as Number() reads it, else undefined. */
function parseNumber(buf: Uint8Array, s: number, e: number): number | undefined {
  let i = s
  if (buf[i] === MINUS || buf[i] === PLUS) i++
  let digits = 0
  for (; i < e && isDigit(buf[i]!); i++) digits++
  if (i < e && buf[i] === DOT) for (i++; i < e && isDigit(buf[i]!); i++) digits++
  if (digits === 0) return undefined
  if (i < e && (buf[i] === 0x65 || buf[i] === 0x45)) {
    i++
    if (i < e && (buf[i] === MINUS || buf[i] === PLUS)) i++
    let exp = 0
    for (; i < e && isDigit(buf[i]!); i++) exp++
    if (exp === 0) return undefined
  }
  if (i !== e) return undefined
  // Every byte is ASCII here: one char per byte.
  return Number(asciiString(buf, s, e))
}

const TYPE_WORDS: Record<Exclude<CsvType, 'string'>, string> = {
  number: 'a number (like -1.5e3)',
  int: 'an integer (digits with an optional sign, at most 2^53 - 1)',
  cents: 'an amount with at most two decimals (like 12.34), below 2^51 hundredths',
}

/** How the wanted columns of one file's header become a record. */
export class CsvSelection {
  /** For each field of the header: the output position it fills, or -1 to skip it. */
  private readonly wantAt: Int32Array
  /** The last field position any output needs. */
  private readonly lastWanted: number
  private readonly types: (CsvType)[]
  private readonly make: (v: unknown[]) => Record<string, unknown>
  private readonly vals: unknown[]
  readonly keys: readonly string[]

  private constructor(readonly header: readonly string[], keys: string[], fieldOf: number[], types: CsvType[]) {
    this.keys = keys
    this.types = types
    this.wantAt = new Int32Array(header.length).fill(-1)
    fieldOf.forEach((f, k) => { this.wantAt[f] = k })
    this.lastWanted = Math.max(-1, ...fieldOf)
    this.vals = new Array<unknown>(keys.length).fill(null)
    // One object literal per row: every record gets the same shape (JSON.stringify makes any
    // column name a safe string literal in the source).
    this.make = new Function('v', `return { ${keys.map((k, j) => `${JSON.stringify(k)}: v[${j}]`).join(', ')} }`) as (v: unknown[]) => Record<string, unknown>
  }

  /** The selection of a node for a file with this header, or an error naming the missing column. */
  static resolve(node: NodeSpec, header: readonly string[]): CsvSelection | string {
    // A repeated header name: the plain record keeps the last field under the name (its twin).
    const last = new Map<string, number>()
    header.forEach((h, i) => last.set(h, i))
    const keys = node.columns ?? [...last.keys()].filter(k => k !== '__proto__')
    const fieldOf: number[] = []
    for (const k of keys) {
      const f = last.get(k)
      if (f === undefined) return `the file has no column "${k}" (its header: ${header.slice(0, 20).map(h => JSON.stringify(h)).join(', ')}${header.length > 20 ? ', …' : ''})`
      fieldOf.push(f)
    }
    for (const c of Object.keys(node.types ?? {})) {
      if (!last.has(c)) return `the file has no column "${c}" named in "types"`
    }
    // Own properties only: a column named "constructor" or "toString" has no type unless given one.
    const given = node.types ?? {}
    const types = keys.map(k => (Object.hasOwn(given, k) ? given[k]! : 'string') as CsvType)
    return new CsvSelection(header, keys, fieldOf, types)
  }

  /** The record of one line's bytes [s, e) that has no quote, its delimiters at cuts[0, nd);
   *  throws InputLineError(at). */
  fromCuts(buf: Uint8Array, s: number, e: number, cuts: Int32Array, nd: number, delim: number, at: number): Record<string, unknown> {
    const n = this.header.length
    if (nd !== n - 1) this.wrongCount(buf, s, e, delim, at)
    const last = this.lastWanted
    for (let f = 0; f <= last; f++) {
      const k = this.wantAt[f]!
      if (k >= 0) this.vals[k] = this.value(buf, f === 0 ? s : cuts[f - 1]! + 1, f === n - 1 ? e : cuts[f]!, k, at, s, e)
    }
    return this.make(this.vals)
  }

  /** The record of a row the general parser read (a line with quotes). */
  fromFields(fields: string[], at: number, line: string): Record<string, unknown> {
    if (fields.length !== this.header.length) throw countError(fields.length, this.header.length, at, line)
    for (let f = 0; f < fields.length; f++) {
      const k = this.wantAt[f]!
      if (k < 0) continue
      const text = fields[f]!
      if (this.types[k] === 'string') { this.vals[k] = text; continue }
      const bytes = encoder.encode(text)
      this.vals[k] = this.value(bytes, 0, bytes.length, k, at, 0, 0, line)
    }
    return this.make(this.vals)
  }

  /** Field k's value from bytes [s, e); `line` or bytes [ls, le) of buf are the line, for errors. */
  private value(buf: Uint8Array, s: number, e: number, k: number, at: number, ls: number, le: number, line?: string): unknown {
    const type = this.types[k]!
    if (type === 'string') return fieldString(buf, s, e)
    if (s === e) return null
    const v = type === 'int' ? parseInt10(buf, s, e) : type === 'cents' ? parseCents(buf, s, e) : parseNumber(buf, s, e)
    if (v !== undefined) return v
    const text = utf8.decode(buf.subarray(s, e))
    throw new InputLineError(at, `column "${this.keys[k]}" is typed "${type}" but holds ${JSON.stringify(text.slice(0, 200))}: it must be empty or ${TYPE_WORDS[type]}`,
      line ?? utf8.decode(buf.subarray(ls, le)))
  }

  private wrongCount(buf: Uint8Array, s: number, e: number, delim: number, at: number): never {
    let fields = 1
    for (let p = buf.indexOf(delim, s); p >= 0 && p < e; p = buf.indexOf(delim, p + 1)) fields++
    throw countError(fields, this.header.length, at, utf8.decode(buf.subarray(s, e)))
  }
}

const countError = (got: number, want: number, at: number, line: string): InputLineError =>
  new InputLineError(at, `the row has ${got} field(s) but the header has ${want}: fix the row, or read the file with "header": false to get arrays ` +
    '(if quoted fields hold line breaks, set "multiline": true)', line)

/**
 * The records of one split of a file read as regions of whole lines (LineCutter.pushBytes): no
 * string per line. For read_csv with a selection, one-line rows (not "multiline"), and an ASCII
 * delimiter; sources.ts reads the other cases as lines and applies the same CsvSelection.
 */
export class CsvSelectReader {
  private readonly delim: number
  private readonly parser: CsvParser
  private selection: CsvSelection | null = null
  private seen = 0
  private atFileStart: boolean
  /** the delimiters' offsets in the line being read (one more than a row of the header needs) */
  private cuts = new Int32Array(1)

  constructor(private readonly node: NodeSpec, ctx: { atFileStart: boolean; header?: readonly string[] | null }) {
    const d = node.delimiter ?? ','
    if (d.length !== 1 || d.charCodeAt(0) >= 0x80) throw new Error('CsvSelectReader needs an ASCII delimiter')
    this.delim = d.charCodeAt(0)
    this.parser = new CsvParser(d, false)
    this.atFileStart = ctx.atFileStart
    if (!ctx.atFileStart && ctx.header !== undefined && ctx.header !== null) this.select(ctx.header, -1, '')
  }

  /** The records of the region's lines, in order. Throws InputLineError with the line's index. */
  decodeRegion(buf: Uint8Array): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = []
    const n = buf.length
    const delim = this.delim
    let s = 0
    while (s <= n) {
      // One pass over the line's bytes: where it ends, where its delimiters are, whether it has a
      // quote. A JS loop beats a native indexOf per field on lines of a few dozen bytes.
      const cuts = this.cuts
      let nd = 0
      let quote = false
      let i = s
      for (; i < n; i++) {
        const c = buf[i]!
        if (c === 0x0a) break
        if (c === delim) { if (nd < cuts.length) cuts[nd] = i; nd++ } else if (c === 0x22) quote = true
      }
      const nl = i
      const e = nl > s && buf[nl - 1] === 0x0d ? nl - 1 : nl
      const at = this.seen++
      if (this.atFileStart) {
        this.atFileStart = false
        if (e - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3
      }
      if (e > s) {
        const sel = this.selection
        if (sel !== null && !quote) {
          out.push(sel.fromCuts(buf, s, e, cuts, nd, delim, at))
        } else {
          const line = utf8.decode(buf.subarray(s, e))
          let fields: string[] | null
          try {
            fields = this.parser.pushLine(line)
          } catch (err) {
            throw new InputLineError(at, (err as CsvError).message, line)
          }
          if (fields !== null) {
            if (sel === null) this.select(fields, at, line)
            else out.push(sel.fromFields(fields, at, line))
          }
        }
      }
      if (nl >= n) break
      s = nl + 1
    }
    return out
  }

  private select(header: readonly string[], at: number, line: string): void {
    const sel = CsvSelection.resolve(this.node, header)
    if (typeof sel === 'string') throw new InputLineError(at, sel, line)
    this.selection = sel
    this.cuts = new Int32Array(header.length)
  }
}
