import { test, expect } from 'bun:test'
import { prng as rng } from '../support/prng'
import { DEFAULT_SPLIT_BYTES, planSplits, type InputFile, type Split } from '../../src/engine/splits'

// Small seeded PRNG (mulberry32) so a failing case reproduces from its seed.

const ranges = (splits: Split[]) => splits.map(s => [s.start, s.end])

test('default split size is 64 MiB', () => {
  expect(DEFAULT_SPLIT_BYTES).toBe(67_108_864)
  expect(planSplits([{ path: 'a', size: 100 }])).toEqual([{ path: 'a', start: 0, end: 100, fileSize: 100 }])
})

test('as many ranges as splitBytes needs, of equal size; an exact multiple cuts at multiples', () => {
  expect(ranges(planSplits([{ path: 'a', size: 30 }], 10))).toEqual([[0, 10], [10, 20], [20, 30]])
  // 35 bytes need 4 ranges of at most 10: 9, 9, 9, 8 rather than 10, 10, 10, 5.
  expect(ranges(planSplits([{ path: 'a', size: 35 }], 10))).toEqual([[0, 9], [9, 18], [18, 27], [27, 35]])
  // The W3 orders file: 100 MiB at 64 MiB is two tasks of 50 MiB, not 64 + 36.
  const mib = 2 ** 20
  expect(ranges(planSplits([{ path: 'a', size: 100 * mib }], 64 * mib))).toEqual([[0, 50 * mib], [50 * mib, 100 * mib]])
})

test('a remainder under 10% of splitBytes earns no range of its own; exactly 10% does', () => {
  expect(ranges(planSplits([{ path: 'a', size: 209 }], 100))).toEqual([[0, 105], [105, 209]])
  expect(ranges(planSplits([{ path: 'a', size: 210 }], 100))).toEqual([[0, 70], [70, 140], [140, 210]])
  // A file smaller than 10% of splitBytes has no previous split to join: it is its own split.
  expect(ranges(planSplits([{ path: 'a', size: 5 }], 100))).toEqual([[0, 5]])
})

test('empty files yield no split; files keep their order and carry path and size', () => {
  const files: InputFile[] = [
    { path: 'z.txt', size: 12 }, { path: 'empty.txt', size: 0 }, { path: 'a.txt', size: 4 },
  ]
  expect(planSplits(files, 8)).toEqual([
    { path: 'z.txt', start: 0, end: 6, fileSize: 12 },
    { path: 'z.txt', start: 6, end: 12, fileSize: 12 },
    { path: 'a.txt', start: 0, end: 4, fileSize: 4 },
  ])
  expect(planSplits([], 8)).toEqual([])
  expect(planSplits([{ path: 'e', size: 0 }], 1)).toEqual([])
})

test('splitBytes of 1 gives one split per byte', () => {
  expect(ranges(planSplits([{ path: 'a', size: 3 }], 1))).toEqual([[0, 1], [1, 2], [2, 3]])
})

test('rejects a splitBytes below 1 or not a whole number, and a bad file size', () => {
  for (const bad of [0, -1, 0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    expect(() => planSplits([{ path: 'a', size: 10 }], bad)).toThrow(RangeError)
  }
  expect(() => planSplits([{ path: 'a', size: -1 }], 10)).toThrow(RangeError)
  expect(() => planSplits([{ path: 'a', size: 2.5 }], 10)).toThrow(RangeError)
})

test('random files: splits tile each non-empty file exactly, within size bounds', () => {
  const next = rng(7)
  for (let round = 0; round < 500; round++) {
    const splitBytes = 1 + Math.floor(next() * 200)
    const files: InputFile[] = Array.from({ length: Math.floor(next() * 5) }, (_, i) => ({
      path: `f${i}`, size: next() < 0.2 ? 0 : Math.floor(next() * 2000),
    }))
    const splits = planSplits(files, splitBytes)
    let k = 0
    for (const f of files) {
      let covered = 0
      while (k < splits.length && splits[k]?.path === f.path) {
        const s = splits[k++] as Split
        expect(s.fileSize).toBe(f.size)
        expect(s.start).toBe(covered)
        expect(s.end).toBeGreaterThan(s.start)
        // No range exceeds 1.1 × splitBytes, and sizes within a file differ by at most a byte.
        expect((s.end - s.start) * 10).toBeLessThan(splitBytes * 11)
        const n = splits.filter(x => x.path === f.path).length
        expect(Math.abs((s.end - s.start) - f.size / n)).toBeLessThan(1)
        // As few ranges as the rule allows: one fewer would exceed splitBytes, unless by under 10%.
        if (n > 1) expect(f.size / (n - 1)).toBeGreaterThan(splitBytes)
        expect(f.size / n).toBeLessThanOrEqual(splitBytes * 1.1)
        covered = s.end
      }
      expect(covered).toBe(f.size)
    }
    expect(k).toBe(splits.length)
  }
})
