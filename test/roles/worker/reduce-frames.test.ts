// A sort's reduce task over fetched shuffle frames (src/roles/worker/task/fetch.ts reduceShuffle):
// a sort takes ASCII lines from the frames as bytes (by a slice: no string at all; by a key function:
// a string for the function only) and decodes only the rest, so what it gives must be, whatever the
// mix, the plain stable sort of the records in the order fetched.
// Frames come in random chunks (frames and records straddle them), from several map outputs; lines
// are ASCII, non-ASCII, astral, lone surrogates (UTF-8 cannot carry them), shorter than the slice,
// with many equal keys; the reduce holds everything or spills runs; the output goes on as lines of
// bytes (write_text) or as strings. The reference is a plain loop with Array.prototype.sort.
import { describe, expect, test } from 'bun:test'
import type { NodeSpec } from '../../../src/api/jobs'
import type { PeerClient } from '../../../src/api/peers'
import type { ShuffleFetch, TaskSpec } from '../../../src/api/tasks'
import { decodeFrames, encodeFrame } from '../../../src/engine/codec'
import type { Consumer } from '../../../src/engine/pipeline'
import { SharedBudget, UnlimitedBudget, newBudgetBuffer } from '../../../src/engine/spill/budget'
import type { SpillContext } from '../../../src/engine/spill/external'
import { MemoryRunStore } from '../../../src/engine/spill/runs'
import { UdfError } from '../../../src/engine/records'
import { FetchFailed } from '../../../src/roles/worker/task/failures'
import { reduceShuffle } from '../../../src/roles/worker/task/fetch'
import { plainCompare, seeded } from '../../support/oracle'

type Rng = ReturnType<typeof seeded>

const ASCII_KEYS = ['a', 'b', 'ab', 'B', '~', '!', ' ', 'aa']
const OTHER = ['é', 'ß', '😀', '中文', '\u212A', '\ud83d', 'a\ude00']

/** A line: pieces of few distinct keys (many equal), non-ASCII with chance `other`. */
function line(r: Rng, other: number): string {
  const n = r.int(8)
  let s = ''
  for (let i = 0; i < n; i++) s += r.chance(other) ? r.pick(OTHER) : r.pick(ASCII_KEYS)
  return r.chance(0.5) ? s + ` #${r.int(1000)}` : s
}

/** Map outputs: each a run of frames of random batch sizes. */
function mapOutputs(r: Rng, records: unknown[]): Uint8Array[] {
  const outputs: Uint8Array[][] = [[], [], []]
  for (let at = 0; at < records.length;) {
    const n = 1 + r.int(r.chance(0.2) ? 2000 : 60)
    outputs[Math.min(2, Math.floor(3 * at / records.length))]!.push(encodeFrame(records.slice(at, at + n)))
    at += n
  }
  return outputs.map(frames => Buffer.concat(frames))
}

/** A peer that streams the named outputs back to back in chunks of random sizes. */
function peers(r: Rng, outputs: Uint8Array[]): PeerClient {
  return {
    async *shuffle(_address: string, _peer: string, req: ShuffleFetch): AsyncGenerator<Uint8Array> {
      for (const a of req.attempts) {
        const bytes = outputs[Number(a)]!
        for (let at = 0; at < bytes.length;) { const n = 1 + r.int(r.chance(0.5) ? 64 : 9000); yield bytes.slice(at, at + n); at += n }
      }
    },
  } as unknown as PeerClient
}

function spec(node: NodeSpec, outputs: Uint8Array[]): TaskSpec {
  return {
    job_id: 'j', task_id: 'j:1:0', attempt_id: 'j:1:0:0', attempt: 0, stage_id: 1, partition: 0, params: {}, split: null, incarnation: 'i',
    stage: { stage_id: 1, root: { kind: 'shuffle', node, shuffle_ids: ['s'] }, nodes: [], shuffle_writes: [], sinks: [], depends_on: [], partitions: 1 },
    // One peer, small outputs: one request, so the records arrive in the outputs' order.
    shuffle_inputs: [{ shuffle_id: 's', map_outputs: outputs.map((o, i) => ({ map_partition: i, attempt_id: String(i), worker_id: 'w', address: 'peer:1', bytes: o.length })) }],
  }
}

/** What reaches the sink: lines of bytes (split at '\n': the lines here hold none) or strings. */
function collector(takesLines: boolean): Consumer & { records(): string[]; pushLines?(bytes: Uint8Array, count: number): void } {
  const strings: string[] = []
  const blocks: Buffer[] = []
  let counted = 0
  const c: Consumer & { records(): string[]; pushLines?(bytes: Uint8Array, count: number): void } = {
    push(batch) { for (const x of batch) strings.push(x as string) },
    records() {
      if (blocks.length === 0) return strings
      const text = Buffer.concat(blocks).toString('utf8')
      const lines = text.split('\n').slice(0, -1)
      expect(lines.length).toBe(counted)
      return [...strings, ...lines]
    },
  }
  // The block is the sort's to reuse once the call returns: kept as a copy.
  if (takesLines) c.pushLines = (bytes, count) => { blocks.push(Buffer.from(bytes)); counted += count }
  return c
}

/** The records sorted by key, stable, in the contract's key order (plainCompare). */
function plainSort(records: readonly string[], keyOf: (r: string) => unknown, descending: boolean): string[] {
  return records.slice().sort((a, b) => descending ? plainCompare(keyOf(b), keyOf(a)) : plainCompare(keyOf(a), keyOf(b)))
}

/** The three ways a sort gets its key, with the plain twin of each. */
const SORTS: { name: string; sort(from: number, to: number): Partial<NodeSpec>; key(from: number, to: number): (r: string) => unknown }[] = [
  { name: 'by a slice', sort: (from, to) => ({ by: { slice: [from, to] } }), key: (from, to) => r => r.slice(from, to) },
  { name: 'by a key function', sort: (from, to) => ({ key: `r => r.slice(${from}, ${to})` }), key: (from, to) => r => r.slice(from, to) },
  // A key that is sometimes a number: the sort turns to JS values in the middle of a frame.
  { name: 'by a key function of mixed types', sort: () => ({ key: 'r => r.length % 97 === 5 ? r.length : r' }), key: () => r => r.length % 97 === 5 ? r.length : r },
]

describe('a sort over fetched frames = the plain stable sort of the records fetched', () => {
  for (let seed = 1; seed <= 36; seed++) {
    const other = [0, 0, 0.002, 0.05, 0.4][seed % 5]!
    const spilling = seed % 2 === 0
    const lines = seed % 3 !== 0
    const how = SORTS[seed % SORTS.length]!
    test(`seed ${seed}: ${how.name}, non-ASCII ${other}, ${spilling ? 'spilled' : 'in memory'}, output as ${lines ? 'lines of bytes' : 'strings'}`, async () => {
      const r = seeded(seed)
      const records = Array.from({ length: 2000 + r.int(4000) }, () => line(r, other))
      const from = r.int(3)
      const to = from + r.int(5)
      const descending = r.chance(0.5)
      const node = { id: 's', op: 'sort', input: 'x', ...how.sort(from, to), ...(descending ? { descending } : {}) } as NodeSpec
      const outputs = mapOutputs(r, records)
      let spills = 0
      const ctx: SpillContext = spilling
        ? { budget: new SharedBudget(newBudgetBuffer(), 16 * 1024, 0), stepBytes: 4096, store: new MemoryRunStore(), onSpill() { spills++ } }
        : { budget: new UnlimitedBudget(), store: new MemoryRunStore(), onSpill() { spills++ } }
      const out = collector(lines)
      const counts = await reduceShuffle(spec(node, outputs), { peers: peers(r, outputs), spillAtBytes: 1 << 28, fetched: () => {} }, out, ctx)
      expect(counts.records).toBe(records.length)
      expect(counts.bytes).toBe(outputs.reduce((n, o) => n + o.length, 0))
      expect(spills > 0).toBe(spilling)
      // The records as a reader of the frames gets them (msgpack carries a lone surrogate as itself
      // in a short string, as U+FFFD in a long one), in the order fetched.
      const fetched = outputs.flatMap(o => decodeFrames(o).flat()) as string[]
      expect(fetched.length).toBe(records.length)
      expect(out.records()).toEqual(plainSort(fetched, how.key(from, to), descending))
    })
  }

  test('a record that is not a string fails the task naming the sort, not the peer; so does a key function that throws; a corrupt frame fails the fetch', async () => {
    const node: NodeSpec = { id: 's', op: 'sort', input: 'x', by: { slice: [0, 2] } }
    const ctx = (): SpillContext => ({ budget: new UnlimitedBudget(), store: new MemoryRunStore(), onSpill() {} })
    const mixed = [Buffer.from(encodeFrame(['ab', 'cd', 7, 'ef']))]
    const e1 = await reduceShuffle(spec(node, mixed), { peers: peers(seeded(1), mixed), spillAtBytes: 1 << 28, fetched: () => {} }, collector(true), ctx()).catch((e: unknown) => e)
    expect(e1).toBeInstanceOf(UdfError)
    expect((e1 as Error).message).toMatch(/sort by slice needs strings/)
    const throwing: NodeSpec = { id: 't', op: 'sort', input: 'x', key: 'r => { if (r === "cd") throw new Error("no cd"); return r }' }
    const plain = [Buffer.from(encodeFrame(['ab', 'cd', 'ef']))]
    const e3 = await reduceShuffle(spec(throwing, plain), { peers: peers(seeded(3), plain), spillAtBytes: 1 << 28, fetched: () => {} }, collector(true), ctx()).catch((e: unknown) => e)
    expect(e3).toBeInstanceOf(UdfError)
    expect((e3 as UdfError).message).toMatch(/no cd/)
    expect((e3 as UdfError).record).toMatch(/cd/)
    // A frame whose strings run past its end: taken up to the damage, then the decoder judges it.
    const good = encodeFrame(['abc', 'def', 'ghi'])
    const bad = Buffer.from(good)
    bad[bad.length - 4] = 0xd9   // a str8 header claiming more bytes than the frame holds
    const e2 = await reduceShuffle(spec(node, [bad]), { peers: peers(seeded(2), [bad]), spillAtBytes: 1 << 28, fetched: () => {} }, collector(true), ctx()).catch((e: unknown) => e)
    expect(e2).toBeInstanceOf(FetchFailed)
  })
})
