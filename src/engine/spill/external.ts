// Reduce-side work at any size. In memory while the budget allows; past it, the data held is
// written to the work dir as a run sorted by key, memory is given back, and at the end the runs
// are merged (k-way) with what is left in memory. Keys are ordered by value with compareKeys, so
// equal keys meet in the merge whichever run they were in.
import { KeyMap, compareKeys } from '../keys'
import { mergeSorted } from './merge'
import { Reservation, estimateBytes, tableEntryBytes, type MemoryBudget } from './budget'
import { readRun, writePairsRun, writeRun, type RunFile, type RunStore } from './runs'
import { sortedOrder } from '../sort-order'
import { MergedCursor, RunCursor, StringArena, readKeyBytes, textOf, writeByteRun, type RecordCursor } from './string-sort'

export type SpillContext = {
  /** called after each spill, and by a sort held as bytes after every COLLECT_EVERY_BYTES of
   *  strings it took or made: the worker collects garbage there, so freed buffers leave the heap */
  afterSpill?: () => void
  store: RunStore
  budget: MemoryBudget
  onSpill(bytes: number): void
  /** reservation step; 1 MiB unless a test wants many small runs */
  stepBytes?: number
  /** a merge of runs calls afterSpill after every this many bytes of runs read (see mergeStore) */
  collectEveryBytes?: number
}

/** The collectEveryBytes for a spill threshold: in step with the budget, since a merge's garbage
 *  matters under a small one, and a collection of a merge's small heap costs a few ms. */
export const mergeCollectBytes = (spillAtBytes: number): number => Math.max(1 << 20, Math.floor(spillAtBytes / 16))

/**
 * The store a merge reads its runs through: with `collectEveryBytes`, it asks for a collection
 * after every that many bytes read. A merge keeps little alive, but makes a few objects for each
 * record it reads (decoded frames, combined entries, the output's), and the collector, pacing
 * itself by the heap the last spill's collection left, let them pile up: one reduce partition of a
 * 20x word count under a 19 MiB budget rose from ~95 MiB resident while fetching to 130 in its
 * merge, 105 with a collection every 65 536 records (~0.8 MiB of runs).
 */
export function mergeStore(ctx: SpillContext): RunStore {
  const every = ctx.collectEveryBytes
  const collect = ctx.afterSpill
  if (every === undefined || collect === undefined) return ctx.store
  const store = ctx.store
  let read = 0
  return {
    write: chunks => store.write(chunks),
    remove: run => store.remove(run),
    *read(run, start, end) {
      for (const chunk of store.read(run, start, end)) {
        if ((read += chunk.length) >= every) { read = 0; collect() }
        yield chunk
      }
    },
  }
}

/**
 * Past the budget, a structure spills only once it holds a quarter of a reservation step (256 KiB). The budget may be held by the
 * task's other structures (a join's other side, the map output of a later shuffle) or by the other
 * task threads, and a spill gives back only what this one holds: without a minimum it would spill
 * a record at a time, a collection after each, and a task would all but stop.
 */
export const minRunBytes = (ctx: SpillContext | null): number => (ctx?.stepBytes ?? 1 << 20) / 4

/** Runs read at once by a merge. Each holds a read chunk and a decoded frame: a merge of hundreds of
 *  runs (a task starved of budget spills small ones) held more than the budget. */
export const MAX_FAN_IN = 16

/**
 * The records of all the runs in order: the first runs merged into one until at most MAX_FAN_IN are
 * left, then the rest merged as they are read, all through one mergeStore. A merged run takes the
 * place of the runs it holds, which come first, so ties keep their order and a stable sort stays
 * stable. Equal keys of an aggregation may sit side by side in one run: its merge combines them.
 */
export function mergeRuns<T>(ctx: SpillContext, runs: RunFile[], compare: (a: T, b: T) => number): Generator<T> {
  const store = mergeStore(ctx)
  while (runs.length > MAX_FAN_IN) {
    const first = runs.splice(0, MAX_FAN_IN)
    const merged = writeRun(ctx.store, mergeSorted<T>(first.map(r => readRun(store, r) as Generator<T>), compare))
    for (const r of first) ctx.store.remove(r)
    runs.unshift(merged)
    ctx.afterSpill?.()
  }
  return mergeSorted<T>(runs.map(r => readRun(store, r) as Generator<T>), compare)
}

type Entry<V> = [unknown, V]
const byKey = <V>(a: Entry<V>, b: Entry<V>): number => compareKeys(a[0], b[0])

/** The map's entries sorted by key (keys are distinct here). */
function sortedEntriesOf<V>(map: KeyMap<Entry<V>>): Entry<V>[] {
  const entries = [...map.values()]
  const order = sortedOrder(entries.map(e => e[0]))
  const out = new Array<Entry<V>>(entries.length)
  for (let i = 0; i < order.length; i++) out[i] = entries[order[i]!]!
  return out
}

/** Combines values per key (reduce_by_key, group_by_key, distinct). */
export class SpillingAggregator<V> {
  // Each key's entry [key, value] is the map's value, updated in place: combining a record costs
  // one lookup, not a get and a set.
  private readonly map = new KeyMap<Entry<V>>()
  private readonly runs: RunFile[] = []
  private readonly reservation: Reservation | null
  private readonly minRun: number

  constructor(
    private readonly combine: (held: V, added: V) => V,
    /** how much memory combining adds to a held value (0 for a sum, the value's size for a list) */
    private readonly growth: (added: V) => number,
    private readonly spill: SpillContext | null,
  ) {
    this.reservation = spill === null ? null : new Reservation(spill.budget, spill.stepBytes)
    this.minRun = minRunBytes(spill)
  }

  add(k: unknown, v: V): void {
    const m = this.map
    const held = m.get(k)
    if (held === undefined) {
      m.set(k, [k, v])
      if (this.reservation !== null && !this.reservation.grow(tableEntryBytes(k) + estimateBytes(v)) && this.reservation.bytes >= this.minRun) this.spillNow()
    } else {
      held[1] = this.combine(held[1], v)
      if (this.reservation !== null) {
        const g = this.growth(v)
        if (g > 0 && !this.reservation.grow(g) && this.reservation.bytes >= this.minRun) this.spillNow()
      }
    }
  }

  get spilledRuns(): number { return this.runs.length }

  private spillNow(): void {
    const ctx = this.spill!
    const entries = sortedEntriesOf(this.map)
    const run = writeRun(ctx.store, entries)
    // Emptied, not only dropped: a stale pointer on the stack (JavaScriptCore scans it
    // conservatively) must not keep what was written alive through the collection below.
    entries.length = 0
    this.map.clear()
    this.runs.push(run)
    this.reservation!.reset()
    ctx.onSpill(run.size)
    ctx.afterSpill?.()
  }

  /** Every key once with its combined value; sorted by key when anything was spilled. */
  *entries(): Generator<Entry<V>> {
    if (this.runs.length === 0) {
      yield* this.map.values()
      // The data is let go, and its reservation with it: held to the task's end, it made the
      // task's later buffers (a shuffle write after the reduce) spill early.
      this.map.clear()
      this.reservation?.reset()
      return
    }
    const ctx = this.spill!
    // What is held goes to disk as one more run before the merge: kept through it, a budget's
    // worth of entries sat beside the merge's buffers and the output's for the whole merge, and
    // two tasks ending together peaked there (a 20x word count at --max-mem 48MiB: 250 MiB
    // resident in the merge, 225 before it).
    if (this.map.size > 0) this.spillNow()
    let current: Entry<V> | undefined
    for (const e of mergeRuns<Entry<V>>(ctx, this.runs, byKey)) {
      if (current !== undefined && compareKeys(current[0], e[0]) === 0) current = [current[0], this.combine(current[1], e[1])]
      else {
        if (current !== undefined) yield current
        current = e
      }
    }
    if (current !== undefined) yield current
    for (const r of this.runs) ctx.store.remove(r)
    this.runs.length = 0
    this.reservation?.reset()
  }
}

/**
 * Orders records by a key (sort, and the sides of a join once they spill); stable. String records
 * with string keys, the common sort, are held and spilled as bytes (string-sort.ts); a sort that
 * meets any other record or key turns to JS values for the rest, its byte runs read back as pairs.
 */
/**
 * A sort held as bytes keeps almost nothing on the JS heap, so the collector, which paces itself by
 * the heap's growth, let the strings it took in (decoded batches) and made on the way out, and the
 * fetched buffers it copied records from, pile up outside it: a reduce task of a 1 GiB sort grew
 * by a megabyte a batch, to past its bound. It asks for a collection after this many bytes of them.
 */
export const COLLECT_EVERY_BYTES = 32 << 20

export class SpillingSorter<T> {
  private keys: unknown[] = []
  private records: T[] = []
  /** the records held as bytes while every record and key so far was a string; null after */
  private arena: StringArena | null = new StringArena()
  private readonly runs: { file: RunFile; bytes: boolean }[] = []
  private readonly reservation: Reservation | null
  private readonly minRun: number
  /** bytes of strings taken or made since the last collection (see COLLECT_EVERY_BYTES) */
  private stringBytes = 0
  /** COLLECT_EVERY_BYTES, or the context's collectEveryBytes when that is less: 32 MiB of garbage
   *  is nothing beside a 1 GiB budget, but two tasks' worth passed the bound at --max-mem 32MiB
   *  (a sort of 1-3 KB lines handing its records to a count: 265 MiB resident, bound 232) */
  private readonly collectEvery: number
  count = 0

  constructor(private readonly spill: SpillContext | null, private readonly descending = false) {
    this.reservation = spill === null ? null : new Reservation(spill.budget, spill.stepBytes)
    this.minRun = minRunBytes(spill)
    this.collectEvery = Math.min(COLLECT_EVERY_BYTES, spill?.collectEveryBytes ?? COLLECT_EVERY_BYTES)
  }

  add(key: unknown, record: T): void {
    this.count++
    let bytes: number
    if (this.arena !== null && typeof key === 'string' && typeof record === 'string' && (bytes = this.arena.add(key, record)) >= 0) {
      // the real bytes held (string-sort.ts), not a JS value's estimate
      if ((this.stringBytes += bytes) >= this.collectEvery) this.collect()
    } else {
      if (this.arena !== null) this.toValues()
      this.keys.push(key)
      this.records.push(record)
      bytes = 32 + estimateBytes(key) + estimateBytes(record)
    }
    if (this.reservation !== null && !this.reservation.grow(bytes) && this.reservation.bytes >= this.minRun) this.spillNow()
  }

  /**
   * Adds a record given as ASCII bytes, its key a range of them (StringArena.addAscii): no string
   * is made for it. False, with nothing added, when the sort is not held as bytes any more or the
   * text is not ASCII; the caller then adds the record as a string.
   */
  addAscii(src: Uint8Array, textStart: number, textLen: number, keyStart: number, keyLen: number): boolean {
    if (this.arena === null) return false
    const bytes = this.arena.addAscii(src, textStart, textLen, keyStart, keyLen)
    if (bytes < 0) return false
    this.count++
    // No string is made here, but the buffers the records came in are garbage outside the heap all
    // the same (see COLLECT_EVERY_BYTES).
    if ((this.stringBytes += textLen) >= this.collectEvery) this.collect()
    if (this.reservation !== null && !this.reservation.grow(bytes) && this.reservation.bytes >= this.minRun) this.spillNow()
    return true
  }

  /**
   * Adds a record that came as ASCII bytes, src[textStart, textStart + textLen), and was made a
   * string for its key function: held from its bytes (not encoded again) when the key is a string
   * and the sort is held as bytes, else as add() holds it.
   */
  addAsciiKeyed(key: unknown, record: string, src: Uint8Array, textStart: number, textLen: number): void {
    if (this.arena === null || typeof key !== 'string') { this.add(key, record as T); return }
    const bytes = this.arena.addAsciiKeyed(key, src, textStart, textLen)
    this.count++
    if ((this.stringBytes += bytes) >= this.collectEvery) this.collect()
    if (this.reservation !== null && !this.reservation.grow(bytes) && this.reservation.bytes >= this.minRun) this.spillNow()
  }

  private collect(): void {
    this.stringBytes = 0
    this.spill?.afterSpill?.()
  }

  /** From bytes to JS values: what is held in bytes becomes pairs again (runs stay as they are). */
  private toValues(): void {
    const arena = this.arena!
    this.arena = null
    for (const [k, r] of arena.entries()) { this.keys.push(k); this.records.push(r as T) }
  }

  get spilledRuns(): number { return this.runs.length }

  private compare = (a: Entry<T>, b: Entry<T>): number => (this.descending ? -1 : 1) * compareKeys(a[0], b[0])

  /** What is held, in order, as [key, record] made one at a time: a merge of millions of records
   *  must not hold a second copy of them all as pairs. The held arrays are let go at once. */
  private *sortedInMemory(): Generator<Entry<T>> {
    if (this.arena !== null) {
      const arena = this.arena
      this.arena = new StringArena()
      yield* cursorEntries(arena.cursor(arena.order(this.descending))) as Generator<Entry<T>>
      return
    }
    const keys = this.keys
    const records = this.records
    const order = sortedOrder(keys, this.descending)
    this.keys = []
    this.records = []
    for (let i = 0; i < order.length; i++) yield [keys[order[i]!], records[order[i]!]!]
  }

  private spillNow(): void {
    const ctx = this.spill!
    let run: RunFile
    const bytes = this.arena !== null
    // What was written is emptied, not only dropped (see SpillingAggregator.spillNow).
    if (bytes) {
      run = writeByteRun(ctx.store, this.arena!.cursor(this.arena!.order(this.descending)))
      this.arena!.release()
      this.arena = new StringArena()
    } else {
      run = writePairsRun(ctx.store, this.keys, this.records, sortedOrder(this.keys, this.descending))
      this.keys.length = 0
      this.records.length = 0
    }
    this.runs.push({ file: run, bytes })
    this.reservation!.reset()
    ctx.onSpill(run.size)
    ctx.afterSpill?.()
  }

  /** The records alone in key order (stable), in batches of at most `size`: without a spill, no
   *  pair is made per record. */
  *sortedBatches(size: number): Generator<T[]> {
    if (this.arena !== null && this.runs.every(r => r.bytes)) { yield* this.byteBatches(size) as Generator<T[]>; return }
    if (this.runs.length === 0) {
      const records = this.records
      const order = sortedOrder(this.keys, this.descending)
      this.keys = []
      this.records = []
      for (let at = 0; at < order.length; at += size) {
        const n = Math.min(size, order.length - at)
        const batch = new Array<T>(n)
        for (let i = 0; i < n; i++) batch[i] = records[order[at + i]!]!
        yield batch
      }
      this.reservation?.reset()
      return
    }
    let batch: T[] = []
    for (const e of this.sorted()) {
      batch.push(e[1])
      if (batch.length >= size) { yield batch; batch = [] }
    }
    if (batch.length > 0) yield batch
  }

  /** Everything held and spilled as bytes, merged, each record's text made once on the way out. */
  private *byteBatches(size: number): Generator<string[]> {
    const c = this.byteMerge()
    let batch: string[] = []
    while (c.next()) {
      batch.push(textOf(c.buf, c.keyStart + c.keyLen, c.textLen))
      if ((this.stringBytes += c.textLen & 0x7fffffff) >= this.collectEvery) this.collect()
      if (batch.length >= size) { yield batch; batch = [] }
    }
    if (batch.length > 0) yield batch
    this.removeRuns()
  }

  /**
   * The records as lines of UTF-8 (each record's text, then '\n') in key order, in blocks of about
   * `blockBytes` with the number of records in each: no string per record at all. A block is valid
   * until the generator resumes (its memory is reused). Null when the sort is not held as bytes (a
   * record or key was not a string): then sortedBatches.
   */
  sortedLines(blockBytes = 1 << 20): Generator<[Uint8Array, number]> | null {
    if (this.arena === null || !this.runs.every(r => r.bytes)) return null
    return this.lineBlocks(blockBytes)
  }

  // One block, filled again once its lines are handed on: pushLines must not keep them (the sink
  // writes them out, or copies them into its own buffer). A new block per megabyte cost the
  // allocation and its pages every time, about a third of the output path.
  private *lineBlocks(blockBytes: number): Generator<[Uint8Array, number]> {
    const c = this.byteMerge()
    let block = new Uint8Array(blockBytes)
    let at = 0
    let count = 0
    while (c.next()) {
      const len = c.textLen & 0x7fffffff
      if (at + len + 1 > block.length) {
        if (count > 0) yield [block.subarray(0, at), count]
        if (len + 1 > block.length) block = new Uint8Array(len + 1)
        at = 0
        count = 0
      }
      const s = c.keyStart + c.keyLen
      c.buf.copy(block, at, s, s + len)
      block[at + len] = 0x0a
      at += len + 1
      count++
    }
    if (count > 0) yield [block.subarray(0, at), count]
    this.removeRuns()
  }

  /** One cursor over the records held in bytes and the byte runs, in order. */
  private byteMerge(): RecordCursor {
    const ctx = this.spill
    // What is held goes to disk first once anything was spilled, as SpillingAggregator does: held
    // through the merge, a budget's worth of records sat beside the merge's and the output's
    // buffers, and two tasks of a sort of 1-3 KB lines over 4 GiB ending together peaked at
    // 1219 MiB resident at --max-mem 1GiB (bound 1224).
    if (ctx !== null && this.runs.length > 0 && this.arena!.count > 0) this.spillNow()
    const arena = this.arena!
    this.arena = new StringArena()
    if (ctx !== null) this.compact(ctx)
    const cursors: RecordCursor[] = this.runs.map(r => new RunCursor(ctx!.store, r.file))
    cursors.push(arena.cursor(arena.order(this.descending)))
    return cursors.length === 1 ? cursors[0]! : new MergedCursor(cursors, this.descending)
  }

  /**
   * Merges the first runs into one until at most MAX_FAN_IN are left (see mergeRuns): byte runs
   * into a byte run, a mix of kinds into a run of pairs. The merged run comes first, as the runs
   * it holds did, so ties keep their order.
   */
  private compact(ctx: SpillContext, store = mergeStore(ctx)): void {
    while (this.runs.length > MAX_FAN_IN) {
      const first = this.runs.splice(0, MAX_FAN_IN)
      let merged: { file: RunFile; bytes: boolean }
      if (first.every(r => r.bytes)) merged = { file: writeByteRun(ctx.store, new MergedCursor(first.map(r => new RunCursor(ctx.store, r.file)), this.descending)), bytes: true }
      else merged = { file: writeRun(ctx.store, mergeSorted<Entry<T>>(first.map(r => this.entriesOf(store, r)), this.compare)), bytes: false }
      for (const r of first) ctx.store.remove(r.file)
      this.runs.unshift(merged)
      ctx.afterSpill?.()
    }
  }

  private entriesOf(store: RunStore, r: { file: RunFile; bytes: boolean }): Generator<Entry<T>> {
    return (r.bytes ? cursorEntries(new RunCursor(store, r.file)) : readRun(store, r.file)) as Generator<Entry<T>>
  }

  private removeRuns(): void {
    if (this.spill !== null) for (const r of this.runs) this.spill.store.remove(r.file)
    this.runs.length = 0
    this.reservation?.reset()
  }

  /** [key, record] in key order; records with equal keys in the order they were added. */
  *sorted(): Generator<Entry<T>> {
    if (this.runs.length === 0) { yield* this.sortedInMemory(); this.reservation?.reset(); return }
    const ctx = this.spill!
    // What is held goes to disk first, as SpillingAggregator.entries does: a sort of [-count, word]
    // keys at --max-mem 32MiB peaked at its merge, with the held pairs beside it.
    if (this.reservation!.bytes > 0) this.spillNow()
    const store = mergeStore(ctx)
    this.compact(ctx, store)
    const sources = this.runs.map(r => this.entriesOf(store, r))
    yield* mergeSorted<Entry<T>>(sources, this.compare)
    this.removeRuns()
  }
}

/** A cursor's records as [key, text]. */
function* cursorEntries(c: RecordCursor): Generator<[string, string]> {
  while (c.next()) yield [readKeyBytes(c.buf, c.keyStart, c.keyStart + c.keyLen), textOf(c.buf, c.keyStart + c.keyLen, c.textLen)]
}
