// CSV rows out of text lines, RFC 4180: fields split by a one-character delimiter, a field in
// double quotes may hold the delimiter and `""` (a literal quote), and with `multiline` a newline.
// Pure: it is fed lines (as LineCutter cuts them) and returns rows; it does not read files and
// does not know the header rule (sources.ts turns rows into records).
//
// Leniency, as most readers have it: a quote inside an unquoted field is kept as a character, and
// characters after a closing quote are appended (`"ab"c` gives `abc`). A blank line outside a
// quoted field is no row. Inside a multiline quoted field, a line break is read as `\n` (LineCutter
// has already dropped the `\r` of a CRLF ending).

const QUOTE = 0x22

export class CsvError extends Error {}

export class CsvParser {
  readonly delimiter: string
  private readonly delimCode: number
  /** Fields of a row whose quoted field is still open at the end of a line (multiline only). */
  private open: string[] | null = null
  private openField = ''

  constructor(delimiter: string, private readonly multiline: boolean) {
    if (delimiter.length !== 1) throw new CsvError(`the delimiter must be one character, got ${JSON.stringify(delimiter)}`)
    if (delimiter === '"' || delimiter === '\n' || delimiter === '\r') throw new CsvError(`${JSON.stringify(delimiter)} cannot be a delimiter`)
    this.delimiter = delimiter
    this.delimCode = delimiter.charCodeAt(0)
  }

  /** True while a quoted field runs on to the next line. */
  get inQuotedField(): boolean {
    return this.open !== null
  }

  /**
   * The row that ends on this line, or null when the line is blank or (multiline) the row goes on.
   * Throws CsvError for a quoted field left open at the end of a line without `multiline`.
   */
  pushLine(line: string): string[] | null {
    if (this.open === null) {
      if (line.length === 0) return null
      // The common case, no quote on the line: one native split.
      if (line.indexOf('"') < 0) return line.split(this.delimiter)
      return this.parse(line, 0, [], '', false)
    }
    // Continue the open quoted field after the line break.
    const fields = this.open
    const field = this.openField + '\n'
    this.open = null
    this.openField = ''
    return this.parse(line, 0, fields, field, true)
  }

  /** At the end of the input: a quoted field that is still open is an error. */
  finish(): void {
    if (this.open !== null) {
      this.open = null
      throw new CsvError('the file ends inside a quoted field: a closing " is missing')
    }
  }

  // A small state machine over one line. `quoted` says we are inside quotes at `from`.
  private parse(line: string, from: number, fields: string[], field: string, quoted: boolean): string[] | null {
    const n = line.length
    let i = from
    let start = i            // start of the pending run of plain characters
    let atFieldStart = !quoted && field.length === 0
    while (i < n) {
      const c = line.charCodeAt(i)
      if (quoted) {
        if (c === QUOTE) {
          if (i + 1 < n && line.charCodeAt(i + 1) === QUOTE) {
            field += line.slice(start, i + 1)   // keeps one quote
            i += 2
            start = i
            continue
          }
          field += line.slice(start, i)
          quoted = false
          i++
          start = i
          continue
        }
        i++
        continue
      }
      if (c === this.delimCode) {
        fields.push(field + line.slice(start, i))
        field = ''
        i++
        start = i
        atFieldStart = true
        continue
      }
      if (c === QUOTE && atFieldStart) {
        quoted = true
        i++
        start = i
        atFieldStart = false
        continue
      }
      atFieldStart = false
      i++
    }
    field += line.slice(start, n)
    if (quoted) {
      if (!this.multiline) {
        throw new CsvError('a quoted field is not closed on its line: close the quote, or set "multiline": true if fields hold line breaks')
      }
      this.open = fields
      this.openField = field
      return null
    }
    fields.push(field)
    return fields
  }
}

/** A row reader made for one header: the record of a plain line, or null when the line needs the
 *  general path (CsvParser): a quote, a blank line, or another number of fields. */
export type FastRow = (line: string) => Record<string, string> | null

/** Past this many columns the generated reader is not worth its code size. */
const FAST_ROW_MAX_COLUMNS = 64

/**
 * Compiles a reader that cuts a line without quotes at the delimiter with indexOf and builds the
 * record as one object literal: no array of fields in between, and every record of the file gets
 * the same shape from the start (which the shuffle encoder and later UDFs also profit from). Half
 * the cost of split() and a property at a time. Null when the header does not suit: a name that an
 * object literal would not make an own property (`__proto__`), a repeated name, or too many columns.
 */
export function compileFastRow(header: readonly string[], delimiter: string): FastRow | null {
  if (header.length === 0 || header.length > FAST_ROW_MAX_COLUMNS) return null
  if (new Set(header).size !== header.length || header.includes('__proto__')) return null
  const n = header.length
  const lines = ['if (line.length === 0 || line.indexOf(\'"\') >= 0) return null', 'let a = -1']
  // c0 … c(n-1): where each delimiter is; the last field runs to the end of the line.
  for (let j = 0; j < n - 1; j++) lines.push(`const c${j} = line.indexOf(d, a + 1); if (c${j} < 0) return null; a = c${j}`)
  lines.push('if (line.indexOf(d, a + 1) >= 0) return null')
  const field = (j: number): string => `line.slice(${j === 0 ? '0' : `c${j - 1} + 1`}${j === n - 1 ? '' : `, c${j}`})`
  // JSON.stringify quotes each name as a string literal: any header text is safe in the source.
  lines.push(`return { ${header.map((h, j) => `${JSON.stringify(h)}: ${field(j)}`).join(', ')} }`)
  const make = new Function('d', `return line => { ${lines.join('\n')} }`) as (d: string) => FastRow
  return make(delimiter)
}
