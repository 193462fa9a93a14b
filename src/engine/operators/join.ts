// join, reduce side: the values of both inputs grouped by key, then one output per matching pair,
// `[key, [left, right]]`, with `null` for the missing side of an outer join. Pure, in memory.
// The map side is a plain keyed shuffle per input (shuffle ids `${join}/0` and `${join}/1`), so the
// reduce task knows which side each fetched batch came from and pushes it with that side.
import type { NodeSpec } from '../../api/jobs'
import { KeyMap } from '../keys'
import type { Consumer } from '../pipeline'
import { notAPair, isPair } from '../records'

export type JoinHow = 'inner' | 'left' | 'right' | 'full'

type Sides = [unknown[], unknown[]]

export class JoinReducer {
  private readonly groups = new KeyMap<Sides>()
  private readonly how: JoinHow

  constructor(private readonly node: NodeSpec) {
    this.how = node.how ?? 'inner'
  }

  /** side 0 is the left input, side 1 the right. */
  push(side: 0 | 1, batch: unknown[]): void {
    const m = this.groups
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(this.node.id, 'join', r)
      let g = m.get(r[0])
      if (g === undefined) { g = [[], []]; m.set(r[0], g) }
      g[side].push(r[1])
    }
  }

  /** Emits the joined records in batches and forgets the groups. */
  emit(next: Consumer, batchSize: number): number {
    const keepLeft = this.how === 'left' || this.how === 'full'
    const keepRight = this.how === 'right' || this.how === 'full'
    let out: unknown[] = []
    let n = 0
    const flush = (): void => { if (out.length > 0) { next.push(out); n += out.length; out = [] } }
    for (const [k, [left, right]] of this.groups.entries()) {
      if (left.length > 0 && right.length > 0) {
        for (let i = 0; i < left.length; i++) {
          for (let j = 0; j < right.length; j++) {
            out.push([k, [left[i], right[j]]])
            if (out.length >= batchSize) flush()
          }
        }
      } else if (left.length > 0 && keepLeft) {
        for (let i = 0; i < left.length; i++) {
          out.push([k, [left[i], null]])
          if (out.length >= batchSize) flush()
        }
      } else if (right.length > 0 && keepRight) {
        for (let j = 0; j < right.length; j++) {
          out.push([k, [null, right[j]]])
          if (out.length >= batchSize) flush()
        }
      }
    }
    flush()
    this.groups.clear()
    return n
  }
}
