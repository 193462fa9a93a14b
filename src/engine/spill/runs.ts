// Spill runs: records written to the work dir as msgpack frames, and read back in order. The I/O
// is the worker's (RunStore); this module only frames and unframes. A run may hold one sorted
// sequence (reduce side) or one segment per reduce partition with an index (map side).
import { ByteSink, FrameDecoder, encodeFrame } from '../codec'

/** Synchronous files: spilling happens inside a task thread's push, which does not await. */
export interface RunStore {
  /** Writes the bytes as a new run file and returns its handle. The chunks may be made as they
   *  are asked for: a run is never held whole in memory on its way to disk. */
  write(chunks: Iterable<Uint8Array>): RunFile
  /** The run's bytes from `start` to `end`, a chunk at a time. */
  read(run: RunFile, start?: number, end?: number): Iterable<Uint8Array>
  remove(run: RunFile): void
}

export type RunFile = { path: string; size: number }

// Small frames: a merge decodes one frame per run at a time.
const FRAME_RECORDS = 512

/** Writes sorted records as one run. */
export function writeRun(store: RunStore, records: Iterable<unknown>): RunFile {
  return store.write(inChunks(recordFrames(records)))
}

/** Writes the pairs [keys[i], values[i]] for i in `order` as one run, without making the pairs. */
export function writePairsRun(store: RunStore, keys: readonly unknown[], values: readonly unknown[], order: Uint32Array): RunFile {
  return store.write(inChunks(pairFrames(keys, values, order)))
}

/** Bytes a run is written in at a time. The buffer is memory beside the budget at the moment a
 *  structure spills or a merge writes: at 4 MiB it grew to 8, half of a task's share of a 32 MiB
 *  budget (a compaction of sixteen runs held 12.5 MiB of buffers). */
export const WRITE_CHUNK_BYTES = 1 << 20

/** Frames gathered into chunks of at most WRITE_CHUNK_BYTES, each handed on (a view, reused)
 *  before the next is made. A frame of WRITE_CHUNK_BYTES or more is handed on alone, as it is:
 *  copied, it would grow the gathering buffer to its own size. */
export function* inChunks(frames: Iterable<Uint8Array>): Generator<Uint8Array> {
  const sink = new ByteSink(WRITE_CHUNK_BYTES)
  for (const f of frames) {
    if (sink.length > 0 && sink.length + f.length > WRITE_CHUNK_BYTES) { yield sink.bytes(); sink.reset() }
    if (f.length >= WRITE_CHUNK_BYTES) yield f
    else sink.append(f)
  }
  if (sink.length > 0) yield sink.bytes()
}

function* recordFrames(records: Iterable<unknown>): Generator<Uint8Array> {
  let frame: unknown[] = []
  for (const r of records) {
    frame.push(r)
    if (frame.length >= FRAME_RECORDS) { yield encodeRunFrame(frame); frame = [] }
  }
  if (frame.length > 0) yield encodeRunFrame(frame)
}

function* pairFrames(keys: readonly unknown[], values: readonly unknown[], order: Uint32Array): Generator<Uint8Array> {
  for (let at = 0; at < order.length; at += FRAME_RECORDS) {
    const n = Math.min(FRAME_RECORDS, order.length - at)
    const ks = new Array<unknown>(n)
    const vs = new Array<unknown>(n)
    for (let i = 0; i < n; i++) { const j = order[at + i]!; ks[i] = keys[j]; vs[i] = values[j] }
    yield !allStrings(ks) ? encodeFrame([RECORDS, ks.map((k, i) => [k, vs[i]])])
      : allStrings(vs) ? encodePairsFrame(ks as string[], vs as string[])
      : encodeFrame([KEYED, lossless((ks as string[]).join('')), ks.map(k => (k as string).length), vs])
  }
}

/** Reads a run back, record by record, holding one chunk of frames at a time. */
export function* readRun(store: RunStore, run: RunFile, start = 0, end = run.size): Generator<unknown> {
  for (const batch of readRunBatches(store, run, start, end)) yield* batch
}

/** Reads a run back a batch at a time. */
export function* readRunBatches(store: RunStore, run: RunFile, start = 0, end = run.size): Generator<unknown[]> {
  const decoder = new FrameDecoder()
  for (const chunk of store.read(run, start, end)) for (const frame of decoder.batches(chunk)) yield unpackRunFrame(frame)
  decoder.finish()
}

// Runs never leave the worker that wrote them, so their frames may take a shape of their own. A
// sort spills [key, line] pairs of strings: written one by one, msgpack spends most of its time in
// a native call per string. So a frame whose records are all pairs of strings is written as
// [PAIRS, keys joined, their lengths, values joined, their lengths] (one call per joined string)
// and read back as slices; any other frame as [RECORDS, records].
const RECORDS = 0
const PAIRS = 1
/** pairs with string keys and other values: [KEYED, keys joined, their lengths, values] */
const KEYED = 2

function encodeRunFrame(records: readonly unknown[]): Uint8Array {
  const n = records.length
  const ks = new Array<string>(n)
  const vs = new Array<unknown>(n)
  for (let i = 0; i < n; i++) {
    const r = records[i]
    if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string') return encodeFrame([RECORDS, records])
    ks[i] = r[0]
    vs[i] = r[1]
  }
  return allStrings(vs) ? encodePairsFrame(ks, vs as string[]) : encodeFrame([KEYED, lossless(ks.join('')), ks.map(k => k.length), vs])
}

const allStrings = (xs: readonly unknown[]): boolean => xs.every(x => typeof x === 'string')

function encodePairsFrame(ks: readonly string[], vs: readonly string[]): Uint8Array {
  // Lengths as plain numbers: msgpack gives typed arrays back as bytes.
  return encodeFrame([PAIRS, lossless(ks.join('')), ks.map(k => k.length), lossless(vs.join('')), vs.map(v => v.length)])
}

// msgpack writes strings as UTF-8, which has no lone surrogates: it writes U+FFFD instead. A sort
// key cut by a slice from the reduce side's lines can end inside a surrogate pair, and changed in
// a run it sorted apart from the same key held in memory. Such a string goes as its UTF-16 code
// units (bytes, in this machine's order: a run never leaves it).
const lossless = (s: string): string | Uint8Array => {
  if (s.isWellFormed()) return s
  const units = new Uint16Array(s.length)
  for (let i = 0; i < s.length; i++) units[i] = s.charCodeAt(i)
  return new Uint8Array(units.buffer)
}

function fromLossless(x: string | Uint8Array): string {
  if (typeof x === 'string') return x
  const units = new Uint16Array(x.slice().buffer)
  let s = ''
  for (let i = 0; i < units.length; i += 4096) s += String.fromCharCode(...units.subarray(i, i + 4096))
  return s
}

function unpackRunFrame(frame: unknown[]): unknown[] {
  if (frame[0] === RECORDS) return frame[1] as unknown[]
  if (frame[0] === KEYED) {
    const [, rk, kl, vs] = frame as [number, string | Uint8Array, number[], unknown[]]
    const k = fromLossless(rk)
    const out = new Array<unknown>(kl.length)
    for (let i = 0, at = 0; i < kl.length; at += kl[i]!, i++) out[i] = [k.slice(at, at + kl[i]!), vs[i]]
    return out
  }
  const [, rk, kl, rv, vl] = frame as [number, string | Uint8Array, number[], string | Uint8Array, number[]]
  const k = fromLossless(rk)
  const v = fromLossless(rv)
  const out = new Array<unknown>(kl.length)
  let at = 0
  let vat = 0
  for (let i = 0; i < kl.length; i++) {
    out[i] = [k.slice(at, at + kl[i]!), v.slice(vat, vat + vl[i]!)]
    at += kl[i]!
    vat += vl[i]!
  }
  return out
}

/** Runs kept in memory: for tests, and for code that runs outside a worker. */
export class MemoryRunStore implements RunStore {
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
    const path = `memory-run-${this.n++}`
    this.files.set(path, all)
    return { path, size }
  }

  *read(run: RunFile, start = 0, end = run.size): Iterable<Uint8Array> {
    const bytes = this.files.get(run.path)
    if (bytes === undefined) throw new Error(`no run ${run.path}`)
    yield bytes.subarray(start, end)
  }

  remove(run: RunFile): void { this.files.delete(run.path) }
}
