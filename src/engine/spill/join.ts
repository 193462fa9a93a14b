// join, reduce side, at any size. StreamingJoin is the reduce task's join: it holds the smaller
// input (the build side) in a hash table under the memory budget and streams the other past it,
// emitting as it goes (operators/join.ts). When the build side does not fit the budget, it falls
// back to SpillingJoin: both sides grouped by key, spilled as runs sorted by key, and merged at
// the end. One output per matching pair, `[key, [left, right]]`, `null` for the missing side of
// an outer join. The values of one key on one side are held together, so a single key's group
// must fit in memory.
import type { NodeSpec } from '../../api/jobs'
import { KeyMap, compareKeys } from '../keys'
import { HashJoin, type JoinHow } from '../operators/join'
import type { Consumer } from '../pipeline'
import { isPair, notAPair } from '../records'
import { Reservation, estimateBytes } from './budget'
import { SpillingAggregator, type SpillContext } from './external'

export type { JoinHow }

/** Joined records per batch sent downstream. */
const OUT_BATCH = 8192
/** Held per build record beyond the record itself: the table entry, its group and list slot. */
const BUILD_OVERHEAD = 64

/**
 * The reduce side of a join, fed in two phases: every batch of the build side (build), then the
 * batches of the other side (probe) as they arrive, then finish(). Joined records go to `next`
 * during probe() and finish().
 */
export class StreamingJoin {
  private hash: HashJoin | null
  private fallback: SpillingJoin | null = null
  private readonly reservation: Reservation | null

  constructor(private readonly node: NodeSpec, readonly buildSide: 0 | 1, private readonly spill: SpillContext | null, private readonly next: Consumer) {
    this.hash = new HashJoin(node, buildSide, OUT_BATCH)
    this.reservation = spill === null ? null : new Reservation(spill.budget, spill.stepBytes)
  }

  /** True once the build side outgrew the budget and the join went the sort-merge way. */
  get spilling(): boolean { return this.fallback !== null }

  build(batch: unknown[]): void {
    if (this.fallback !== null) return this.fallback.push(this.buildSide, batch)
    this.hash!.build(batch)
    if (this.reservation === null) return
    let bytes = 0
    for (let i = 0; i < batch.length; i++) bytes += BUILD_OVERHEAD + estimateBytes(batch[i])
    if (!this.reservation.grow(bytes)) this.fallBack()
  }

  probe(batch: unknown[]): void {
    if (this.fallback !== null) this.fallback.push(this.buildSide === 0 ? 1 : 0, batch)
    else this.hash!.probe(batch, this.next)
  }

  /** After the last probe batch: what is left to emit (unmatched build groups, or the whole
   *  merge join); the memory held is given back. */
  finish(): void {
    if (this.fallback !== null) this.fallback.emit(this.next, OUT_BATCH)
    else this.hash!.finish(this.next)
    this.reservation?.reset()
  }

  /** The build side is too large for a hash table: hand what is held to a SpillingJoin, whose
   *  grouped sides spill as runs sorted by key, and send every later batch there too. */
  private fallBack(): void {
    // Given back first: the SpillingJoin reserves for what it takes over, and spills (collecting
    // the garbage each handed-over group leaves) whenever the budget refuses.
    this.reservation!.reset()
    const fallback = new SpillingJoin(this.node, this.spill)
    for (const [k, values] of this.hash!.drain()) fallback.pushGroup(this.buildSide, k, values)
    this.hash = null
    this.fallback = fallback
  }
}

export class SpillingJoin {
  private readonly sides: [SpillingAggregator<unknown[]>, SpillingAggregator<unknown[]>]
  private readonly how: JoinHow

  constructor(private readonly node: NodeSpec, spill: SpillContext | null) {
    this.how = node.how ?? 'inner'
    // A loop, not push(...b): a group handed over whole may hold more values than a call takes
    // arguments.
    const append = (a: unknown[], b: unknown[]): unknown[] => { for (let i = 0; i < b.length; i++) a.push(b[i]); return a }
    const group = (): SpillingAggregator<unknown[]> =>
      new SpillingAggregator<unknown[]>(append, v => v.length === 1 ? 8 + estimateBytes(v[0]) : estimateBytes(v), spill)
    this.sides = [group(), group()]
  }

  /** side 0 is the left input, side 1 the right. */
  push(side: 0 | 1, batch: unknown[]): void {
    const agg = this.sides[side]
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(this.node.id, 'join', r)
      agg.add(r[0], [r[1]])
    }
  }

  /** Takes all the values of one key of one side at once (the values array becomes the join's). */
  pushGroup(side: 0 | 1, key: unknown, values: unknown[]): void {
    this.sides[side].add(key, values)
  }

  /** Emits the joined records in batches and forgets the groups. */
  emit(next: Consumer, batchSize: number): number {
    let out: unknown[] = []
    let n = 0
    const flush = (): void => { if (out.length > 0) { next.push(out); n += out.length; out = [] } }
    const pairs = (k: unknown, left: unknown[] | undefined, right: unknown[] | undefined): void => {
      for (const r of joined(k, left, right, this.how)) {
        out.push(r)
        if (out.length >= batchSize) flush()
      }
    }
    const [l, r] = this.sides
    if (l.spilledRuns === 0 && r.spilledRuns === 0) {
      // Hash join: the right side by key, the left side streamed past it.
      const right = new KeyMap<unknown[]>()
      for (const [k, vs] of r.entries()) right.set(k, vs)
      for (const [k, vs] of l.entries()) {
        const match = right.get(k)
        if (match !== undefined) right.delete(k)
        pairs(k, vs, match)
      }
      if (this.how === 'right' || this.how === 'full') for (const [k, vs] of right.entries()) pairs(k, undefined, vs)
    } else {
      // Merge join over both sides sorted by key.
      const li = l.sortedEntries()
      const ri = r.sortedEntries()
      let a = li.next()
      let b = ri.next()
      while (!a.done || !b.done) {
        if (!a.done && (b.done || compareKeys(a.value[0], b.value[0]) < 0)) { pairs(a.value[0], a.value[1], undefined); a = li.next() }
        else if (!b.done && (a.done || compareKeys(a.value[0], b.value[0]) > 0)) { pairs(b.value[0], undefined, b.value[1]); b = ri.next() }
        else if (!a.done && !b.done) { pairs(a.value[0], a.value[1], b.value[1]); a = li.next(); b = ri.next() }
      }
    }
    flush()
    return n
  }
}

function* joined(k: unknown, left: unknown[] | undefined, right: unknown[] | undefined, how: JoinHow): Generator<unknown> {
  if (left !== undefined && right !== undefined) {
    for (let i = 0; i < left.length; i++) for (let j = 0; j < right.length; j++) yield [k, [left[i], right[j]]]
  } else if (left !== undefined && (how === 'left' || how === 'full')) {
    for (let i = 0; i < left.length; i++) yield [k, [left[i], null]]
  } else if (right !== undefined && (how === 'right' || how === 'full')) {
    for (let j = 0; j < right.length; j++) yield [k, [null, right[j]]]
  }
}
