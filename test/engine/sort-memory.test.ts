// What a sort of text lines holds: its lines as bytes, not a JS string (and a key string) per
// record. Held as JS values, a reduce task of a 1 GiB sort walked millions of strings at every
// collection, and garbage piled up beside them until its worker passed --max-mem + 200 MiB.
// Counted with the heap's own census (bun:jsc), in a process of its own; the lines arrive as a
// reduce task receives them, decoded from shuffle frames.
import { expect, test } from 'bun:test'
import { heapStats } from 'bun:jsc'
import { UnlimitedBudget } from '../../src/engine/spill/budget'
import { SpillingSorter } from '../../src/engine/spill/external'
import { MemoryRunStore } from '../../src/engine/spill/runs'
import { decodeFrames, encodeFrame } from '../../src/engine/codec'

const strings = (): number => { Bun.gc(true); Bun.gc(true); return heapStats().objectTypeCounts.string ?? 0 }

test('a sort of 400 000 lines holds no JS string per line, reserves what it holds, and sorts as strings do', () => {
  const n = 400_000
  // 100-byte lines, TeraSort-like: a 10-character random key, then a payload; some non-ASCII.
  const r = ((s: number) => () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296 })(7)
  const frames: Uint8Array[] = []
  let batch: string[] = []
  for (let i = 0; i < n; i++) {
    let k = ''
    for (let j = 0; j < 10; j++) k += String.fromCharCode(33 + Math.floor(r() * 94))
    batch.push(`${k} ${i.toString(16).padStart(16, '0')}${(i % 1000 === 0 ? 'é' : 'x').repeat(71)}`)
    if (batch.length === 8192) { frames.push(encodeFrame(batch)); batch = [] }
  }
  frames.push(encodeFrame(batch))
  batch = []
  const budget = new UnlimitedBudget()
  const sorter = new SpillingSorter<string>({ budget, onSpill() {}, store: new MemoryRunStore() })
  const before = strings()
  for (const f of frames) for (const b of decodeFrames(f)) for (const l of b as string[]) sorter.add(l.slice(0, 10), l)
  const held = strings() - before
  console.log(`${held} more strings on the heap after ${n} lines; ${(budget.holding / 2 ** 20).toFixed(1)} MiB reserved`)
  expect(held).toBeLessThan(n / 100)
  // The reservation covers the bytes: at least each line's UTF-8 and its key.
  expect(budget.holding).toBeGreaterThanOrEqual(n * 110)
  let last = ''
  let count = 0
  for (const b of sorter.sortedBatches(8192)) for (const l of b) { expect(l.slice(0, 10) >= last).toBe(true); last = l.slice(0, 10); count++ }
  expect(count).toBe(n)
}, 60_000)
