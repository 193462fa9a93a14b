// The narrow built-in operators of a stage (words, grep, key_by_field) and how they hand data on
// without a JS value per line or word where they can. Pure.
//
// Three ways records move through a stage, each used only when every consumer takes it:
//  - push(batch): JS values, as every operator takes them (UDFs, sinks, shuffle writes);
//  - pushRegion(bytes): whole lines of the input, undecoded (lines joined by '\n', each possibly
//    ending in '\r'), from read_text to words and grep;
//  - pushToken(buf, start, end): one word's bytes, from words to count_by_value's map side;
//  - pushLines(bytes, count): `count` string records as UTF-8, each followed by '\n' (a record may
//    hold '\n' itself: the count says how many there are), from a sort held as bytes to write_text;
//    the bytes are the producer's to reuse once the call returns (copy what must be kept).
// A built-in whose consumers do not all take the cheaper form makes JS values for them there, at
// the boundary: words makes a string per word, grep one per matching line. Fusing a chain this
// way is what whole-stage code generation does for Spark: the loop over the input runs through
// the operators with no record objects in between.
import type { NodeSpec } from '../../api/jobs'
import type { Consumer } from '../pipeline'
import { UdfError, describeRecord } from '../records'
import { LineMatcher } from './grep'
import { DEFAULT_WORD_PATTERN, WordScanner, parseWordPattern, tokenString, type TokenSink } from './words'

export interface RegionConsumer extends Consumer { pushRegion(region: Uint8Array): void }
export interface TokenConsumer extends Consumer { pushToken(buf: Uint8Array, start: number, end: number): void }

export const takesRegions = (c: Consumer): c is RegionConsumer => typeof (c as Partial<RegionConsumer>).pushRegion === 'function'
export const takesTokens = (c: Consumer): c is TokenConsumer => typeof (c as Partial<TokenConsumer>).pushToken === 'function'
export interface LinesConsumer extends Consumer { pushLines(bytes: Uint8Array, count: number): void }
export const takesLines = (c: Consumer): c is LinesConsumer => typeof (c as Partial<LinesConsumer>).pushLines === 'function'

/** The number of lines in a region. */
export function linesIn(region: Uint8Array): number {
  let n = 1
  for (let at = region.indexOf(0x0a); at >= 0; at = region.indexOf(0x0a, at + 1)) n++
  return n
}

const BATCH = 8192

export const BUILTIN_NARROW_OPS: ReadonlySet<string> = new Set(['words', 'grep', 'key_by_field'])

export function builtinOperator(node: NodeSpec, next: Consumer): Consumer {
  switch (node.op) {
    case 'words': return new WordsOperator(node, next)
    case 'grep': return new GrepOperator(node, next)
    case 'key_by_field': return keyByField(node, next)
    default: throw new Error(`op ${node.op} is not a built-in narrow operator`)
  }
}

function notAString(node: NodeSpec, op: string, r: unknown): UdfError {
  return new UdfError(node.id, `${op} reads text, but got ${describeRecord(r).slice(0, 80)}: give it lines (read_text) or strings`, describeRecord(r))
}

class WordsOperator implements RegionConsumer {
  private readonly scanner: WordScanner
  private readonly sink: TokenSink
  private out: string[] = []

  constructor(private readonly node: NodeSpec, private readonly next: Consumer) {
    const cls = parseWordPattern(node.pattern ?? DEFAULT_WORD_PATTERN)
    if (typeof cls === 'string') throw new UdfError(node.id, `node "${node.id}": ${cls}`, '')
    this.scanner = new WordScanner(cls, node.lowercase !== false)
    if (takesTokens(next)) {
      this.sink = (buf, start, end) => next.pushToken(buf, start, end)
    } else {
      this.sink = (buf, start, end) => {
        this.out.push(tokenString(buf, start, end))
        if (this.out.length >= BATCH) this.flush()
      }
    }
  }

  push(batch: unknown[]): void {
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (typeof r !== 'string') throw notAString(this.node, 'words', r)
      this.scanner.scanString(r, this.sink)
    }
    this.flush()
  }

  pushRegion(region: Uint8Array): void {
    this.scanner.scan(region, 0, region.length, this.sink)
    this.flush()
  }

  private flush(): void {
    if (this.out.length === 0) return
    const out = this.out
    this.out = []
    this.next.push(out)
  }
}

class GrepOperator implements RegionConsumer {
  private readonly matcher: LineMatcher

  constructor(private readonly node: NodeSpec, private readonly next: Consumer) {
    this.matcher = new LineMatcher(node.pattern ?? '', node.flags ?? '')
  }

  push(batch: unknown[]): void {
    const out: unknown[] = []
    const m = this.matcher
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (typeof r !== 'string') throw notAString(this.node, 'grep', r)
      if (m.test(r)) out.push(r)
    }
    if (out.length > 0) this.next.push(out)
  }

  pushRegion(region: Uint8Array): void {
    const out: string[] = []
    this.matcher.matchRegion(region, out)
    if (out.length > 0) this.next.push(out)
  }
}

function keyByField(node: NodeSpec, next: Consumer): Consumer {
  const field = node.field ?? ''
  return {
    push(batch) {
      const out = new Array<unknown>(batch.length)
      for (let i = 0; i < batch.length; i++) {
        const r = batch[i]
        if (typeof r !== 'object' || r === null || !Object.hasOwn(r, field)) {
          throw new UdfError(node.id, `key_by_field: the record has no field "${field}": ${describeRecord(r).slice(0, 80)}`, describeRecord(r))
        }
        out[i] = [(r as Record<string, unknown>)[field], r]
      }
      next.push(out)
    },
  }
}
