// Spill runs: records written to the work dir as msgpack frames, and read back in order. The I/O
// is the worker's (RunStore); this module only frames and unframes. A run may hold one sorted
// sequence (reduce side) or one segment per reduce partition with an index (map side).
import { ByteSink, FrameDecoder, encodeFrame } from '../codec'

/** Synchronous files: spilling happens inside a task thread's push, which does not await. */
export interface RunStore {
  /** Writes the bytes as a new run file and returns its handle. */
  write(chunks: readonly Uint8Array[]): RunFile
  /** The run's bytes from `start` to `end`, a chunk at a time. */
  read(run: RunFile, start?: number, end?: number): Iterable<Uint8Array>
  remove(run: RunFile): void
}

export type RunFile = { path: string; size: number }

// Small frames: a merge decodes one frame per run at a time.
const FRAME_RECORDS = 512

/** Writes sorted records as one run. */
export function writeRun(store: RunStore, records: Iterable<unknown>): RunFile {
  const sink = new ByteSink()
  let frame: unknown[] = []
  const chunks: Uint8Array[] = []
  for (const r of records) {
    frame.push(r)
    if (frame.length >= FRAME_RECORDS) {
      sink.append(encodeFrame(frame))
      frame = []
      if (sink.length >= 4 << 20) { chunks.push(sink.bytes().slice()); sink.reset() }
    }
  }
  if (frame.length > 0) sink.append(encodeFrame(frame))
  if (sink.length > 0) chunks.push(sink.bytes().slice())
  return store.write(chunks)
}

/** Reads a run back, record by record, holding one chunk of frames at a time. */
export function* readRun(store: RunStore, run: RunFile, start = 0, end = run.size): Generator<unknown> {
  const decoder = new FrameDecoder()
  for (const chunk of store.read(run, start, end)) {
    for (const batch of decoder.push(chunk)) yield* batch
  }
  decoder.finish()
}

/** Reads a run back a batch at a time. */
export function* readRunBatches(store: RunStore, run: RunFile, start = 0, end = run.size): Generator<unknown[]> {
  const decoder = new FrameDecoder()
  for (const chunk of store.read(run, start, end)) yield* decoder.push(chunk)
  decoder.finish()
}

/** Runs kept in memory: for tests, and for code that runs outside a worker. */
export class MemoryRunStore implements RunStore {
  readonly files = new Map<string, Uint8Array>()
  private n = 0

  write(chunks: readonly Uint8Array[]): RunFile {
    const size = chunks.reduce((a, c) => a + c.length, 0)
    const all = new Uint8Array(size)
    let at = 0
    for (const c of chunks) { all.set(c, at); at += c.length }
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
