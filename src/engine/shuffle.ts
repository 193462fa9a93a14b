// Both sides of a shuffle, pure. Map side: partition records by key hash (by sampled key ranges for
// sort), combining on the way for reduce_by_key and distinct, and encode each reduce partition as
// msgpack frames. Reduce side: merge the decoded frames of every map output into the wide node's
// result (join and sort have their own modules under operators/).
// Memory is bounded by the caller's spill policy, not here.
import type { NodeSpec } from '../api/jobs'
import type { ShuffleWrite } from '../api/tasks'
import { ByteSink, encodeFrame } from './codec'
import { KeyMap, partitionOf } from './keys'
import type { Consumer } from './pipeline'
import { compileUdf, type Udf } from './udf'
import { UdfError, isPair, notAPair, udfError } from './records'
import { JoinReducer } from './operators/join'
import { SortReducer, rangePartitionsOf, sortKeyFunction, type SortKeyOf } from './operators/sort'

const FRAME_RECORDS = 8192

/** Map side of one shuffle for one task. */
export class ShuffleWriter implements Consumer {
  records = 0
  private readonly parts: number
  private readonly combine: Udf | null
  private readonly maps: KeyMap<unknown>[] = []
  private readonly pending: unknown[][] = []
  private readonly sinks: ByteSink[] = []
  private readonly sortKey: SortKeyOf | null = null

  /** `bounds`: for a sort, the upper bounds of the reduce partitions (TaskSpec.range_bounds). */
  constructor(private readonly write: ShuffleWrite, params: Readonly<Record<string, unknown>>, private readonly bounds?: readonly unknown[]) {
    this.parts = write.partitions
    const op = write.node.op
    this.combine = op === 'reduce_by_key' ? compileCombiner(write.node, params) : null
    if (op === 'sort') {
      if (bounds === undefined) throw new Error(`the task has no range bounds for sort "${write.node.id}": the master must send them`)
      if (bounds.length >= this.parts) throw new Error(`sort "${write.node.id}": ${bounds.length} range bounds for ${this.parts} partitions`)
      this.sortKey = sortKeyFunction(write.node, params)
    }
    for (let p = 0; p < this.parts; p++) {
      this.sinks.push(new ByteSink())
      if (op === 'reduce_by_key' || op === 'distinct') this.maps.push(new KeyMap())
      else this.pending.push([])
    }
  }

  get shuffleId(): string { return this.write.shuffle_id }

  push(batch: unknown[]): void {
    this.records += batch.length
    switch (this.write.node.op) {
      case 'reduce_by_key': return this.pushCombining(batch)
      case 'distinct': return this.pushDistinct(batch)
      case 'sort': return this.pushRanged(batch)
      default: return this.pushPairs(batch)
    }
  }

  private pushCombining(batch: unknown[]): void {
    const id = this.write.node.id
    const fn = this.combine!
    let i = 0
    try {
      for (; i < batch.length; i++) {
        const r = batch[i]
        if (!isPair(r)) throw notAPair(id, 'reduce_by_key', r)
        const m = this.maps[partitionOf(r[0], this.parts)]!
        const acc = m.get(r[0])
        m.set(r[0], acc === undefined && !m.has(r[0]) ? r[1] : fn(acc, r[1]))
      }
    } catch (e) { throw udfError(id, e, batch[i]) }
  }

  private pushDistinct(batch: unknown[]): void {
    for (let i = 0; i < batch.length; i++) this.maps[partitionOf(batch[i], this.parts)]!.set(batch[i], true)
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

  private add(p: number, r: unknown): void {
    const list = this.pending[p]!
    list.push(r)
    if (list.length >= FRAME_RECORDS) {
      this.sinks[p]!.append(encodeFrame(list))
      this.pending[p] = []
    }
  }

  /** Ends the task's writes: one byte block per reduce partition (possibly empty). */
  finish(): Uint8Array[] {
    for (let p = 0; p < this.parts; p++) {
      const sink = this.sinks[p]!
      if (this.maps.length > 0) {
        const m = this.maps[p]!
        let frame: unknown[] = []
        const distinct = this.write.node.op === 'distinct'
        for (const [k, v] of m.entries()) {
          frame.push(distinct ? k : [k, v])
          if (frame.length >= FRAME_RECORDS) { sink.append(encodeFrame(frame)); frame = [] }
        }
        if (frame.length > 0) sink.append(encodeFrame(frame))
        m.clear()
      } else if (this.pending[p]!.length > 0) {
        sink.append(encodeFrame(this.pending[p]!))
        this.pending[p] = []
      }
    }
    return this.sinks.map(s => s.bytes())
  }
}

/** Reduce side of a wide node for one partition: takes the decoded batches of each input side
 *  (0, or 0 and 1 for a join), then emits the result. */
export interface Reducer {
  push(side: number, batch: unknown[]): void
  /** Emits the result in batches and forgets it; returns the number of records emitted. */
  emit(next: Consumer): number
}

export function createReducer(node: NodeSpec, params: Readonly<Record<string, unknown>>): Reducer {
  switch (node.op) {
    case 'join': {
      const r = new JoinReducer(node)
      return { push: (side, batch) => r.push(side === 0 ? 0 : 1, batch), emit: next => r.emit(next, FRAME_RECORDS) }
    }
    case 'sort': {
      const r = new SortReducer(node, params)
      return { push: (_side, batch) => r.push(batch), emit: next => r.emit(next, FRAME_RECORDS) }
    }
    default: {
      const r = new ShuffleReducer(node, params)
      return { push: (_side, batch) => r.push(batch), emit: next => r.emit(next) }
    }
  }
}

/** Reduce side of reduce_by_key, group_by_key and distinct for one partition. */
export class ShuffleReducer {
  private readonly map = new KeyMap<unknown>()
  private readonly combine: Udf | null

  constructor(private readonly node: NodeSpec, params: Readonly<Record<string, unknown>>) {
    this.combine = node.op === 'reduce_by_key' ? compileCombiner(node, params) : null
  }

  push(batch: unknown[]): void {
    const m = this.map
    switch (this.node.op) {
      case 'reduce_by_key': {
        const fn = this.combine!
        let i = 0
        try {
          for (; i < batch.length; i++) {
            const r = batch[i] as [unknown, unknown]
            m.set(r[0], m.has(r[0]) ? fn(m.get(r[0]), r[1]) : r[1])
          }
        } catch (e) { throw udfError(this.node.id, e, batch[i]) }
        return
      }
      case 'group_by_key':
        for (let i = 0; i < batch.length; i++) {
          const r = batch[i] as [unknown, unknown]
          const values = m.get(r[0]) as unknown[] | undefined
          if (values === undefined) m.set(r[0], [r[1]])
          else values.push(r[1])
        }
        return
      case 'distinct':
        for (let i = 0; i < batch.length; i++) m.set(batch[i], true)
        return
      default:
        throw new Error(`op ${this.node.op} has no reduce side here`)
    }
  }

  /** Emits the result in batches and forgets it. */
  emit(next: Consumer, batchSize = FRAME_RECORDS): number {
    let out: unknown[] = []
    let n = 0
    const distinct = this.node.op === 'distinct'
    for (const [k, v] of this.map.entries()) {
      out.push(distinct ? k : [k, v])
      if (out.length >= batchSize) { next.push(out); n += out.length; out = [] }
    }
    if (out.length > 0) { next.push(out); n += out.length }
    this.map.clear()
    return n
  }
}

function compileCombiner(node: NodeSpec, params: Readonly<Record<string, unknown>>): Udf {
  try {
    return compileUdf(node.fn ?? '', params)
  } catch (e) {
    throw new UdfError(node.id, `fn of node "${node.id}" cannot be compiled: ${(e as Error).message}`, '')
  }
}
