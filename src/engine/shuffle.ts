// Both sides of a shuffle, pure. Map side: partition records by key hash (by sampled key ranges for
// sort), combining on the way for reduce_by_key and distinct, and encode each reduce partition as
// msgpack frames. Reduce side: merge the decoded frames of every map output into the wide node's
// result (join and sort have their own modules under operators/).
// Memory: the map side reserves what it buffers from the worker's budget and, when refused, writes
// what it holds as one more segment of its output (a run with an index per reduce partition); the
// reduce side aggregates, joins and sorts through spilling structures (spill/).
import type { NodeSpec } from '../api/jobs'
import type { ShuffleWrite } from '../api/tasks'
import { encodeFrame } from './codec'
import { partitionOf } from './keys'
import { CombineTable, type CombineEntry } from './combine-table'
import type { Consumer } from './pipeline'
import { compileUdf, type Udf } from './udf'
import { UdfError, isPair, notAPair, udfError } from './records'
import { keysOf, rangePartitionsOf, sortKeyFunction, type SortKeyOf } from './operators/sort'
import { Reservation, UnlimitedBudget, estimateBytes, tableEntryBytes } from './spill/budget'
import { minRunBytes, SpillingAggregator, SpillingSorter, type SpillContext } from './spill/external'
import { SpillingGrouper } from './spill/group'
import { SpillingJoin } from './spill/join'
import { inChunks, MemoryRunStore, type RunFile } from './spill/runs'
import { aggCombine, aggValue, type Agg } from './builtins/aggregate'
import { ByteCountTable, entryBytes } from './builtins/byte-counts'
import { tokenString } from './builtins/words'
import { takesLines, type LinesConsumer } from './builtins/operators'
import { StringSpans } from './string-frames'
import { asciiText, isAscii } from './spill/string-sort'

/** One part of a map output: reduce partition p is bytes [offsets[p], offsets[p+1]) of the file. */
export type BlockSegment = { path: string; offsets: number[] }

/** Records held before encoding, over all partitions. */
const PENDING_BYTES = 1 << 20

const FRAME_RECORDS = 8192
const SAMPLE_EVERY = 16

/** Map side of one shuffle for one task. */
export class ShuffleWriter implements Consumer {
  records = 0
  private readonly parts: number
  private readonly combine: Udf | null
  /** reduce_by_key and distinct: what the task combined so far, for every reduce partition */
  private readonly table: CombineTable | null
  /** count_by_value fed words as bytes (builtins/): their counts, keyed by the bytes */
  private readonly byteCounts: ByteCountTable | null
  private readonly pending: unknown[][] = []
  /** each reduce partition's encoded frames, waiting for the segment: a list, not one growing
   *  buffer, so that what is held is what the budget counts (a buffer doubling to a hot partition's
   *  size held up to twice it, and kept that capacity after every spill) */
  private readonly held: Uint8Array[][] = []
  private readonly sortKey: SortKeyOf | null = null
  private readonly segments: BlockSegment[] = []
  private readonly reservation: Reservation
  private readonly minRun: number
  private pendingRecords = 0
  /** estimated bytes of a record waiting to be encoded: a running mean over sampled records */
  private recordBytes = 0
  private sampled = 0

  /** `bounds`: for a sort, the upper bounds of the reduce partitions (TaskSpec.range_bounds).
   *  `spill`: where the output goes, and the budget it buffers under. */
  constructor(private readonly write: ShuffleWrite, params: Readonly<Record<string, unknown>>, private readonly spill: SpillContext, private readonly bounds?: readonly unknown[]) {
    this.reservation = new Reservation(spill.budget, spill.stepBytes)
    this.minRun = minRunBytes(spill)
    this.parts = write.partitions
    const op = write.node.op
    this.combine = op === 'reduce_by_key' || op === 'agg_by_key' || op === 'count_by_value' ? combinerOf(write.node, params) : null
    if (op === 'sort') {
      if (bounds === undefined) throw new Error(`the task has no range bounds for sort "${write.node.id}": the master must send them`)
      if (bounds.length >= this.parts) throw new Error(`sort "${write.node.id}": ${bounds.length} range bounds for ${this.parts} partitions`)
      this.sortKey = sortKeyFunction(write.node, params)
    }
    this.table = op === 'reduce_by_key' || op === 'distinct' || op === 'agg_by_key' || op === 'count_by_value' ? new CombineTable(this.parts) : null
    this.byteCounts = op === 'count_by_value' ? new ByteCountTable() : null
    if (op === 'count_by_value') this.pushToken = (buf, start, end) => this.countToken(buf, start, end)
    for (let p = 0; p < this.parts; p++) {
      this.held.push([])
      this.pending.push([])
    }
  }

  get shuffleId(): string { return this.write.shuffle_id }

  push(batch: unknown[]): void {
    this.records += batch.length
    switch (this.write.node.op) {
      case 'reduce_by_key': return this.pushCombining(batch)
      case 'distinct': return this.pushDistinct(batch)
      case 'sort': return this.pushRanged(batch)
      case 'agg_by_key': return this.pushAggregating(batch)
      case 'count_by_value': return this.pushCounting(batch)
      default: return this.pushPairs(batch)
    }
  }

  /** count_by_value: one word, as bytes (builtins/words.ts), counted without making a string.
   *  Only a count_by_value writer has it: an operator hands bytes only to consumers that take them. */
  readonly pushToken?: (buf: Uint8Array, start: number, end: number) => void

  private countToken(buf: Uint8Array, start: number, end: number): void {
    this.records++
    if (this.byteCounts!.add(buf, start, end, 1) && !this.reservation.grow(entryBytes(end - start)) && this.reservation.bytes >= this.minRun) this.spillSegment()
  }

  private pushCounting(batch: unknown[]): void {
    const table = this.table!
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      const e = table.find(r)
      if (e !== undefined) (e.value as number)++
      else {
        table.insert(r, 1)
        if (!this.reservation.grow(tableEntryBytes(r)) && this.reservation.bytes >= this.minRun) this.spillSegment()
      }
    }
  }

  private pushAggregating(batch: unknown[]): void {
    const node = this.write.node
    const agg = node.agg as Agg
    const fn = this.combine!
    const table = this.table!
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(node.id, 'agg_by_key', r)
      const v = aggValue(node.id, agg, r, r[1])
      const e = table.find(r[0])
      if (e !== undefined) e.value = fn(e.value, v)
      else {
        table.insert(r[0], v)
        if (!this.reservation.grow(tableEntryBytes(r[0])) && this.reservation.bytes >= this.minRun) this.spillSegment()
      }
    }
  }

  private pushCombining(batch: unknown[]): void {
    const id = this.write.node.id
    const fn = this.combine!
    const table = this.table!
    let i = 0
    try {
      for (; i < batch.length; i++) {
        const r = batch[i]
        if (!isPair(r)) throw notAPair(id, 'reduce_by_key', r)
        const e = table.find(r[0])
        if (e !== undefined) e.value = fn(e.value, r[1])
        else {
          table.insert(r[0], r[1])
          if (!this.reservation.grow(tableEntryBytes(r[0]) + estimateBytes(r[1])) && this.reservation.bytes >= this.minRun) this.spillSegment()
        }
      }
    } catch (e) { throw udfError(id, e, batch[i]) }
  }

  private pushDistinct(batch: unknown[]): void {
    const table = this.table!
    for (let i = 0; i < batch.length; i++) {
      if (table.find(batch[i]) !== undefined) continue
      table.insert(batch[i], true)
      if (!this.reservation.grow(tableEntryBytes(batch[i])) && this.reservation.bytes >= this.minRun) this.spillSegment()
    }
  }

  private pushPairs(batch: unknown[]): void {
    const id = this.write.node.id
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(id, this.write.node.op, r)
      this.add(partitionOf(r[0], this.parts), r)
    }
  }

  private pushRanged(batch: unknown[]): void {
    const node = this.write.node
    const parts = rangePartitionsOf(node.id, this.sortKey!, batch, this.bounds!, node.descending === true)
    for (let i = 0; i < batch.length; i++) this.add(parts[i]!, batch[i])
  }

  // Records waiting to be encoded are counted too, and encoded together once they add up. Their
  // size is estimated on one record in SAMPLE_EVERY, not each: estimateBytes on every record was
  // an eighth of a map task's time. The encoded frame's real length is what the budget reserves.
  private add(p: number, r: unknown): void {
    const list = this.pending[p]!
    list.push(r)
    if (this.pendingRecords++ % SAMPLE_EVERY === 0) {
      this.sampled++
      this.recordBytes += (estimateBytes(r) - this.recordBytes) / Math.min(this.sampled, 64)
    }
    if (list.length >= FRAME_RECORDS) this.encodePending(p)
    else if (this.pendingRecords * this.recordBytes >= PENDING_BYTES) for (let q = 0; q < this.parts; q++) this.encodePending(q)
  }

  private encodePending(p: number): void {
    const bytes = this.appendPending(p)
    if (bytes > 0 && !this.reservation.grow(bytes) && this.reservation.bytes >= this.minRun) this.spillSegment()
  }

  /** Encodes partition p's waiting records as a frame held for the segment; returns the frame's bytes (0: none waited). */
  private appendPending(p: number): number {
    const list = this.pending[p]!
    if (list.length === 0) return 0
    this.pendingRecords -= list.length
    const frame = encodeFrame(list)
    this.held[p]!.push(frame)
    this.pending[p] = []
    return frame.length
  }

  /** Writes everything held as one more segment of the output and gives its memory back. */
  private spillSegment(): void {
    const run = this.writeSegment()
    this.reservation.reset()
    this.spill.onSpill(run.size)
    this.spill.afterSpill?.()
  }

  private writeSegment(): RunFile {
    const offsets = [0]
    const run = this.spill.store.write(inChunks(this.heldFrames(offsets)))
    this.segments.push({ path: run.path, offsets })
    return run
  }

  /** Ends the task's writes: the output's segments, in order (at least one, possibly empty). */
  finish(): BlockSegment[] {
    this.writeSegment()
    this.reservation.reset()
    return this.segments
  }

  /**
   * What is held, encoded a frame at a time for one reduce partition after another, as the store
   * asks for it; `offsets` gets the end of each partition's bytes. Nothing is encoded ahead of the
   * write: encoding a large table whole first (its pairs, its frames, a buffer per partition) added
   * ~60 % of the table's own memory at the moment it spilled, with every task spilling at once.
   */
  private *heldFrames(offsets: number[]): Generator<Uint8Array> {
    const combined = this.table !== null && this.table.size > 0 ? this.table.drain() : undefined
    const counted = this.byteCounts !== null && this.byteCounts.size > 0 ? this.byteCounts.drain(this.parts) : undefined
    const distinct = this.write.node.op === 'distinct'
    let total = 0
    for (let p = 0; p < this.parts; p++) {
      if (counted !== undefined) for (const words of counted.batches(p, tokenString, FRAME_RECORDS)) { const f = encodeFrame(words); total += f.length; yield f }
      if (combined !== undefined) {
        for (const f of entryFrames(combined[p]!, distinct)) { total += f.length; yield f }
        combined[p] = [] // written: its entries may go
      } else {
        this.appendPending(p)
        const frames = this.held[p]!
        this.held[p] = []
        for (const f of frames) { total += f.length; yield f }
        frames.length = 0
      }
      offsets.push(total)
    }
  }
}

/** A table partition's entries as shuffle frames ([key, value] records, or keys for distinct). The
 *  pairs are made into one scratch frame reused from frame to frame: a pair array per entry made
 *  all at once was garbage the size of the table. */
function* entryFrames(entries: readonly CombineEntry[], distinct: boolean): Generator<Uint8Array> {
  const n = Math.min(FRAME_RECORDS, entries.length)
  const frame: unknown[] = new Array(n)
  const pairs: [unknown, unknown][] = []
  if (!distinct) for (let i = 0; i < n; i++) pairs.push([undefined, undefined])
  for (let at = 0; at < entries.length; at += FRAME_RECORDS) {
    const m = Math.min(FRAME_RECORDS, entries.length - at)
    frame.length = m
    for (let i = 0; i < m; i++) {
      const e = entries[at + i]!
      if (distinct) frame[i] = e.key
      else { const pair = pairs[i]!; pair[0] = e.key; pair[1] = e.value; frame[i] = pair }
    }
    yield encodeFrame(frame)
  }
}

/** Reduce side of a wide node for one partition: takes the decoded batches of each input side
 *  (0, or 0 and 1 for a join), then emits the result. */
export interface Reducer {
  push(side: number, batch: unknown[]): void
  /** Takes a frame's records straight from its payload buf[start, end) where it can (the bytes are
   *  valid only during the call); returns how many of the batch's leading records it took. The
   *  caller decodes the frame and pushes the rest. Only reducers that keep records as bytes have it. */
  pushFrame?(side: number, buf: Uint8Array, start: number, end: number): number
  /** Emits the result in batches and forgets it; returns the number of records emitted. */
  emit(next: Consumer): number
}

export function createReducer(node: NodeSpec, params: Readonly<Record<string, unknown>>, spill: SpillContext | null = null): Reducer {
  switch (node.op) {
    case 'join': {
      const r = new SpillingJoin(node, spill)
      return { push: (side, batch) => r.push(side === 0 ? 0 : 1, batch), emit: next => r.emit(next, FRAME_RECORDS) }
    }
    case 'sort': {
      const keyOf = sortKeyFunction(node, params)
      const sorter = new SpillingSorter<unknown>(spill, node.descending === true)
      return {
        push: (_side, batch) => {
          const keys = keysOf(node.id, keyOf, batch)
          for (let i = 0; i < batch.length; i++) sorter.add(keys[i], batch[i])
        },
        pushFrame: node.by !== undefined && 'slice' in node.by ? sliceFrameTaker(sorter, node.by.slice) : keyedFrameTaker(node.id, sorter, keyOf),
        emit: next => {
          let n = 0
          // Straight to a text file as bytes, when the sort holds its lines as bytes.
          const lines = takesLines(next) ? sorter.sortedLines() : null
          if (lines !== null) {
            for (const [bytes, count] of lines) { (next as LinesConsumer).pushLines(bytes, count); n += count }
            return n
          }
          for (const batch of sorter.sortedBatches(FRAME_RECORDS)) { next.push(batch); n += batch.length }
          return n
        },
      }
    }
    default: {
      const r = new ShuffleReducer(node, params, spill)
      return { push: (_side, batch) => r.push(batch), emit: next => r.emit(next) }
    }
  }
}

/**
 * A sort by a slice of its lines takes each ASCII line of a frame as bytes, its key the slice's
 * bytes, with no string made (the common sort's whole input). A line with other characters, or
 * a record that is not a string, stops it: the caller decodes that record and the rest.
 */
function sliceFrameTaker(sorter: SpillingSorter<unknown>, [from, to]: readonly [number, number]): NonNullable<Reducer['pushFrame']> {
  const spans = new StringSpans()
  return (_side, buf, start, end) => {
    spans.read(buf, start, end)
    const n = spans.strings
    const starts = spans.starts
    const lengths = spans.lengths
    for (let i = 0; i < n; i++) {
      const s = starts[i]!
      const len = lengths[i]!
      // String.prototype.slice on ASCII text: the bounds cut to its length, empty when crossed.
      const ks = from < len ? from : len
      const ke = to < len ? to : len
      if (!sorter.addAscii(buf, s, len, s + ks, ke > ks ? ke - ks : 0)) return i
    }
    return n
  }
}

/**
 * A sort by a key function makes a string of each ASCII line of a frame for the function (one
 * byte a character: cheaper than decoding msgpack's UTF-8) and keeps the line's bytes as they
 * came, with no encoding again. A line with other characters, or a record that is not a string,
 * stops it: the caller decodes that record and the rest.
 */
function keyedFrameTaker(nodeId: string, sorter: SpillingSorter<unknown>, keyOf: SortKeyOf): NonNullable<Reducer['pushFrame']> {
  const spans = new StringSpans()
  return (_side, buf, start, end) => {
    spans.read(buf, start, end)
    const n = spans.strings
    const starts = spans.starts
    const lengths = spans.lengths
    const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
    for (let i = 0; i < n; i++) {
      const s = starts[i]!
      const len = lengths[i]!
      if (!isAscii(buf, s, len)) return i
      const text = asciiText(view, s, len)
      let key: unknown
      try { key = keyOf(text) } catch (e) { throw udfError(nodeId, e, text) }
      sorter.addAsciiKeyed(key, text, buf, s, len)
    }
    return n
  }
}

function emitBatches<T>(next: Consumer, items: Iterable<T>, toRecord: (t: T) => unknown): number {
  let out: unknown[] = []
  let n = 0
  for (const it of items) {
    out.push(toRecord(it))
    if (out.length >= FRAME_RECORDS) { next.push(out); n += out.length; out = [] }
  }
  if (out.length > 0) { next.push(out); n += out.length }
  return n
}

/** Groups go on once a batch holds FRAME_RECORDS values in all, not groups: a batch of large
 *  groups would hold far more than the budget gave each. */
function emitGroups(next: Consumer, groups: Iterable<[unknown, unknown[]]>): number {
  let out: unknown[] = []
  let values = 0
  let n = 0
  for (const g of groups) {
    out.push(g)
    values += g[1].length
    if (out.length >= FRAME_RECORDS || values >= FRAME_RECORDS) { next.push(out); n += out.length; out = []; values = 0 }
  }
  if (out.length > 0) { next.push(out); n += out.length }
  return n
}

/** Reduce side of reduce_by_key, group_by_key and distinct for one partition. */
export class ShuffleReducer {
  private readonly agg: SpillingAggregator<unknown> | null = null
  /** group_by_key: a key's values are never combined into one value, and may outgrow the budget */
  private readonly groups: SpillingGrouper | null = null

  constructor(private readonly node: NodeSpec, params: Readonly<Record<string, unknown>>, spill: SpillContext | null = null) {
    switch (node.op) {
      case 'reduce_by_key': case 'agg_by_key': case 'count_by_value': {
        const fn = combinerOf(node, params)
        // A sum keeps its size; a combine that builds strings or lists grows with what it adds.
        this.agg = new SpillingAggregator<unknown>((a, b) => fn(a, b), v => typeof v === 'number' ? 0 : estimateBytes(v), spill)
        break
      }
      case 'group_by_key':
        this.groups = new SpillingGrouper(spill)
        return
      case 'distinct':
        this.agg = new SpillingAggregator<unknown>(a => a, () => 0, spill)
        break
      default:
        throw new Error(`op ${node.op} has no reduce side here`)
    }
  }

  push(batch: unknown[]): void {
    if (this.groups !== null) {
      const g = this.groups
      for (let i = 0; i < batch.length; i++) { const r = batch[i] as [unknown, unknown]; g.add(r[0], r[1]) }
      return
    }
    const agg = this.agg!
    let i = 0
    try {
      switch (this.node.op) {
        case 'reduce_by_key': case 'agg_by_key': case 'count_by_value':
          for (; i < batch.length; i++) { const r = batch[i] as [unknown, unknown]; agg.add(r[0], r[1]) }
          return
        default:
          for (; i < batch.length; i++) agg.add(batch[i], true)
      }
    } catch (e) { throw udfError(this.node.id, e, batch[i]) }
  }

  /** Emits the result in batches and forgets it. */
  emit(next: Consumer): number {
    if (this.groups !== null) return emitGroups(next, this.groups.groups())
    const distinct = this.node.op === 'distinct'
    return emitBatches(next, this.agg!.entries(), e => distinct ? e[0] : e)
  }
}

/** For callers outside a worker (tests): no limit, and outputs kept in memory. */
export const inMemory = (): SpillContext & { store: MemoryRunStore } => ({ budget: new UnlimitedBudget(), onSpill() {}, store: new MemoryRunStore() })

/** Reads back one reduce partition of a map output written to a MemoryRunStore. */
export function partitionOfOutput(store: MemoryRunStore, segments: readonly BlockSegment[], p: number): Uint8Array {
  const parts = segments.map(s => store.files.get(s.path)!.subarray(s.offsets[p]!, s.offsets[p + 1]!))
  const out = new Uint8Array(parts.reduce((n, b) => n + b.length, 0))
  let at = 0
  for (const b of parts) { out.set(b, at); at += b.length }
  return out
}

/** The combine function of a keyed aggregation: the user's, or a built-in's (builtins/aggregate.ts). */
function combinerOf(node: NodeSpec, params: Readonly<Record<string, unknown>>): Udf {
  if (node.op === 'count_by_value') return aggCombine('count') as Udf
  if (node.op === 'agg_by_key') return aggCombine(node.agg as Agg) as Udf
  try {
    return compileUdf(node.fn ?? '', params)
  } catch (e) {
    throw new UdfError(node.id, `fn of node "${node.id}" cannot be compiled: ${(e as Error).message}`, '')
  }
}
