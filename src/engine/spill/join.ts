// join, reduce side, at any size: the values of each side grouped by key. In memory, a hash join;
// once either side has spilled, both sides come back sorted by key and are merged. One output per
// matching pair, `[key, [left, right]]`, `null` for the missing side of an outer join. The values
// of one key on one side are held together, so a single key's group must fit in memory.
import type { NodeSpec } from '../../api/jobs'
import { KeyMap, compareKeys } from '../keys'
import type { Consumer } from '../pipeline'
import { isPair, notAPair } from '../records'
import { estimateBytes } from './budget'
import { SpillingAggregator, type SpillContext } from './external'

export type JoinHow = 'inner' | 'left' | 'right' | 'full'

export class SpillingJoin {
  private readonly sides: [SpillingAggregator<unknown[]>, SpillingAggregator<unknown[]>]
  private readonly how: JoinHow

  constructor(private readonly node: NodeSpec, spill: SpillContext | null) {
    this.how = node.how ?? 'inner'
    const group = (): SpillingAggregator<unknown[]> =>
      new SpillingAggregator<unknown[]>((a, b) => { a.push(...b); return a }, v => 8 + estimateBytes(v[0]), spill)
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
