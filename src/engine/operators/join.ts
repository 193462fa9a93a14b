// join, reduce side, in memory: a classic hash join. One input (the build side, the smaller one)
// is held grouped by key; the other (the probe side) streams past it batch by batch, and each
// probe batch's joined records go downstream at once, so the larger input is never held.
// One output per matching pair, `[key, [left, right]]`, `null` for the missing side of an outer
// join; build-side keys no probe record matched come out at the end (left/right/full).
// Pure and unbounded: it does not account memory or spill (spill/join.ts decides when the build
// side is too large for this and falls back to a sort-merge join).
import type { NodeSpec } from '../../api/jobs'
import { KeyMap } from '../keys'
import type { Consumer } from '../pipeline'
import { isPair, notAPair } from '../records'
import { estimateBytes, tableEntryBytes } from '../spill/budget'

export type JoinHow = 'inner' | 'left' | 'right' | 'full'

/** The build side's values of one key; `matched` once a probe record met them. */
export type BuildGroup = { values: unknown[]; matched: boolean }

export class HashJoin {
  private table = new KeyMap<BuildGroup>()
  /** keep probe records with no match (left join probing the left side, and so on) */
  private readonly keepUnmatchedProbe: boolean
  /** keep build groups no probe record matched */
  private readonly keepUnmatchedBuild: boolean

  /** `buildSide`: 0 when the left input is held, 1 when the right one is. */
  constructor(private readonly node: NodeSpec, readonly buildSide: 0 | 1, private readonly batchSize: number) {
    const how: JoinHow = node.how ?? 'inner'
    const keepLeft = how === 'left' || how === 'full'
    const keepRight = how === 'right' || how === 'full'
    this.keepUnmatchedProbe = buildSide === 1 ? keepLeft : keepRight
    this.keepUnmatchedBuild = buildSide === 1 ? keepRight : keepLeft
  }

  /** Holds a batch of the build side. Returns what the table holds beyond the records for the
   *  keys new in it: each key's entry in the table (tableEntryBytes: a string key's atom and
   *  property, a composite key's canonical string), once per key, which an estimate of the records
   *  alone does not see. */
  build(batch: unknown[]): number {
    const table = this.table
    let keyExtra = 0
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(this.node.id, 'join', r)
      const k = r[0]
      const g = table.get(k)
      if (g === undefined) {
        table.set(k, { values: [r[1]], matched: false })
        keyExtra += tableEntryBytes(k) - estimateBytes(k)
      } else g.values.push(r[1])
    }
    return keyExtra
  }

  /** Joins a batch of the probe side with everything built, and pushes the result downstream. */
  probe(batch: unknown[], next: Consumer): void {
    const table = this.table
    const buildLeft = this.buildSide === 0
    let out: unknown[] = []
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(this.node.id, 'join', r)
      const k = r[0]
      const v = r[1]
      const g = table.get(k)
      if (g !== undefined) {
        g.matched = true
        const vs = g.values
        for (let j = 0; j < vs.length; j++) {
          out.push(buildLeft ? [k, [vs[j], v]] : [k, [v, vs[j]]])
          if (out.length >= this.batchSize) { next.push(out); out = [] }
        }
      } else if (this.keepUnmatchedProbe) {
        out.push(buildLeft ? [k, [null, v]] : [k, [v, null]])
        if (out.length >= this.batchSize) { next.push(out); out = [] }
      }
    }
    if (out.length > 0) next.push(out)
  }

  /** After the last probe batch: the build groups nobody matched, for an outer join; forgets the table. */
  finish(next: Consumer): void {
    if (this.keepUnmatchedBuild) {
      const buildLeft = this.buildSide === 0
      let out: unknown[] = []
      for (const [k, g] of this.table.entries()) {
        if (g.matched) continue
        for (const v of g.values) {
          out.push(buildLeft ? [k, [v, null]] : [k, [null, v]])
          if (out.length >= this.batchSize) { next.push(out); out = [] }
        }
      }
      if (out.length > 0) next.push(out)
    }
    this.table = new KeyMap()
  }

  /** Hands over the held groups one by one (to the spilling fallback), forgetting each as it
   *  goes so that its memory can be collected once the taker has spilled it. */
  *drain(): Generator<[unknown, unknown[]]> {
    const table = this.table
    this.table = new KeyMap()
    for (const [k, g] of table.entries()) {
      table.delete(k)
      yield [k, g.values]
    }
  }
}
