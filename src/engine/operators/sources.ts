// Records of the source ops out of the lines of one split: read_text (a line, or [path, line]),
// read_jsonl (a parsed line), read_csv (an object per row keyed by the header, or an array).
// Pure: the worker reads the bytes and cuts lines (lines.ts); this turns lines into records.
//
// A line that cannot be read fails with InputLineError, which carries the line's index within the
// split: only the worker can turn that into the file's line number (it counts the newlines before
// the split, which is worth doing on the error path only).
import type { NodeSpec } from '../../api/jobs'
import { CsvError, CsvParser, compileFastRow, type FastRow } from './csv'
import { CsvSelection, selectsColumns } from '../builtins/csv'

export class InputLineError extends Error {
  /** lineInSplit: 0-based index of the bad line among the split's lines */
  constructor(readonly lineInSplit: number, message: string, readonly line: string) { super(message) }
}

export interface SourceDecoder {
  /** The records of the next lines of the split, in order. */
  decode(lines: string[]): unknown[]
  /** End of the split: the records still held back, if any. */
  finish(): unknown[]
}

export type SourceContext = {
  /** the file's path relative to the data dir, as records with `with_path` show it */
  path: string
  /** true when the split starts at byte 0: its first line is the file's first line (header, BOM) */
  atFileStart: boolean
  /** read_csv with a header, for a split that does not start the file: the file's header row */
  header?: readonly string[] | null
}

const BOM = 0xfeff

export function sourceDecoder(node: NodeSpec, ctx: SourceContext): SourceDecoder {
  switch (node.op) {
    case 'read_text': return node.with_path === true ? new PathLines(ctx.path) : PLAIN_LINES
    case 'read_jsonl': return new JsonLines(ctx.atFileStart)
    case 'read_csv': return new CsvRows(node, ctx)
    default: throw new Error(`op ${node.op} is not a source`)
  }
}

const PLAIN_LINES: SourceDecoder = { decode: lines => lines, finish: () => [] }

class PathLines implements SourceDecoder {
  constructor(private readonly path: string) {}
  decode(lines: string[]): unknown[] {
    const out = new Array<unknown>(lines.length)
    for (let i = 0; i < lines.length; i++) out[i] = [this.path, lines[i]]
    return out
  }
  finish(): unknown[] { return [] }
}

/** Blank lines (only whitespace) are skipped, as a trailing empty line often is in JSONL files. */
class JsonLines implements SourceDecoder {
  private seen = 0

  constructor(private atFileStart: boolean) {}

  decode(lines: string[]): unknown[] {
    const out: unknown[] = []
    const base = this.seen
    this.seen += lines.length
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i]!
      if (line.length === 0) continue
      if (this.atFileStart && i === 0 && base === 0 && line.charCodeAt(0) === BOM) line = line.slice(1)
      try {
        out.push(JSON.parse(line))
      } catch (e) {
        if (line.trim() === '') continue
        throw new InputLineError(base + i, `not a JSON value (${(e as Error).message})`, line)
      }
    }
    this.atFileStart = false
    return out
  }

  finish(): unknown[] { return [] }
}

class CsvRows implements SourceDecoder {
  private readonly parser: CsvParser
  private readonly wantHeader: boolean
  private readonly multiline: boolean
  private header: readonly string[] | null
  /** made once the header is known: reads plain lines without the general parser */
  private fastRow: FastRow | null = null
  private seen = 0
  /** the split line where the row being read began (a multiline row spans several) */
  private rowStart = 0
  private rowStartLine = ''
  /** "columns" / "types": how a row of this file's header becomes the projected, typed record */
  private selection: CsvSelection | null = null

  constructor(private readonly node: NodeSpec, private readonly ctx: SourceContext) {
    this.parser = new CsvParser(node.delimiter ?? ',', node.multiline === true)
    this.wantHeader = node.header !== false
    this.multiline = node.multiline === true
    this.header = ctx.atFileStart ? null : ctx.header ?? null
    if (this.header !== null) this.useHeader(this.header, -1, '')
  }

  private useHeader(header: readonly string[], at: number, line: string): void {
    this.header = header
    if (selectsColumns(this.node)) {
      const sel = CsvSelection.resolve(this.node, header)
      if (typeof sel === 'string') throw new InputLineError(at, sel, line)
      this.selection = sel
    } else if (this.wantHeader) {
      this.fastRow = compileFastRow(header, this.parser.delimiter)
    }
  }

  decode(lines: string[]): unknown[] {
    const out: unknown[] = []
    const base = this.seen
    this.seen += lines.length
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i]!
      const at = base + i
      if (at === 0 && this.ctx.atFileStart && line.charCodeAt(0) === BOM) line = line.slice(1)
      // The common case: a complete row on one line, no quotes, as many fields as the header.
      if (this.fastRow !== null && !this.parser.inQuotedField) {
        const rec = this.fastRow(line)
        if (rec !== null) { out.push(rec); continue }
      }
      if (!this.parser.inQuotedField) { this.rowStart = at; this.rowStartLine = line }
      let fields: string[] | null
      try {
        fields = this.parser.pushLine(line)
      } catch (e) {
        throw new InputLineError(at, (e as CsvError).message, line)
      }
      if (fields === null) continue
      if (!this.wantHeader) { out.push(fields); continue }
      if (this.header === null) {
        if (this.ctx.atFileStart) { this.useHeader(fields, at, line); continue }
        throw new InputLineError(at, 'the file\'s header row is unknown to this split', line)
      }
      out.push(this.selection !== null ? this.selection.fromFields(fields, this.rowStart, this.rowStartLine) : this.row(fields, at, line))
    }
    return out
  }

  finish(): unknown[] {
    try {
      this.parser.finish()
    } catch (e) {
      throw new InputLineError(this.rowStart, (e as CsvError).message, this.rowStartLine)
    }
    return []
  }

  private row(fields: string[], at: number, line: string): Record<string, string> {
    const header = this.header!
    if (fields.length !== header.length) {
      throw new InputLineError(at, `the row has ${fields.length} field(s) but the header has ${header.length}: ` +
        'fix the row, or read the file with "header": false to get arrays' +
        (this.multiline ? '' : ' (if quoted fields hold line breaks, set "multiline": true)'), line)
    }
    const rec: Record<string, string> = {}
    for (let j = 0; j < header.length; j++) rec[header[j]!] = fields[j]!
    return rec
  }
}

/** The header row of a CSV file from its first line (for splits that do not start the file). */
export function csvHeader(node: NodeSpec, firstLine: string): string[] {
  const parser = new CsvParser(node.delimiter ?? ',', false)
  const line = firstLine.charCodeAt(0) === BOM ? firstLine.slice(1) : firstLine
  try {
    return parser.pushLine(line) ?? []
  } catch (e) {
    throw new InputLineError(0, (e as CsvError).message, line)
  }
}
