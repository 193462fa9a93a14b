// The reduce side of join: the streaming hash join (build one side, stream the other past it) and
// its fall back to the spilling sort-merge join when the build side outgrows the budget. Checked
// against a plain nested-loop join; runs live in memory.
import { describe, expect, test } from 'bun:test'
import { prng } from '../support/prng'
import type { NodeSpec } from '../../src/api/jobs'
import type { Consumer } from '../../src/engine/pipeline'
import { createReducer, inMemory } from '../../src/engine/shuffle'
import { SharedBudget, newBudgetBuffer, reservedBytes } from '../../src/engine/spill/budget'
import { SpillingJoin, StreamingJoin } from '../../src/engine/spill/join'
import { HashJoin } from '../../src/engine/operators/join'
import type { SpillContext } from '../../src/engine/spill/external'
import type { MemoryRunStore } from '../../src/engine/spill/runs'

type How = 'inner' | 'left' | 'right' | 'full'
const HOWS: How[] = ['inner', 'left', 'right', 'full']

const collector = (): Consumer & { all: unknown[]; batches: number } => {
  const c = { all: [] as unknown[], batches: 0, push(b: unknown[]) { c.batches++; for (const r of b) c.all.push(r) } }
  return c
}
const node = (how?: How): NodeSpec => ({ id: 'j', op: 'join', inputs: ['l', 'r'], ...(how ? { how } : {}) })
const sorted = (rs: unknown[]): string[] => rs.map(r => JSON.stringify(r)).sort()

/** The reference: every pair by two nested loops; keys equal when their JSON is. */
function nestedLoop(how: How, left: unknown[][], right: unknown[][]): unknown[] {
  const out: unknown[] = []
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
  for (const [lk, lv] of left) {
    let hit = false
    for (const [rk, rv] of right) if (same(lk, rk)) { out.push([lk, [lv, rv]]); hit = true }
    if (!hit && (how === 'left' || how === 'full')) out.push([lk, [lv, null]])
  }
  for (const [rk, rv] of right) {
    if ((how === 'right' || how === 'full') && !left.some(([lk]) => same(lk, rk))) out.push([rk, [null, rv]])
  }
  return out
}

/** Feeds the streaming join the way a reduce task does: all build batches, then the probe batches. */
function streamJoin(how: How, left: unknown[][], right: unknown[][], buildSide: 0 | 1, spill: SpillContext | null, batch = 7): { out: unknown[]; join: StreamingJoin } {
  const out = collector()
  const j = new StreamingJoin(node(how), buildSide, spill, out)
  const [build, probe] = buildSide === 0 ? [left, right] : [right, left]
  for (let i = 0; i < build.length; i += batch) j.build(build.slice(i, i + batch))
  for (let i = 0; i < probe.length; i += batch) j.probe(probe.slice(i, i + batch))
  j.finish()
  return { out: out.all, join: j }
}

const L = [['a', 1], ['a', 2], ['b', 3], [['k', 1], 4]]
const R = [['a', 'x'], ['c', 'y'], [['k', 1], 'z'], ['a', 'w']]

describe('StreamingJoin in memory (hash join)', () => {
  test('inner: one output per matching pair, whichever side is built; keys compared by value', () => {
    const expected = sorted([['a', [1, 'x']], ['a', [1, 'w']], ['a', [2, 'x']], ['a', [2, 'w']], [['k', 1], [4, 'z']]])
    for (const side of [0, 1] as const) expect(sorted(streamJoin('inner', L, R, side, null).out)).toEqual(expected)
  })

  test('left, right and full keep the missing side as null, whichever side is built', () => {
    const pairs = [['a', [1, 'x']], ['a', [1, 'w']], ['a', [2, 'x']], ['a', [2, 'w']], [['k', 1], [4, 'z']]]
    for (const side of [0, 1] as const) {
      expect(sorted(streamJoin('left', L, R, side, null).out)).toEqual(sorted([...pairs, ['b', [3, null]]]))
      expect(sorted(streamJoin('right', L, R, side, null).out)).toEqual(sorted([...pairs, ['c', [null, 'y']]]))
      expect(sorted(streamJoin('full', L, R, side, null).out)).toEqual(sorted([...pairs, ['b', [3, null]], ['c', [null, 'y']]]))
    }
  })

  test('1 and "1" are different keys; null and -0 are keys like any other', () => {
    for (const side of [0, 1] as const) {
      expect(streamJoin('inner', [[1, 'n']], [['1', 's']], side, null).out).toEqual([])
      expect(sorted(streamJoin('inner', [[null, 1], [-0, 2]], [[null, 'a'], [0, 'b']], side, null).out)).toEqual(sorted([[null, [1, 'a']], [-0, [2, 'b']]]))
    }
  })

  test('joined records go downstream while the probe side streams, not at the end', () => {
    const out = collector()
    const j = new StreamingJoin(node('inner'), 1, inMemory(), out)
    j.build([['a', 'x']])
    expect(out.all).toEqual([])
    j.probe([['a', 1], ['b', 2]])
    expect(out.all).toEqual([['a', [1, 'x']]])
    j.probe([['a', 3]])
    expect(out.all).toEqual([['a', [1, 'x']], ['a', [3, 'x']]])
    j.finish()
    expect(out.all.length).toBe(2)
  })

  test('a large cross product comes out in bounded batches', () => {
    const out = collector()
    const j = new StreamingJoin(node('inner'), 1, null, out)
    j.build(Array.from({ length: 300 }, (_, i) => ['k', i]))
    j.probe(Array.from({ length: 100 }, (_, i) => ['k', -i]))
    j.finish()
    expect(out.all.length).toBe(30000)
    expect(out.batches).toBeGreaterThanOrEqual(4)
  })

  test('the table counts each new key\'s entry once (a composite key\'s hidden canonical string with it); a key seen before adds nothing', () => {
    const h = new HashJoin(node(), 0, 8)
    // Three new keys: each costs its table entry beyond the record (measured ~100-150 bytes a key).
    const plain = h.build([['a', 1], ['b', 2], [7, 3]])
    expect(plain).toBeGreaterThanOrEqual(3 * 64)
    expect(h.build([['a', 4], ['b', 5], [7, 6]])).toBe(0)
    const first = h.build([[['src', 'dst'], 1]])
    expect(first).toBeGreaterThan(plain / 3)
    expect(first).toBeGreaterThan(JSON.stringify(['src', 'dst']).length)
    expect(h.build([[['src', 'dst'], 2], [['src', 'dst'], 3]])).toBe(0)
    expect(h.build([[{ id: 1 }, 1], [['src', 'other'], 2]])).toBeGreaterThan(first)
  })

  test('a record that is not a pair names the join, on either side', () => {
    expect(() => new StreamingJoin(node(), 1, null, collector()).build(['oops'])).toThrow(/join needs keyed records/)
    expect(() => new StreamingJoin(node(), 1, null, collector()).probe([['a', 1], 'oops'])).toThrow(/join needs keyed records/)
  })
})

/** A budget of a few KiB: the build side of the random cases cannot fit, and spills many runs. */
function tinyBudget(): SpillContext & { spilled: number; budget: SharedBudget; sab: SharedArrayBuffer; store: MemoryRunStore } {
  const sab = newBudgetBuffer()
  const c = { ...inMemory(), sab, budget: new SharedBudget(sab, 64 * 1024, 0), stepBytes: 4096, spilled: 0, onSpill(b: number) { c.spilled += b } }
  return c
}

function randomSide(rand: () => number, n: number, keys: number, tag: string): unknown[][] {
  const key = (): unknown => {
    const k = Math.floor(rand() * keys)
    // strings, numbers, the same digits as a string and a number, and composite keys
    switch (k % 4) {
      case 0: return `k${k}`
      case 1: return k
      case 2: return String(k)
      default: return [k, 'c']
    }
  }
  return Array.from({ length: n }, (_, i) => [key(), { tag, i, pad: 'x'.repeat(Math.floor(rand() * 40)) }])
}

describe('StreamingJoin against a nested-loop join, random inputs', () => {
  test('every kind of join, each side built, in memory', () => {
    const rand = prng(31)
    for (let round = 0; round < 40; round++) {
      const left = randomSide(rand, Math.floor(rand() * 120), 1 + Math.floor(rand() * 60), 'l')
      const right = randomSide(rand, Math.floor(rand() * 120), 1 + Math.floor(rand() * 60), 'r')
      for (const how of HOWS) {
        const expected = sorted(nestedLoop(how, left, right))
        for (const side of [0, 1] as const) {
          const { out, join } = streamJoin(how, left, right, side, inMemory(), 1 + Math.floor(rand() * 20))
          expect(join.spilling).toBe(false)
          expect(sorted(out)).toEqual(expected)
        }
      }
    }
  })

  test('a build side past the budget falls back to the sort-merge join, which spills; same result', () => {
    const rand = prng(32)
    for (let round = 0; round < 4; round++) {
      const left = randomSide(rand, 300 + Math.floor(rand() * 300), 20 + Math.floor(rand() * 200), 'l')
      const right = randomSide(rand, 300 + Math.floor(rand() * 300), 20 + Math.floor(rand() * 200), 'r')
      for (const how of HOWS) {
        const expected = sorted(nestedLoop(how, left, right))
        for (const side of [0, 1] as const) {
          const spill = tinyBudget()
          const { out, join } = streamJoin(how, left, right, side, spill, 1 + Math.floor(rand() * 50))
          expect(join.spilling).toBe(true)
          expect(spill.spilled).toBeGreaterThan(0)
          expect(sorted(out)).toEqual(expected)
          // Everything reserved is given back, and every run was removed after the merge.
          expect(reservedBytes(spill.sab)).toBe(0)
          expect(spill.store.files.size).toBe(0)
        }
      }
    }
  })

  test('the fall back takes over a key whose values span the hash table and later build batches', () => {
    const left = Array.from({ length: 2000 }, (_, i) => ['hot', i])
    const right = [['hot', 'r'], ['cold', 'c']]
    for (const how of HOWS) {
      const spill = tinyBudget()
      const { out, join } = streamJoin(how, left, right, 0, spill, 64)
      expect(join.spilling).toBe(true)
      expect(sorted(out)).toEqual(sorted(nestedLoop(how, left, right)))
    }
  })
})

describe('SpillingJoin (the fall back, and createReducer\'s join)', () => {
  test('spilling both sides gives the nested-loop result', () => {
    const rand = prng(33)
    const left = randomSide(rand, 800, 150, 'l')
    const right = randomSide(rand, 800, 150, 'r')
    for (const how of HOWS) {
      const spill = tinyBudget()
      const j = new SpillingJoin(node(how), spill)
      for (let i = 0; i < 800; i += 50) { j.push(0, left.slice(i, i + 50)); j.push(1, right.slice(i, i + 50)) }
      const out = collector()
      j.emit(out, 100)
      expect(spill.spilled).toBeGreaterThan(0)
      expect(sorted(out.all)).toEqual(sorted(nestedLoop(how, left, right)))
    }
  })

  test('createReducer routes the sides of a join', () => {
    const r = createReducer({ id: 'j', op: 'join', inputs: ['l', 'r'] }, {})
    r.push(0, [['a', 1]])
    r.push(1, [['a', 2]])
    const out = collector()
    r.emit(out)
    expect(out.all).toEqual([['a', [1, 2]]])
  })
})
