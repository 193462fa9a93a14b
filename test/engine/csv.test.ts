// read_csv's records against a plain reference reader written here: random files with quoted and
// plain fields, blank lines, odd delimiters and awkward header names, so that the compiled reader
// for plain lines (compileFastRow) and the general parser agree on every line they may meet.
import { describe, expect, test } from 'bun:test'
import { prng } from '../support/prng'
import type { NodeSpec } from '../../src/api/jobs'
import { compileFastRow } from '../../src/engine/operators/csv'
import { InputLineError, sourceDecoder } from '../../src/engine/operators/sources'

/** One line of RFC 4180 (no line breaks in fields), char by char, lenient like the engine. */
function referenceFields(line: string, d: string): string[] {
  const fields: string[] = []
  let field = ''
  let quoted = false
  let atStart = true
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { field += '"'; i++ } else if (c === '"') quoted = false
      else field += c
    } else if (c === d) { fields.push(field); field = ''; atStart = true; continue } else if (c === '"' && atStart) quoted = true
    else field += c
    atStart = false
  }
  fields.push(field)
  return fields
}

/** The records of a file's lines, header first; an Error for a row of the wrong width. */
function referenceRecords(lines: string[], d: string): unknown[] | Error {
  let header: string[] | null = null
  const out: unknown[] = []
  for (const line of lines) {
    if (line === '') continue
    const f = referenceFields(line, d)
    if (header === null) { header = f; continue }
    if (f.length !== header.length) return new Error('width')
    // Assignment, as the engine's general path does (a `__proto__` column sets no own property).
    const rec: Record<string, string> = {}
    for (let j = 0; j < header.length; j++) rec[header[j]!] = f[j]!
    out.push(rec)
  }
  return out
}

const NAMES = ['id', 'name', 'a b', 'é', 'x"y', '__proto__', 'constructor', '', 'toString', '0', 'line\\n', '${x}', '`', "'"]

function randomFile(rand: () => number, d: string): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const width = 1 + Math.floor(rand() * 5)
  const header = Array.from({ length: width }, () => pick(NAMES))
  const value = (): string => {
    const plain = pick(['', '1', 'abc', '12.5', ' sp ', 'ü', "it's", 'a\\b'])
    const r = rand()
    if (r < 0.15) return `"${plain}${d}${plain}"`         // a quoted delimiter
    if (r < 0.25) return `"say ""${plain}"""`             // doubled quotes
    if (r < 0.3) return `a"b`                               // a lenient quote mid-field
    return plain
  }
  const quoteName = (h: string): string => h.includes('"') || h.includes(d) ? `"${h.replaceAll('"', '""')}"` : h
  const lines = [header.map(quoteName).join(d)]
  for (let i = 0; i < 60; i++) {
    const r = rand()
    if (r < 0.05) { lines.push(''); continue }
    // now and then a row one field short or long
    const w = r < 0.03 ? width + 1 : r < 0.06 && width > 1 ? width - 1 : width
    lines.push(Array.from({ length: w }, value).join(d))
  }
  return lines
}

function engineRecords(lines: string[], d: string, chunk: number): unknown[] | Error {
  const dec = sourceDecoder({ id: 'c', op: 'read_csv', path: 'f.csv', delimiter: d } as NodeSpec, { path: 'f.csv', atFileStart: true })
  const out: unknown[] = []
  try {
    for (let i = 0; i < lines.length; i += chunk) out.push(...dec.decode(lines.slice(i, i + chunk)))
    out.push(...dec.finish())
  } catch (e) {
    if (e instanceof InputLineError) return new Error('width')
    throw e
  }
  return out
}

describe('read_csv against a reference reader', () => {
  test('random files, several delimiters, awkward header names, chunks cut anywhere', () => {
    const rand = prng(77)
    let compiled = 0
    for (let round = 0; round < 400; round++) {
      const d = [',', ';', '\t', '|'][round % 4]!
      const lines = randomFile(rand, d)
      if (compileFastRow(referenceFields(lines[0]!, d), d) !== null) compiled++
      const expected = referenceRecords(lines, d)
      const got = engineRecords(lines, d, 1 + Math.floor(rand() * 20))
      if (expected instanceof Error) expect(got).toBeInstanceOf(Error)
      else expect(got).toEqual(expected)
    }
    // Both paths were taken: headers with a compiled reader, and headers without one.
    expect(compiled).toBeGreaterThan(100)
    expect(compiled).toBeLessThan(350)
  })

  test('a split that does not start the file reads plain lines with the header it is given', () => {
    const dec = sourceDecoder({ id: 'c', op: 'read_csv', path: 'f.csv' } as NodeSpec, { path: 'f.csv', atFileStart: false, header: ['k', 'v'] })
    expect(dec.decode(['1,a', '', '"2",b', '3,'])).toEqual([{ k: '1', v: 'a' }, { k: '2', v: 'b' }, { k: '3', v: '' }])
    expect(() => dec.decode(['1,2,3'])).toThrow(InputLineError)
  })
})

describe('compileFastRow', () => {
  test('plain lines of the header\'s width; null for anything the general parser must see', () => {
    const row = compileFastRow(['id', 'a b', 'x"y'], ',')!
    expect(row('1,2,3')).toEqual({ id: '1', 'a b': '2', 'x"y': '3' })
    expect(row(',,')).toEqual({ id: '', 'a b': '', 'x"y': '' })
    expect(row('')).toBeNull()
    expect(row('1,2')).toBeNull()
    expect(row('1,2,3,4')).toBeNull()
    expect(row('1,"2",3')).toBeNull()
    const one = compileFastRow(['only'], ';')!
    expect(one('a,b')).toEqual({ only: 'a,b' })
    expect(one('a;b')).toBeNull()
    expect(one('')).toBeNull()
  })

  test('records get own properties only, in header order; unsuitable headers get no reader', () => {
    const row = compileFastRow(['constructor', 'toString', '', '${1}'], '\t')!
    const r = row('a\tb\tc\td')!
    expect(Object.keys(r)).toEqual(['constructor', 'toString', '', '${1}'])
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype)
    expect(compileFastRow(['__proto__', 'a'], ',')).toBeNull()
    expect(compileFastRow(['a', 'a'], ',')).toBeNull()
    expect(compileFastRow([], ',')).toBeNull()
    expect(compileFastRow(Array.from({ length: 65 }, (_, i) => `c${i}`), ',')).toBeNull()
  })
})
