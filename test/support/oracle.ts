// Plain sequential references for the operator, DAG and example tests: a seeded generator, writers
// of JSONL and CSV files whose records the test knows, and value-keyed helpers written with plain
// loops and JSON text. Nothing here imports engine code: the cluster is checked against this.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { partFiles } from './cluster'

/** mulberry32: a small seeded generator, so a failing case reproduces from its seed. */
export function seeded(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: n => Math.floor(next() * n),
    pick: xs => xs[Math.floor(next() * xs.length)]!,
    chance: p => next() < p,
  }
}

/** A value's identity as text: keys here are numbers, strings and arrays of those, so JSON is exact
 *  (1 and "1" differ, ["a", 1] equals ["a", 1]). */
export const canon = (v: unknown): string => JSON.stringify(v)

/** A multiset of values as sorted JSON lines: equal multisets give equal arrays. */
export const bag = (values: readonly unknown[]): string[] => values.map(canon).sort()

/** Contract order of keys (section 4), written out plainly: numbers before strings before arrays. */
export function plainCompare(a: unknown, b: unknown): number {
  const rank = (x: unknown): number => typeof x === 'number' ? 0 : typeof x === 'string' ? 1 : Array.isArray(x) ? 2 : 3
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb) return ra - rb
  if (ra === 0) return (a as number) - (b as number)
  if (ra === 1) return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0
  if (ra === 2) {
    const x = a as unknown[]
    const y = b as unknown[]
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = plainCompare(x[i], y[i])
      if (c !== 0) return c
    }
    return x.length - y.length
  }
  return 0
}

export function writeJsonl(path: string, records: readonly unknown[]): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, records.map(r => JSON.stringify(r) + '\n').join(''))
}

/** RFC 4180 writing: a field with the delimiter, a quote or a line break goes in quotes. */
export function writeCsv(path: string, rows: readonly (readonly string[])[], delimiter = ',', eol = '\n'): void {
  const field = (f: string): string => f.includes(delimiter) || f.includes('"') || f.includes('\n') || f.includes('\r') || (f.length > 0 && f.trim() !== f)
    ? `"${f.replaceAll('"', '""')}"` : f
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, rows.map(r => r.map(field).join(delimiter) + eol).join(''))
}

/** The JSON records of an output dir's part files, in part order. */
export function readJsonParts(dir: string): unknown[] {
  return readPartsByFile(dir).flat()
}

/** The JSON records of each part file of an output dir, one array per part, in part order. */
export function readPartsByFile(dir: string): unknown[][] {
  return partFiles(dir).map(f => {
    const text = readFileSync(join(dir, f), 'utf8')
    return text === '' ? [] : text.replace(/\n$/, '').split('\n').map(l => JSON.parse(l) as unknown)
  })
}

/** Part files are each sorted, hold disjoint ascending (descending) key ranges, and hold every
 *  record of `want` exactly once. Returns the problems found (empty when all holds). */
export function sortProblems(parts: readonly (readonly unknown[])[], keyOf: (r: unknown) => unknown, descending: boolean, want: readonly unknown[]): string[] {
  const problems: string[] = []
  const order = (a: unknown, b: unknown): number => descending ? plainCompare(b, a) : plainCompare(a, b)
  let last: unknown
  let seenAny = false
  parts.forEach((part, p) => {
    for (let i = 0; i < part.length; i++) {
      const k = keyOf(part[i])
      if (seenAny && order(last, k) > 0) {
        problems.push(`part ${p} record ${i}: key ${canon(k)} comes after ${canon(last)}${i === 0 ? ' (ranges overlap)' : ''}`)
        if (problems.length > 5) return
      }
      last = k
      seenAny = true
    }
  })
  const got = bag(parts.flat())
  const expected = bag(want)
  if (got.length !== expected.length) problems.push(`${got.length} records, want ${expected.length}`)
  else if (got.some((g, i) => g !== expected[i])) problems.push('the records differ from the input')
  return problems
}
