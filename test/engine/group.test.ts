// A key's values past the budget: group_by_key and the join's merge stream them through runs
// instead of holding them. Checked against plain loops; runs live in memory (MemoryRunStore).
import { describe, expect, test } from 'bun:test'
import { SharedBudget, newBudgetBuffer } from '../../src/engine/spill/budget'
import type { SpillContext } from '../../src/engine/spill/external'
import { SpillingGrouper, spilledList } from '../../src/engine/spill/group'
import { SpillingJoin } from '../../src/engine/spill/join'
import { MemoryRunStore, writeRun } from '../../src/engine/spill/runs'
import { createReducer } from '../../src/engine/shuffle'
import { encodeFrame, FrameDecoder } from '../../src/engine/codec'

function tiny(bytes = 64 * 1024): SpillContext & { store: MemoryRunStore; spilled: number; budget: SharedBudget } {
  const c = { store: new MemoryRunStore(), budget: new SharedBudget(newBudgetBuffer(), bytes, 0), spilled: 0, stepBytes: 4096, onSpill(b: number) { c.spilled += b } }
  return c
}

const collector = (): { push(b: unknown[]): void; all: unknown[]; batches: number } => {
  const c = { all: [] as unknown[], batches: 0, push(b: unknown[]) { c.batches++; for (const r of b) c.all.push(r) } }
  return c
}

describe('group_by_key with one key holding most records', () => {
  test('every value comes back once; the hot key comes as a read-only list read from a run', () => {
    const spill = tiny()
    const r = createReducer({ id: 'g', op: 'group_by_key', input: 'x' }, {}, spill)
    const want = new Map<string, number[]>()
    for (let b = 0; b < 40; b++) {
      const batch: [string, number][] = []
      for (let i = 0; i < 1000; i++) {
        const n = b * 1000 + i
        const k = n % 10 === 0 ? `k${n % 700}` : 'hot'
        batch.push([k, n])
        const l = want.get(k) ?? []; l.push(n); want.set(k, l)
      }
      r.push(0, batch)
    }
    const out = collector()
    r.emit(out)
    expect(spill.spilled).toBeGreaterThan(0)
    const got = new Map<string, unknown[]>(out.all as [string, unknown[]][])
    expect(got.size).toBe(want.size)
    for (const [k, vs] of want) expect([...got.get(k)!].sort((a, b) => (a as number) - (b as number))).toEqual(vs)
    const hot = got.get('hot')!
    expect(Array.isArray(hot)).toBe(true)
    expect(hot.length).toBe(36_000)
    // Walked in every usual way, front to back and back again.
    expect(hot.reduce((s: number, v) => s + (v as number), 0)).toBe(want.get('hot')!.reduce((s, v) => s + v, 0))
    expect(JSON.parse(JSON.stringify(hot)).length).toBe(36_000)
    expect(hot.slice(0, 3)).toEqual(want.get('hot')!.slice(0, 3))
    expect(hot[35_999]).toBe(want.get('hot')![35_999])
    expect(hot[0]).toBe(want.get('hot')![0])
    expect(hot.includes(want.get('hot')![20_000])).toBe(true)
    expect(() => { hot.push(1) }).toThrow(/cannot be changed/)
    expect(() => { (hot as unknown[]).sort() }).toThrow(/cannot be changed/)
    // msgpack (the next shuffle, or a spill downstream) takes it as the list it stands for.
    const frames = new FrameDecoder().push(encodeFrame([['hot', hot]]))
    expect((frames[0]![0] as [string, unknown[]])[1].length).toBe(36_000)
  }, 30_000)

  test('without a spill the groups are ordinary arrays', () => {
    const r = createReducer({ id: 'g', op: 'group_by_key', input: 'x' }, {})
    r.push(0, [['a', 1], ['b', 2], ['a', 3]])
    const out = collector()
    r.emit(out)
    expect(out.all).toEqual([['a', [1, 3]], ['b', [2]]])
  })

  test('a batch downstream carries a bounded number of values, not a bounded number of groups', () => {
    const r = createReducer({ id: 'g', op: 'group_by_key', input: 'x' }, {})
    r.push(0, Array.from({ length: 20_000 }, (_, i) => [i % 4, i]))
    const out = collector()
    r.emit(out)
    expect(out.batches).toBe(2)
  })

  test('a spilled list reads back exactly', () => {
    const store = new MemoryRunStore()
    const values = Array.from({ length: 5000 }, (_, i) => (i % 3 === 0 ? { i } : `v${i}`))
    const list = spilledList(store, writeRun(store, values), values.length, 'k')
    expect([...list]).toEqual(values)
    expect(list.map(v => v)).toEqual(values)
    expect(Object.keys(list).length).toBe(5000)
    expect(list[5000]).toBeUndefined()
  })
})

describe('join with a key hot on both sides, spilling', () => {
  const node = (how: 'inner' | 'left' | 'right' | 'full') => ({ id: 'j', op: 'join' as const, inputs: ['l', 'r'], how })

  test('every pair of the hot key once, and the cold keys as a nested loop gives them', () => {
    for (const how of ['inner', 'left', 'right', 'full'] as const) {
      const spill = tiny()
      const j = new SpillingJoin(node(how), spill)
      const left: [string, number][] = []
      const right: [string, number][] = []
      for (let i = 0; i < 3000; i++) left.push([i % 5 === 0 ? `c${i % 300}` : 'hot', i])
      for (let i = 0; i < 900; i++) right.push([i % 3 === 0 ? `c${i % 400}` : 'hot', i])
      for (let i = 0; i < 3000; i += 500) j.push(0, left.slice(i, i + 500))
      for (let i = 0; i < 900; i += 100) j.push(1, right.slice(i, i + 100))
      // Counted per key, and summed: the product of the hot key is 2 400 × 600 pairs.
      const got = new Map<string, [number, number]>()
      let outs = 0
      j.emit({ push(b) { for (const r of b as [string, [number | null, number | null]][]) { outs++; const e = got.get(r[0]) ?? [0, 0]; e[0]++; e[1] += (r[1][0] ?? 0.5) * (r[1][1] ?? 0.25); got.set(r[0], e) } } }, 1000)
      const want = new Map<string, [number, number]>()
      const lk = new Map<string, number[]>()
      const rk = new Map<string, number[]>()
      for (const [k, v] of left) { const l = lk.get(k) ?? []; l.push(v); lk.set(k, l) }
      for (const [k, v] of right) { const l = rk.get(k) ?? []; l.push(v); rk.set(k, l) }
      for (const k of new Set([...lk.keys(), ...rk.keys()])) {
        const ls = lk.get(k)
        const rs = rk.get(k)
        const e: [number, number] = [0, 0]
        if (ls && rs) for (const a of ls) for (const b of rs) { e[0]++; e[1] += a * b }
        else if (ls && (how === 'left' || how === 'full')) for (const a of ls) { e[0]++; e[1] += a * 0.25 }
        else if (rs && (how === 'right' || how === 'full')) for (const b of rs) { e[0]++; e[1] += 0.5 * b }
        if (e[0] > 0) want.set(k, e)
      }
      expect(spill.spilled).toBeGreaterThan(0)
      expect(got.get('hot')![0]).toBe(2400 * 600)
      expect(spill.store.files.size).toBe(0)
      expect(got).toEqual(want)
      expect(outs).toBe([...want.values()].reduce((s, e) => s + e[0], 0))
      expect(spill.budget.holding).toBe(0)
    }
  }, 30_000)

  test('a SpillingGrouper hands over its groups whole when nothing spilled', () => {
    const g = new SpillingGrouper(null)
    g.add('a', 1)
    g.addGroup('a', [2, 3])
    g.addGroup('b', [4])
    expect([...g.groups()]).toEqual([['a', [1, 2, 3]], ['b', [4]]])
  })
})
