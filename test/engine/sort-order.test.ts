// sortedOrder against a plain reference: an insertion sort with a hand-written comparison of the
// contract's order (numbers, then strings by code unit; equal keys in input order).
import { describe, expect, test } from 'bun:test'
import { sortedOrder } from '../../src/engine/sort-order'
import { CombineTable } from '../../src/engine/combine-table'
import { partitionOf } from '../../src/engine/keys'
import { prng } from '../support/prng'

/** Stable insertion sort: obviously right, slow, independent of the engine's compareKeys. */
function referenceOrder(keys: readonly unknown[], descending: boolean): number[] {
  const rank = (k: unknown): number => typeof k === 'number' ? 0 : typeof k === 'string' ? 1 : 2
  const cmp = (a: unknown, b: unknown): number => {
    if (rank(a) !== rank(b)) return rank(a) - rank(b)
    if (typeof a === 'number' && typeof b === 'number') {
      if (Number.isNaN(a) || Number.isNaN(b)) return Number(Number.isNaN(a)) - Number(Number.isNaN(b))
      return a < b ? -1 : a > b ? 1 : 0
    }
    if (Array.isArray(a) && Array.isArray(b)) { const c = cmp(a[0], b[0]); return c !== 0 ? c : a.length - b.length }
    return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0
  }
  if (keys.length > 1000) {
    // Too many for the insertion sort: the same comparison through a stable sort.
    return Array.from({ length: keys.length }, (_, i) => i).sort((a, b) => (descending ? -cmp(keys[a], keys[b]) : cmp(keys[a], keys[b])) || a - b)
  }
  const out: number[] = []
  for (let i = 0; i < keys.length; i++) {
    let j = out.length
    while (j > 0 && (descending ? -cmp(keys[out[j - 1]!], keys[i]) : cmp(keys[out[j - 1]!], keys[i])) > 0) j--
    out.splice(j, 0, i)
  }
  return out
}

describe('sortedOrder', () => {
  const rand = prng(11)
  const word = (): string => Array.from({ length: 1 + Math.floor(rand() * 4) }, () => 'abé\u00ff\u4e00Z0'[Math.floor(rand() * 7)]).join('')
  const cases: Record<string, unknown[]> = {
    'strings with duplicates, non-ASCII and prefixes': Array.from({ length: 600 }, word),
    'numbers with duplicates, -0, 0, NaN and infinities': [...Array.from({ length: 400 }, () => Math.floor(rand() * 50) - 25), -0, 0, NaN, Infinity, -Infinity, NaN, 0.5, -0],
    'numbers of every magnitude and sign': Array.from({ length: 500 }, () => (rand() - 0.5) * 10 ** Math.floor(rand() * 600 - 300)).concat([Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE, 1e-320, -1e-320]),
    'mixed strings and numbers': Array.from({ length: 300 }, () => rand() < 0.5 ? word() : Math.floor(rand() * 20)),
    'arrays': Array.from({ length: 200 }, () => [Math.floor(rand() * 10), 'x'].slice(0, 1 + Math.floor(rand() * 2))),
    // Enough keys for every step of the radix sorts: groups past the insertion sort's size, a
    // byte all keys share, keys that end inside a group, every 16-bit digit of a number.
    'many strings sharing long prefixes': Array.from({ length: 30000 }, () => ['', 'prefix-', 'prefix-shared-'][Math.floor(rand() * 3)] + word() + (rand() < 0.5 ? '' : word())),
    'many numbers, close and far': Array.from({ length: 30000 }, () => rand() < 0.5 ? Math.floor(rand() * 70000) - 35000 : (rand() - 0.5) * 2 ** Math.floor(rand() * 80 - 40)),
    'one key': ['only'],
    'no key': [],
  }
  for (const [name, keys] of Object.entries(cases)) {
    for (const descending of [false, true]) {
      test(`${name}${descending ? ', descending' : ''}`, () => {
        expect([...sortedOrder(keys, descending)]).toEqual(referenceOrder(keys, descending))
      })
    }
  }
})

describe('CombineTable', () => {
  test('one entry per key by value; each in its key partition; first-insertion order within a partition', () => {
    const t = new CombineTable(3)
    const keys: unknown[] = ['a', 1, -0, 0, NaN, NaN, ['a', 1], ['a', 1], '["a",1]', 'b', 'a', 2, '__proto__', 'constructor', '7', 7, '__proto__']
    const seen: unknown[] = []
    for (const k of keys) {
      const e = t.find(k)
      if (e === undefined) { t.insert(k, 1); seen.push(k) } else e.value = (e.value as number) + 1
    }
    // A plain reference: keys equal when their JSON forms are (with -0 as 0 and NaN as NaN).
    const id = (k: unknown): string => Object.is(k, -0) ? '0' : Number.isNaN(k) ? 'NaN' : JSON.stringify(k)
    const counts = new Map<string, number>()
    for (const k of keys) counts.set(id(k), (counts.get(id(k)) ?? 0) + 1)
    expect(t.size).toBe(counts.size)
    const parts = t.drain()
    expect(parts.flat().map(e => [id(e.key), e.value]).sort()).toEqual([...counts.entries()].sort())
    parts.forEach((entries, p) => {
      for (const e of entries) expect(partitionOf(e.key, 3)).toBe(p)
      expect(entries.map(e => id(e.key))).toEqual(seen.filter(k => partitionOf(k, 3) === p).map(id))
    })
    // Drained, the table is empty and takes keys again.
    expect(t.size).toBe(0)
    expect(t.find('a')).toBeUndefined()
    t.insert('a', 5)
    expect(t.drain().flat().map(e => [e.key, e.value])).toEqual([['a', 5]])
  })
})
