// Spill: accounting, run framing, k-way merge, and aggregation/sorting at any size, checked
// against plain in-memory loops. Runs live in a memory-backed RunStore here; the worker's store
// writes files (tested through the cluster).
import { describe, expect, test } from 'bun:test'
import { SharedBudget, UnlimitedBudget, keyBytes, newBudgetBuffer, newPressureBuffer, raisePressure, reservedBytes, Reservation, estimateBytes, setSqueeze } from '../../src/engine/spill/budget'
import { SpillingAggregator, SpillingSorter, type SpillContext } from '../../src/engine/spill/external'
import { mergeSorted } from '../../src/engine/spill/merge'
import { MemoryRunStore as OneChunkRunStore, readRun, writeRun, WRITE_CHUNK_BYTES, type RunFile, type RunStore } from '../../src/engine/spill/runs'
import { compareKeys } from '../../src/engine/keys'

class MemoryRunStore implements RunStore {
  readonly files = new Map<string, Uint8Array>()
  private n = 0
  write(chunks: Iterable<Uint8Array>): RunFile {
    // Copy each chunk before asking for the next: it may be a view the writer reuses.
    const list: Uint8Array[] = []
    for (const c of chunks) list.push(c.slice())
    const size = list.reduce((a, c) => a + c.length, 0)
    const all = new Uint8Array(size)
    let at = 0
    for (const c of list) { all.set(c, at); at += c.length }
    const path = `run-${this.n++}`
    this.files.set(path, all)
    return { path, size }
  }
  *read(run: RunFile, start = 0, end = run.size): Iterable<Uint8Array> {
    const bytes = this.files.get(run.path)!
    for (let i = start; i < end; i += 7919) yield bytes.subarray(i, Math.min(end, i + 7919))   // odd chunk size: frames straddle chunks
  }
  remove(run: RunFile): void { this.files.delete(run.path) }
}

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296 }
}

const smallBudget = (bytes: number): SharedBudget => new SharedBudget(newBudgetBuffer(), bytes, 0)
function ctx(budget = smallBudget(256 * 1024)): SpillContext & { spilled: number; store: MemoryRunStore } {
  const store = new MemoryRunStore()
  const c = { store, budget, spilled: 0, stepBytes: 8 * 1024, onSpill(b: number) { c.spilled += b } }
  return c
}

describe('budget', () => {
  test('tasks sharing one buffer cannot reserve past the limit together; release gives it back', () => {
    const sab = newBudgetBuffer()
    const a = new SharedBudget(sab, 10 * 1024 * 1024, 0)
    const b = new SharedBudget(sab, 10 * 1024 * 1024, 0)
    expect(a.tryReserve(6 << 20)).toBe(true)
    expect(b.tryReserve(6 << 20)).toBe(false)
    expect(b.tryReserve(4 << 20)).toBe(true)
    expect(reservedBytes(sab)).toBe(10 << 20)
    a.release(6 << 20)
    expect(reservedBytes(sab)).toBe(4 << 20)
    expect(b.tryReserve(6 << 20)).toBe(true)
    b.releaseAll()
    expect(reservedBytes(sab)).toBe(0)
  })

  test('a task under its floor may always reserve, so spilling cannot starve it', () => {
    const sab = newBudgetBuffer()
    const hog = new SharedBudget(sab, 1 << 20, 0)
    expect(hog.tryReserve(1 << 20)).toBe(true)
    const small = new SharedBudget(sab, 1 << 20, 256 << 10)
    expect(small.tryReserve(128 << 10)).toBe(true)           // under its floor: allowed past the limit
    expect(small.tryReserve(128 << 10)).toBe(true)
    expect(small.tryReserve(1 << 10)).toBe(false)            // at its floor: spill first
  })

  test('a reservation grows in steps and says when to spill', () => {
    const r = new Reservation(smallBudget(3 << 20), 1 << 20)
    expect(r.grow(2.5 * (1 << 20))).toBe(true)
    expect(r.grow(1 << 20)).toBe(false)
    r.reset()
    expect(r.bytes).toBe(0)
    expect(r.grow(1 << 20)).toBe(true)
  })

  test('a raise of memory pressure refuses each task\'s next reservation once, however often it then reserves', () => {
    const sab = newBudgetBuffer()
    const pressure = newPressureBuffer()
    const a = new SharedBudget(sab, 1 << 30, 0, undefined, pressure)
    const b = new SharedBudget(sab, 1 << 30, 0, undefined, pressure)
    expect(a.tryReserve(1 << 20)).toBe(true)
    expect(b.tryReserve(1 << 20)).toBe(true)
    raisePressure(pressure)
    expect(a.tryReserve(1 << 20)).toBe(false)               // far under the limit: refused for the pressure
    expect(a.tryReserve(1 << 20)).toBe(true)                // answered: no second spill for one raise
    expect(a.tryReserve(1 << 20)).toBe(true)
    expect(b.tryReserve(1 << 20)).toBe(false)               // every task answers once
    expect(b.tryReserve(1 << 20)).toBe(true)
    expect(reservedBytes(sab)).toBe(5 << 20)                 // a refusal takes nothing
    raisePressure(pressure)
    expect(a.tryReserve(1 << 20)).toBe(false)
    // A task begun after a raise does not answer it: what was held then was not its own.
    const c = new SharedBudget(sab, 1 << 30, 0, undefined, pressure)
    expect(c.tryReserve(1 << 20)).toBe(true)
  })

  test('while squeezed, the tasks together reserve only SQUEEZED_SHARE of the limit; the floor still holds', () => {
    const sab = newBudgetBuffer()
    const pressure = newPressureBuffer()
    const a = new SharedBudget(sab, 8 << 20, 1 << 20, undefined, pressure)
    const b = new SharedBudget(sab, 8 << 20, 1 << 20, undefined, pressure)
    expect(a.tryReserve(3 << 20)).toBe(true)
    setSqueeze(pressure, true)
    expect(a.tryReserve(1 << 20)).toBe(true)                 // 4 of 8 MiB: at the squeezed limit
    expect(a.tryReserve(1024)).toBe(false)                   // past it: spill
    expect(b.tryReserve(1 << 20)).toBe(true)                 // under its floor, a task still gets its working set
    expect(b.tryReserve(1 << 20)).toBe(false)                // at its floor, past the squeezed limit
    setSqueeze(pressure, false)
    expect(b.tryReserve(1 << 20)).toBe(true)                 // the whole limit again
    expect(reservedBytes(sab)).toBe(6 << 20)
  })

  test('a holder that cannot spill (a broadcast table) asks again after a pressure refusal and gets its step', () => {
    const pressure = newPressureBuffer()
    const r = new Reservation(new SharedBudget(newBudgetBuffer(), 8 << 20, 0, undefined, pressure), 1 << 20)
    expect(r.grow(1 << 20)).toBe(true)
    raisePressure(pressure)
    expect(r.grow(1)).toBe(false)
    expect(r.grow(0)).toBe(true)
    // A budget really out still refuses the second time.
    expect(r.grow(8 << 20)).toBe(false)
    expect(r.grow(0)).toBe(false)
  })

  test('under pressure a task below its floor keeps its working set', () => {
    const pressure = newPressureBuffer()
    const small = new SharedBudget(newBudgetBuffer(), 1 << 30, 4 << 20, undefined, pressure)
    expect(small.tryReserve(1 << 20)).toBe(true)
    raisePressure(pressure)
    expect(small.tryReserve(1 << 20)).toBe(true)
  })

  test('a composite key is counted with the canonical string and entry its map keeps; a plain key as itself', () => {
    expect(keyBytes('word')).toBe(estimateBytes('word'))
    expect(keyBytes(17)).toBe(estimateBytes(17))
    expect(keyBytes([123456, 234567])).toBeGreaterThan(2 * estimateBytes([123456, 234567]))
  })

  test('estimates err on the high side of the encoded size', () => {
    for (const v of ['word', ['the', 1], { a: 'x', b: [1, 2, 3] }, 'é'.repeat(100), null]) {
      expect(estimateBytes(v)).toBeGreaterThan(JSON.stringify(v).length)
    }
  })
})

describe('runs and merge', () => {
  test('a run reads back exactly, across chunk boundaries', () => {
    const store = new MemoryRunStore()
    // Over 4 MiB: the run is written in several chunks.
    const records = Array.from({ length: 60_000 }, (_, i) => [`k${i}`, i, { x: [i, 'é'.repeat(40)] }])
    const run = writeRun(store, records)
    expect([...readRun(store, run)]).toEqual(records)
  })

  test('a run is written in chunks of at most WRITE_CHUNK_BYTES, a frame larger than that alone', () => {
    const sizes: number[] = []
    const store = new MemoryRunStore()
    const sizing: RunStore = { write: chunks => store.write((function* () { for (const c of chunks) { sizes.push(c.length); yield c } })()), read: (r, s, e) => store.read(r, s, e), remove: r => store.remove(r) }
    // 512 records a frame: the huge one makes its frame over a chunk alone.
    const records: unknown[] = Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 'x'.repeat(100)])
    records[10_000] = ['huge', 'y'.repeat(WRITE_CHUNK_BYTES + 10)]
    const run = writeRun(sizing, records)
    expect([...readRun(store, run)]).toEqual(records)
    expect(sizes.length).toBeGreaterThan(2)
    expect(sizes.filter(n => n > WRITE_CHUNK_BYTES)).toHaveLength(1)
    expect(sizes.reduce((a, n) => a + n, 0)).toBe(run.size)
  })

  test('a run is read a frame at a time: a merge of many runs holds one decoded frame of each, not a chunk', () => {
    // A store that reads a run as one chunk, a corrupt frame (an empty payload) after two good ones.
    const store = new OneChunkRunStore()
    const records = Array.from({ length: 1024 }, (_, i) => [[-1 - i, `w${i}`], [`w${i}`, i + 1]])
    const run = writeRun(store, records)
    const bytes = store.files.get(run.path)!
    store.files.set(run.path, new Uint8Array([...bytes, 0, 0, 0, 0]))
    const it = readRun(store, { path: run.path, size: bytes.length + 4 })
    for (let i = 0; i < records.length; i++) expect(it.next().value).toEqual(records[i])
    expect(() => it.next()).toThrow('empty frame')
  })

  test('runs of string pairs (a sort\'s [key, line]) read back exactly, mixed with frames of other records', () => {
    const store = new MemoryRunStore()
    const r = rng(9)
    const chars = ['a', 'Z', ' ', 'é', '\u4e00', '\ud83d\ude00', ',', '\n']
    const text = (): string => Array.from({ length: Math.floor(r() * 12) }, () => chars[Math.floor(r() * chars.length)]).join('')
    const pairs = Array.from({ length: 3000 }, () => [text(), text()])
    // The middle stretch breaks the all-pairs frames: a number, a 3-element array, a lone string.
    const records: unknown[] = [...pairs.slice(0, 1500), ['k', 1], ['a', 'b', 'c'], 'alone', ...pairs.slice(1500)]
    const run = writeRun(store, records)
    expect([...readRun(store, run)]).toEqual(records)
  })

  test('a sort of text lines far larger than the budget equals a plain stable sort', () => {
    for (const descending of [false, true]) {
      const c = ctx(smallBudget(64 * 1024))
      const s = new SpillingSorter<string>(c, descending)
      const r = rng(descending ? 13 : 14)
      const lines = Array.from({ length: 20_000 }, (_, i) => `${String.fromCharCode(97 + Math.floor(r() * 5), 97 + Math.floor(r() * 5))}\t${i}`)
      for (const l of lines) s.add(l.slice(0, 2), l)
      expect(s.spilledRuns).toBeGreaterThan(3)
      const key = (l: string): string => l.slice(0, 2)
      const ref = lines.map((l, i) => [l, i] as const).sort((a, b) => (key(a[0]) < key(b[0]) ? -1 : key(a[0]) > key(b[0]) ? 1 : 0) * (descending ? -1 : 1) || a[1] - b[1]).map(e => e[0])
      expect([...s.sorted()].map(e => e[1])).toEqual(ref)
    }
  })

  test('k-way merge of sorted sequences is sorted and stable', () => {
    const r = rng(3)
    const seqs = Array.from({ length: 7 }, (_, s) => Array.from({ length: Math.floor(r() * 300) }, () => [Math.floor(r() * 50), s] as [number, number]).sort((a, b) => a[0] - b[0]))
    const merged = [...mergeSorted(seqs.map(q => q[Symbol.iterator]()), (a, b) => a[0] - b[0])]
    const reference = seqs.flat().sort((a, b) => a[0] - b[0] || a[1] - b[1])
    expect(merged).toEqual(reference)
  })
})

describe('aggregation at any size', () => {
  const words = (n: number, distinct: number, seed: number): string[] => {
    const r = rng(seed)
    return Array.from({ length: n }, () => `w${Math.floor(Math.pow(r(), 3) * distinct)}`)
  }

  test('reduce_by_key with a budget far below the data spills and still equals a plain count', () => {
    const c = ctx(smallBudget(64 * 1024))
    const agg = new SpillingAggregator<number>((a, b) => a + b, () => 0, c)
    const input = words(200_000, 50_000, 1)
    for (const w of input) agg.add(w, 1)
    expect(agg.spilledRuns).toBeGreaterThan(3)
    const got = new Map(agg.entries())
    const ref = new Map<string, number>()
    for (const w of input) ref.set(w, (ref.get(w) ?? 0) + 1)
    expect(got).toEqual(ref)
    expect(c.spilled).toBeGreaterThan(0)
    expect(c.store.files.size).toBe(0)                          // runs removed once merged
    expect(c.budget.holding).toBe(0)
  })

  test('keys compare by value across runs: arrays, numbers and strings that look alike', () => {
    const c = ctx(smallBudget(8 * 1024))
    const agg = new SpillingAggregator<number>((a, b) => a + b, () => 0, c)
    const keys: unknown[] = [1, '1', [1], ['1'], [1, 'a'], 'a', 2.5, -0, 0]
    for (let round = 0; round < 300; round++) for (const k of keys) agg.add(Array.isArray(k) ? [...k] : k, 1)
    const got = [...agg.entries()]
    expect(agg.spilledRuns).toBe(0)                              // merged already
    expect(got.length).toBe(8)                                   // -0 and 0 are one key
    for (const [k, n] of got) expect(n).toBe(compareKeys(k, 0) === 0 ? 600 : 300)
  })

  test('group_by_key lists grow the estimate and spill; every value comes back once', () => {
    const c = ctx(smallBudget(32 * 1024))
    const agg = new SpillingAggregator<unknown[]>((a, b) => a.concat(b), v => 16 + estimateBytes(v[0]), c)
    const r = rng(9)
    const ref = new Map<string, number[]>()
    for (let i = 0; i < 30_000; i++) {
      const k = `k${Math.floor(r() * 500)}`
      agg.add(k, [i])
      ref.set(k, [...(ref.get(k) ?? []), i])
    }
    const got = new Map([...agg.entries()].map(([k, v]) => [k as string, (v as number[]).slice().sort((a, b) => a - b)]))
    expect(got).toEqual(ref)
    expect(c.spilled).toBeGreaterThan(0)
  })

  test('the reservation goes back once the entries are handed on, and a spilled aggregation holds none through its merge', () => {
    for (const budget of [1 << 30, 16 * 1024]) {
      const c = ctx(smallBudget(budget))
      const agg = new SpillingAggregator<number>((a, b) => a + b, () => 0, c)
      for (const w of words(20_000, 5000, 3)) agg.add(w, 1)
      expect(agg.spilledRuns > 0).toBe(budget < 1 << 20)
      const it = agg.entries()
      it.next()
      // Not spilled: held while the entries are handed on. Spilled: what was held went to disk as
      // one more run before the merge, so the merge holds none of it.
      expect(c.budget.holding > 0).toBe(budget >= 1 << 20)
      for (const _ of it) { /* drain */ }
      expect(c.budget.holding).toBe(0)
    }
  })

  test('a merge of spilled runs collects after every collectEveryBytes of runs read', () => {
    const run = (every: number | undefined): { merge: number; runBytes: number } => {
      const c = ctx(smallBudget(16 * 1024))
      let collections = 0
      const agg = new SpillingAggregator<number>((a, b) => a + b, () => 0, { ...c, afterSpill: () => { collections++ }, ...(every === undefined ? {} : { collectEveryBytes: every }) })
      const ref = new Map<string, number>()
      for (const w of words(20_000, 5000, 4)) { agg.add(w, 1); ref.set(w, (ref.get(w) ?? 0) + 1) }
      const spills = collections
      expect(spills).toBeGreaterThan(0)
      const runBytes = [...c.store.files.values()].reduce((n, b) => n + b.length, 0)
      expect(new Map([...agg.entries()] as [string, number][])).toEqual(ref)
      return { merge: collections - spills, runBytes }
    }
    const without = run(undefined)   // the spill of what was held, and one per compaction
    const every = 4096
    const withEvery = run(every)
    // The merge reads every run at least once (compaction reads some twice).
    expect(withEvery.merge - without.merge).toBeGreaterThanOrEqual(Math.floor(withEvery.runBytes / every) - 1)
    expect(withEvery.runBytes).toBeGreaterThan(10 * every)
  })

  test('under a budget far above the data, a task told of memory pressure spills what it holds and still equals a plain distinct', () => {
    const pressure = newPressureBuffer()
    const c = ctx(new SharedBudget(newBudgetBuffer(), 1 << 30, 0, undefined, pressure))
    const agg = new SpillingAggregator<boolean>(a => a, () => 0, c)
    const r = rng(21)
    // [src, dst] pairs with repeats, as a distinct of graph edges sees them.
    const edges = Array.from({ length: 60_000 }, () => [Math.floor(r() * 300), Math.floor(r() * 300)] as [number, number])
    for (let i = 0; i < edges.length; i++) {
      agg.add(edges[i], true)
      if (i === 20_000 || i === 40_000) raisePressure(pressure)
    }
    expect(c.spilled).toBeGreaterThan(0)
    const got = [...agg.entries()].map(([k]) => (k as number[]).join(' ')).sort()
    const ref = [...new Set(edges.map(e => e.join(' ')))].sort()
    expect(got).toEqual(ref)
    expect(c.budget.holding).toBe(0)
  })

  test('without pressure the same data under the same budget is not spilled', () => {
    const c = ctx(new SharedBudget(newBudgetBuffer(), 1 << 30, 0, undefined, newPressureBuffer()))
    const agg = new SpillingAggregator<boolean>(a => a, () => 0, c)
    for (let i = 0; i < 60_000; i++) agg.add([i % 300, i % 7], true)
    expect(agg.spilledRuns).toBe(0)
    expect(c.spilled).toBe(0)
  })

  test('without a spill context nothing is written', () => {
    const agg = new SpillingAggregator<number>((a, b) => a + b, () => 0, null)
    for (let i = 0; i < 1000; i++) agg.add(i % 10, 1)
    expect([...agg.entries()].length).toBe(10)
  })
})

describe('sorting at any size', () => {
  test('a sort far larger than the budget is sorted and stable, ascending and descending', () => {
    for (const descending of [false, true]) {
      const c = ctx(smallBudget(64 * 1024))
      const s = new SpillingSorter<[number, number]>(c, descending)
      const r = rng(descending ? 5 : 6)
      const input = Array.from({ length: 50_000 }, (_, i) => [Math.floor(r() * 1000), i] as [number, number])
      for (const rec of input) s.add(rec[0], rec)
      expect(s.spilledRuns).toBeGreaterThan(3)
      const got = [...s.sorted()].map(e => e[1])
      const ref = input.slice().sort((a, b) => (descending ? b[0] - a[0] : a[0] - b[0]) || a[1] - b[1])
      expect(got).toEqual(ref)
      expect(c.store.files.size).toBe(0)
    }
  })

  test('mixed keys sort numbers first, then strings, then arrays', () => {
    const s = new SpillingSorter<unknown>(ctx(smallBudget(1024)))
    for (const k of ['b', 10, [1], 'a', 9, [0, 'z']]) s.add(k, k)
    expect([...s.sorted()].map(e => e[1])).toEqual([9, 10, 'a', 'b', [0, 'z'], [1]])
  })

  test('an unlimited budget never spills', () => {
    const c = { store: new MemoryRunStore(), budget: new UnlimitedBudget(), onSpill() { throw new Error('spilled') } }
    const s = new SpillingSorter<number>(c)
    for (let i = 0; i < 10_000; i++) s.add(10_000 - i, i)
    expect([...s.sorted()].length).toBe(10_000)
  })
})

describe('sorting strings as bytes', () => {
  test('a sort held as bytes collects after every collectEveryBytes of strings, when that is less than COLLECT_EVERY_BYTES', () => {
    const collections = (every: number | undefined): number => {
      let n = 0
      const c = ctx(smallBudget(1 << 30))
      const sorter = new SpillingSorter<string>({ ...c, afterSpill: () => { n++ }, ...(every === undefined ? {} : { collectEveryBytes: every }) })
      const r = rng(31)
      const lines: string[] = []
      for (let i = 0; i < 4000; i++) { const l = `${Math.floor(r() * 1e9).toString(36)}|${'x'.repeat(500)}`; lines.push(l); sorter.add(l.slice(0, 6), l) }
      const got: string[] = []
      for (const b of sorter.sortedBatches(1000)) got.push(...b)
      expect(got).toEqual(lines.slice().sort((a, b) => (a.slice(0, 6) < b.slice(0, 6) ? -1 : a.slice(0, 6) > b.slice(0, 6) ? 1 : 0)))
      return n
    }
    // About 2 MiB of strings in and 2 MiB out: none at 32 MiB, one per 64 KiB.
    expect(collections(undefined)).toBe(0)
    expect(collections(64 * 1024)).toBeGreaterThanOrEqual(40)
  })

  // Keys and lines of every kind of character: ASCII, Latin-1, other BMP, astral (a surrogate pair;
  // a key cut inside one ends in a lone surrogate), U+0000, U+FFFF; many equal keys.
  const CHARS = ['a', 'b', 'Z', ' ', '\u0000', '\u007f', 'é', 'ÿ', '\u0100', '\u4e00', '\ue000', '\uffff', '\ud83d\ude00', '\ud800\udc00']
  const text = (r: () => number, max: number): string => Array.from({ length: Math.floor(r() * max) }, () => CHARS[Math.floor(r() * CHARS.length)]).join('')
  const plain = (lines: [string, string][], descending: boolean): string[] =>
    lines.map((e, i) => [e, i] as const).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : 0) * (descending ? -1 : 1) || a[1] - b[1]).map(e => e[0][1])

  for (const [name, budget] of [['in memory', 1 << 30], ['spilled into many runs', 16 * 1024]] as const) {
    test(`random keys and lines, ascending and descending, ${name}: a plain stable sort by code unit`, () => {
      for (let seed = 1; seed <= 6; seed++) {
        const descending = seed % 2 === 0
        const r = rng(100 + seed)
        const c = ctx(smallBudget(budget))
        const s = new SpillingSorter<string>(c, descending)
        const lines: [string, string][] = []
        for (let i = 0; i < 6000; i++) {
          const line = text(r, 40) + `#${i}`
          const key = line.slice(0, Math.floor(r() * (seed < 3 ? 3 : 12)))   // short keys: many equal
          lines.push([key, line])
          s.add(key, line)
        }
        if (budget < 1 << 20) expect(s.spilledRuns).toBeGreaterThan(16)    // compacted before the merge
        expect([...s.sortedBatches(500)].flat()).toEqual(plain(lines, descending))
        expect(c.store.files.size).toBe(0)
        expect(c.budget.holding).toBe(0)
      }
    }, 60_000)
  }

  test('sortedLines: the sorted records as UTF-8 lines in blocks, with their counts, spilled or not; null once the sort holds JS values', () => {
    for (const budget of [1 << 30, 16 * 1024]) {
      const r = rng(31)
      const s = new SpillingSorter<string>(ctx(smallBudget(budget)), budget < 1 << 20)
      const lines: [string, string][] = []
      for (let i = 0; i < 5000; i++) {
        const line = text(r, 30) + (i % 7 === 0 ? '\n' : '') + `#${i}`   // a record may hold '\n'
        lines.push([line.slice(0, 2), line])
        s.add(line.slice(0, 2), line)
      }
      // A block is valid until the generator resumes (its memory is reused): kept as copies.
      const blocks: [Uint8Array, number][] = []
      for (const [bytes, count] of s.sortedLines(4096)!) blocks.push([bytes.slice(), count])
      expect(blocks.length).toBeGreaterThan(10)
      expect(blocks.reduce((n, b) => n + b[1], 0)).toBe(5000)
      const want = plain(lines, budget < 1 << 20)
      expect(Buffer.concat(blocks.map(b => b[0])).toString('utf8')).toBe(want.map(l => l + '\n').join(''))
    }
    const v = new SpillingSorter<unknown>(null)
    v.add('a', 'a')
    v.add(1, 1)
    expect(v.sortedLines()).toBe(null)
    expect([...v.sortedBatches(10)].flat()).toEqual([1, 'a'])
  }, 60_000)

  test('a sort held as bytes that spilled writes what it holds before its merge: nothing held while the lines flow', () => {
    const r = rng(41)
    const c = ctx(smallBudget(16 * 1024))
    const s = new SpillingSorter<string>(c)
    const lines: [string, string][] = []
    for (let i = 0; i < 3000; i++) {
      const line = text(r, 30) + `#${i}`
      lines.push([line.slice(0, 3), line])
      s.add(line.slice(0, 3), line)
    }
    const spilled = s.spilledRuns
    expect(spilled).toBeGreaterThan(0)
    expect(c.budget.holding).toBeGreaterThan(0)
    const out: string[] = []
    let heldWhileMerging = -1
    for (const [bytes] of s.sortedLines(4096)!) {
      if (heldWhileMerging < 0) heldWhileMerging = c.budget.holding
      out.push(Buffer.from(bytes).toString('utf8'))
    }
    expect(heldWhileMerging).toBe(0)
    expect(out.join('')).toBe(plain(lines, false).map(l => l + '\n').join(''))
    expect(c.store.files.size).toBe(0)
  })

  test('sorted() gives the keys back as they were, lone surrogates included', () => {
    const s = new SpillingSorter<string>(ctx(smallBudget(4096)))
    const keys = ['\ud83d', 'a\ude00', '', '\u0000', 'z', '\ud83d\ude00x', '\uffff']
    // The lines are whole (a key cut from '😀x' by a slice is '\ud83d'); keys spill as they are.
    const line = (k: string, round: number): string => `${k.toWellFormed()}|${round}`
    for (let round = 0; round < 50; round++) for (const k of keys) s.add(k, line(k, round))
    const got = [...s.sorted()]
    const sortedKeys = keys.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    expect(got.map(e => e[0])).toEqual(sortedKeys.flatMap(k => Array(50).fill(k)))
    expect(got.map(e => e[1])).toEqual(sortedKeys.flatMap(k => Array.from({ length: 50 }, (_, i) => line(k, i))))
  })

  test('a line UTF-8 cannot carry (a lone surrogate), or a record that is not a string, turns the sort to JS values; byte runs spilled before still merge in order', () => {
    for (const odd of ['x\ud800y', 42, ['a', 1]] as unknown[]) {
      for (const descending of [false, true]) {
        const c = ctx(smallBudget(8 * 1024))
        const s = new SpillingSorter<unknown>(c, descending)
        const r = rng(77)
        const all: [string, unknown][] = []
        for (let i = 0; i < 4000; i++) {
          const rec: unknown = i === 2500 ? odd : `${text(r, 8)}-${i}`
          const key = typeof rec === 'string' ? rec.slice(0, 2) : 'm'
          all.push([key, rec])
          s.add(key, rec)
        }
        expect(s.spilledRuns).toBeGreaterThan(1)
        const want = all.map((e, i) => [e, i] as const).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : 0) * (descending ? -1 : 1) || a[1] - b[1]).map(e => e[0][1])
        expect([...s.sortedBatches(300)].flat()).toEqual(want)
        expect(c.store.files.size).toBe(0)
      }
    }
  }, 60_000)
})
