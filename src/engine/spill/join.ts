// join, reduce side, at any size. StreamingJoin is the reduce task's join: it holds the smaller
// input (the build side) in a hash table under the memory budget and streams the other past it,
// emitting as it goes (operators/join.ts). When the build side does not fit the budget, it falls
// back to SpillingJoin: both sides grouped by key, spilled as runs sorted by key, and merged at
// the end. One output per matching pair, `[key, [left, right]]`, `null` for the missing side of
// an outer join. A key's values past the budget stay on disk (spill/group.ts), so a key hot on
// both sides is joined a block at a time and never held whole.
import type { NodeSpec } from '../../api/jobs'
import { KeyMap, compareKeys } from '../keys'
import { HashJoin, type JoinHow } from '../operators/join'
import type { Consumer } from '../pipeline'
import { isPair, notAPair } from '../records'
import { Reservation, estimateBytes } from './budget'
import { minRunBytes, type SpillContext } from './external'
import { SpillingGrouper, gatherGroups } from './group'

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
    const keyExtra = this.hash!.build(batch)
    if (this.reservation === null) return
    let bytes = keyExtra
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
  private readonly sides: [SpillingGrouper, SpillingGrouper]
  private readonly how: JoinHow

  constructor(private readonly node: NodeSpec, private readonly spill: SpillContext | null) {
    this.how = node.how ?? 'inner'
    this.sides = [new SpillingGrouper(spill), new SpillingGrouper(spill)]
  }

  /** side 0 is the left input, side 1 the right. */
  push(side: 0 | 1, batch: unknown[]): void {
    const g = this.sides[side]
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(this.node.id, 'join', r)
      g.add(r[0], r[1])
    }
  }

  /** Takes all the values of one key of one side at once (the values array becomes the join's). */
  pushGroup(side: 0 | 1, key: unknown, values: unknown[]): void {
    this.sides[side].addGroup(key, values)
  }

  /** Emits the joined records in batches and forgets the groups. */
  emit(next: Consumer, batchSize: number): number {
    let out: unknown[] = []
    let n = 0
    const flush = (): void => { if (out.length > 0) { next.push(out); n += out.length; out = [] } }
    const put = (r: unknown): void => { out.push(r); if (out.length >= batchSize) flush() }
    const [l, r] = this.sides
    const how = this.how
    if (l.spilledRuns === 0 && r.spilledRuns === 0) {
      // Hash join: the right side by key, the left side streamed past it.
      const right = new KeyMap<unknown[]>()
      for (const [k, vs] of r.groups()) right.set(k, vs)
      for (const [k, vs] of l.groups()) {
        const match = right.get(k)
        if (match !== undefined) right.delete(k)
        for (const x of joined(k, vs, match, how)) put(x)
      }
      if (how === 'right' || how === 'full') for (const [k, vs] of right.entries()) for (const x of joined(k, undefined, vs, how)) put(x)
    } else this.mergeJoin(put)
    flush()
    return n
  }

  /**
   * Merge join over both sides' pairs sorted by key. A key on one side only streams past. A key on
   * both: its left values are gathered under the budget (on disk past it, gatherGroups), and its
   * right values stream past them in blocks, each block one pass over the left values: the
   * product of a key hot on both sides is emitted as it is made, neither side held whole.
   */
  private mergeJoin(put: (r: unknown) => void): void {
    const how = this.how
    const keepLeft = how === 'left' || how === 'full'
    const keepRight = how === 'right' || how === 'full'
    const li = this.sides[0].sortedPairs()
    const ri = this.sides[1].sortedPairs()
    let a = li.next()
    let b = ri.next()
    // The left values of the key at a, read once a group of them is wanted.
    const leftKey = (): Generator<[unknown, unknown]> => (function* () {
      const k = a.value![0]
      while (!a.done && compareKeys(a.value[0], k) === 0) { yield a.value; a = li.next() }
    })()
    const reservation = this.spill === null ? null : new Reservation(this.spill.budget, this.spill.stepBytes)
    while (!a.done || !b.done) {
      const c = a.done ? 1 : b.done ? -1 : compareKeys(a.value[0], b.value[0])
      if (c < 0) {
        const k = a.value![0]
        while (!a.done && compareKeys(a.value[0], k) === 0) { if (keepLeft) put([k, [a.value[1], null]]); a = li.next() }
      } else if (c > 0) {
        const k = b.value![0]
        while (!b.done && compareKeys(b.value[0], k) === 0) { if (keepRight) put([k, [null, b.value[1]]]); b = ri.next() }
      } else {
        const k = a.value![0]
        const gathered = this.spill === null ? null : gatherGroups(leftKey(), this.spill, true)
        const left = gathered === null ? [...leftKey()].map(p => p[1]) : gathered.next().value![1]
        // Right values in blocks held under the budget; each block meets every left value.
        let block: unknown[] = []
        const meet = (): void => {
          for (let i = 0; i < left.length; i++) { const lv = left[i]; for (let j = 0; j < block.length; j++) put([k, [lv, block[j]]]) }
          block = []
          reservation?.reset()
        }
        while (!b.done && compareKeys(b.value[0], k) === 0) {
          block.push(b.value[1])
          const full = reservation !== null && !reservation.grow(8 + estimateBytes(b.value[1])) && reservation.bytes >= minRunBytes(this.spill)
          b = ri.next()
          if (full) meet()
        }
        if (block.length > 0) meet()
        gathered?.return(undefined)
      }
    }
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
