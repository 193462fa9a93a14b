// Seeded random jobs and their sequential meaning, shared by the property tests and the fault
// campaign. A generator builds random DAGs of narrow and wide nodes (branches, unions, joins of one
// source with itself, wide after wide, several sinks) over small keyed JSONL data, with UDFs that
// mutate the records they are given; `evaluate` is a sequential interpreter written here with plain
// loops. Nothing here imports engine code: the cluster is checked against it.
import type { JobRequest, JobResult, JobStatus, NodeSpec } from '../../src/api/jobs'
import { bag, canon, plainCompare, readJsonParts, seeded, writeJsonl } from './oracle'
import { join } from 'node:path'

export type Pair = [unknown, number]
export type Rng = ReturnType<typeof seeded>

/** Interpreter results above this many records are not generated: they would make slow jobs. */
export const MAX_RECORDS = 20_000

/** Writes the shared sources under DATA/DIR/{a,b}/f*.jsonl and returns their records by name. */
export function writeSources(data: string, dir: string, seed = 2024): Record<string, Pair[]> {
  const r = seeded(seed)
  const sources: Record<string, Pair[]> = { a: [], b: [] }
  // The two sources share some keys and not others, so joins have unmatched keys on both sides.
  const keyOf = (name: string): unknown => {
    const x = r.int(3)
    const shift = name === 'a' ? 0 : 4
    return x === 0 ? shift + r.int(7) : x === 1 ? String(shift + r.int(7)) : ['a', shift / 2 + r.int(3)]
  }
  const files: Record<string, number[]> = { a: [220, 60, 0], b: [120, 25] }
  for (const [name, sizes] of Object.entries(files)) {
    sizes.forEach((n, f) => {
      // skew: a third of the records share one key
      const recs: Pair[] = Array.from({ length: n }, () => [r.chance(0.33) ? 'hot' : keyOf(name), r.int(100)])
      sources[name]!.push(...recs)
      writeJsonl(join(data, dir, name, `f${f}.jsonl`), recs)
    })
  }
  return sources
}

// ---- the operators the generator uses, each with its sequential meaning ------------------------

type Unit = { nodes: (id: string, inputs: string[]) => NodeSpec[]; arity: 1 | 2 | 3; wide: boolean }

const fn = (src: string): ((...xs: unknown[]) => unknown) => (0, eval)(`(${src})`) as (...xs: unknown[]) => unknown

const MAP_VALUES = ['v => v * 3 + 1', 'v => v % 7', 'v => -v']
const FILTERS = ['([k, v]) => v % 3 !== 0', '([k, v]) => typeof k !== "string"', '([k, v]) => v > 20']
const REKEYS = ['([k, v]) => [v % 4, v]', '([k, v]) => [String(k), v]', '([k, v]) => [[k, v % 2], v]']
const FLAT_MAPS = ['([k, v]) => v % 2 ? [[k, v], [k, v + 1]] : []', '([k, v]) => [[k, v]]']
const REDUCERS = ['(a, b) => a + b', '(a, b) => Math.max(a, b)']
const HOWS = ['inner', 'left', 'right', 'full'] as const
// Functions that change the record they are given, in place: a sibling reading the same parent
// must still see the record as the parent produced it, wherever the plan cuts its stages.
const MUTATING_MAPS = ['r => { r[1] = r[1] * 2 + 1; return r }', 'r => { r[0] = typeof r[0] === "string" ? r[0] : JSON.stringify(r[0]); return r }']
const MUTATING_FILTERS = ['r => { r[1] = r[1] + 1; return r[1] % 2 === 0 }']
const MUTATING_FLAT_MAPS = ['r => { const v = r[1]; r[1] = -v; return [r, [r[0], v]] }']

function unitFor(r: Rng, mutate: boolean): Unit {
  const parts = (): Partial<NodeSpec> => r.chance(0.7) ? { partitions: 1 + r.int(6) } : {}
  const pick = r.int(mutate ? 16 : 13)
  switch (pick) {
    case 0: return { arity: 1, wide: false, nodes: (id, [i]) => [{ id, op: 'map_values', input: i!, fn: r.pick(MAP_VALUES) }] }
    case 1: return { arity: 1, wide: false, nodes: (id, [i]) => [{ id, op: 'filter', input: i!, fn: r.pick(FILTERS) }] }
    case 2: return { arity: 1, wide: false, nodes: (id, [i]) => [{ id, op: 'map', input: i!, fn: r.pick(REKEYS) }] }
    case 3: return { arity: 1, wide: false, nodes: (id, [i]) => [{ id, op: 'flat_map', input: i!, fn: r.pick(FLAT_MAPS) }] }
    case 4: return { arity: 1, wide: false, nodes: (id, [i]) => [
      { id: `${id}_kb`, op: 'key_by', input: i!, fn: 'r => r[0]' },
      { id, op: 'map_values', input: `${id}_kb`, fn: 'r => r[1] + 1' }] }
    case 5: return { arity: r.chance(0.5) ? 2 : 3, wide: false, nodes: (id, ins) => [{ id, op: 'union', inputs: ins }] }
    case 6: return { arity: 1, wide: true, nodes: (id, [i]) => [{ id, op: 'reduce_by_key', input: i!, fn: r.pick(REDUCERS), ...parts() }] }
    case 7: return { arity: 1, wide: true, nodes: (id, [i]) => [
      { id: `${id}_g`, op: 'group_by_key', input: i!, ...parts() },
      { id, op: 'map_values', input: `${id}_g`, fn: 'vs => vs.reduce((a, b) => a + b, 0) * 1000 + vs.length' }] }
    case 8: return { arity: 1, wide: true, nodes: (id, [i]) => [{ id, op: 'distinct', input: i!, ...parts() }] }
    case 9: case 10: return { arity: 2, wide: true, nodes: (id, ins) => {
      // Inputs derived from one source share their keys; dropping about half the keys of one side
      // gives the outer joins unmatched keys to keep.
      const side = r.int(3)
      const drop: NodeSpec[] = side < 2 ? [{ id: `${id}_f`, op: 'filter', input: ins[side]!, fn: '([k]) => JSON.stringify(k).length % 2 === 0' }] : []
      const inputs = side < 2 ? ins.map((x, i) => i === side ? `${id}_f` : x) : ins
      return [...drop,
        { id: `${id}_j`, op: 'join', inputs, how: r.pick(HOWS), ...parts() },
        { id, op: 'map_values', input: `${id}_j`, fn: '([l, r]) => (l ?? -1) * 1000 + (r ?? -1)' }]
    } }
    case 13: return { arity: 1, wide: false, nodes: (id, [i]) => [{ id, op: 'map', input: i!, fn: r.pick(MUTATING_MAPS) }] }
    case 14: return { arity: 1, wide: false, nodes: (id, [i]) => [{ id, op: 'filter', input: i!, fn: r.pick(MUTATING_FILTERS) }] }
    case 15: return { arity: 1, wide: false, nodes: (id, [i]) => [{ id, op: 'flat_map', input: i!, fn: r.pick(MUTATING_FLAT_MAPS) }] }
    default: return { arity: 1, wide: true, nodes: (id, [i]) => [{
      id, op: 'sort', input: i!, ...parts(), ...(r.chance(0.4) ? { descending: true } : {}), ...(r.chance(0.4) ? { key: 'r => r[1]' } : {}) }] }
  }
}

// ---- the sequential interpreter -------------------------------------------------------------

function groupPairs(xs: readonly Pair[] | readonly [unknown, unknown][]): Map<string, [unknown, unknown[]]> {
  const m = new Map<string, [unknown, unknown[]]>()
  for (const [k, v] of xs) {
    const g = m.get(canon(k))
    if (g === undefined) m.set(canon(k), [k, [v]])
    else g[1].push(v)
  }
  return m
}

export const sortKey = (n: NodeSpec) => (x: unknown): unknown => n.key !== undefined ? fn(n.key)(x) : (x as unknown[])[0]

export class TooBig extends Error {}

/** Evaluates one node over its inputs' records, as a single process would. Every node is given
 *  its own copy of its inputs: what one consumer does to a record, no other consumer sees. */
export function evaluate(n: NodeSpec, inputs: unknown[][]): unknown[] {
  const ins = inputs.map(xs => structuredClone(xs))
  const xs = ins[0] ?? []
  switch (n.op) {
    case 'map': return xs.map(x => fn(n.fn!)(x))
    case 'filter': return xs.filter(x => fn(n.fn!)(x))
    case 'flat_map': return xs.flatMap(x => [...(fn(n.fn!)(x) as Iterable<unknown>)])
    case 'map_values': return (xs as [unknown, unknown][]).map(([k, v]) => [k, fn(n.fn!)(v)])
    case 'key_by': return xs.map(x => [fn(n.fn!)(x), x])
    case 'union': return ins.flat()
    case 'reduce_by_key': return [...groupPairs(xs as Pair[]).values()].map(([k, vs]) => [k, vs.reduce((a, b) => fn(n.fn!)(a, b))])
    case 'group_by_key': return [...groupPairs(xs as Pair[]).values()]
    case 'distinct': return [...new Map(xs.map(x => [canon(x), x])).values()]
    case 'join': {
      const [l, r] = [groupPairs(ins[0] as Pair[]), groupPairs(ins[1] as Pair[])]
      let size = 0
      for (const [ck, [, ls]] of l) size += ls.length * (r.get(ck)?.[1].length ?? 1)
      if (size > MAX_RECORDS) throw new TooBig()
      const out: unknown[] = []
      for (const [ck, [k, ls]] of l) {
        const rs = r.get(ck)?.[1] ?? []
        if (rs.length > 0) for (const a of ls) for (const b of rs) out.push([k, [a, b]])
        else if (n.how === 'left' || n.how === 'full') for (const a of ls) out.push([k, [a, null]])
      }
      if (n.how === 'right' || n.how === 'full') for (const [ck, [k, rs]] of r) if (!l.has(ck)) for (const b of rs) out.push([k, [null, b]])
      return out
    }
    case 'sort': {
      const key = sortKey(n)
      const sign = n.descending ? -1 : 1
      return [...xs].sort((a, b) => sign * plainCompare(key(a), key(b)))
    }
    default: throw new Error(`the interpreter has no ${n.op}`)
  }
}

export type Case = {
  seed: number
  job: JobRequest
  /** each sink's records, as the interpreter computed them */
  want: Map<string, unknown[]>
  /** collect sinks that read a sort: their values must come in order */
  sortedBy: Map<string, NodeSpec>
}

export type GenerateOptions = {
  /** where the sources live under the data dir (their files: DIR/a/*.jsonl, DIR/b/*.jsonl) */
  sourceDir: string
  sources: Record<string, Pair[]>
  /** where the write sinks write, under the data dir */
  outDir: string
  /** functions that change their argument in place */
  mutate?: boolean
}

/** A random DAG over the sources, with the interpreter's result for each of its sinks. */
export function generate(seed: number, o: GenerateOptions): Case {
  const r = seeded(seed)
  const nodes: NodeSpec[] = []
  const values = new Map<string, unknown[]>()
  const byId = new Map<string, NodeSpec>()
  const add = (n: NodeSpec): void => { nodes.push(n); byId.set(n.id, n); values.set(n.id, evaluate(n, inputsOf(n).map(i => values.get(i)!))) }
  const avail: string[] = []
  for (const name of r.chance(0.5) ? ['a', 'b'] : [r.pick(['a', 'b'])]) {
    const id = `src_${name}`
    nodes.push({ id, op: 'read_jsonl', path: `${o.sourceDir}/${name}` })
    byId.set(id, nodes[nodes.length - 1]!)
    values.set(id, o.sources[name]!)
    avail.push(id)
  }
  const steps = 4 + r.int(7)
  for (let s = 0; s < steps; s++) {
    for (let tries = 0; tries < 10; tries++) {
      const unit = unitFor(r, o.mutate === true)
      // Prefer recent nodes, for deep chains; any node may be read again, for branches.
      const choose = (): string => r.chance(0.6) ? avail[avail.length - 1 - r.int(Math.min(3, avail.length))]! : r.pick(avail)
      const ins = Array.from({ length: unit.arity }, choose)
      const made = unit.nodes(`n${s}`, ins)
      // Keep the data small: try another unit when this one would blow up (a join of hot keys).
      const sizes: number[] = []
      const scratch = new Map(values)
      try {
        for (const n of made) { const v = evaluate(n, inputsOf(n).map(i => scratch.get(i)!)); scratch.set(n.id, v); sizes.push(v.length) }
      } catch (e) {
        if (e instanceof TooBig) continue
        throw e
      }
      if (sizes.some(x => x > MAX_RECORDS)) continue
      for (const n of made) add(n)
      avail.push(`n${s}`)
      break
    }
  }
  // Sinks: every unread node gets one, and some read nodes get one too (a fan-out to a sink).
  const read = new Set(nodes.flatMap(inputsOf))
  const want = new Map<string, unknown[]>()
  const sortedBy = new Map<string, NodeSpec>()
  let k = 0
  for (const id of avail) {
    if (read.has(id) && !r.chance(0.35)) continue
    const sink = `sink${k++}`
    const kind = r.pick(['collect', 'collect', 'count', 'write_jsonl'] as const)
    nodes.push(kind === 'write_jsonl'
      ? { id: sink, op: 'write_jsonl', input: id, path: `${o.outDir}/${sink}`, overwrite: true }
      : { id: sink, op: kind, input: id })
    want.set(sink, values.get(id)!)
    if (byId.get(id)!.op === 'sort' && kind === 'collect') sortedBy.set(sink, byId.get(id)!)
  }
  return { seed, job: { name: `prop-${seed}`, split_bytes: 512, nodes: r.chance(0.5) ? nodes : [...nodes].reverse() }, want, sortedBy }
}

export const inputsOf = (n: NodeSpec): string[] => n.inputs ?? (n.input === undefined ? [] : [n.input])

/** What is wrong with a job's outcome against the interpreter (empty when it is exact). */
export function problemsOf(cs: Case, data: string, status: JobStatus, result: JobResult | null): string[] {
  if (status.state !== 'SUCCEEDED' || result === null) return [`job ${status.state}: ${JSON.stringify(status.error)}`]
  const problems: string[] = []
  for (const [sink, want] of cs.want) {
    const got = result.sinks[sink]
    if (got === undefined) { problems.push(`${sink}: missing from the result`); continue }
    let values: unknown[]
    if (got.op === 'count') {
      if (got.value !== want.length) problems.push(`${sink}: count ${got.value}, want ${want.length}`)
      continue
    } else if (got.op === 'collect') values = got.values
    else values = readJsonParts(join(data, got.path))
    const [g, w] = [bag(values), bag(want)]
    if (g.length !== w.length || g.some((x, i) => x !== w[i])) problems.push(`${sink}: ${g.length} records differ from the ${w.length} wanted`)
    const sort = cs.sortedBy.get(sink)
    if (sort !== undefined) {
      const key = sortKey(sort)
      const sign = sort.descending ? -1 : 1
      for (let i = 1; i < values.length; i++) {
        if (sign * plainCompare(key(values[i - 1]), key(values[i])) > 0) { problems.push(`${sink}: out of order at ${i}`); break }
      }
    }
  }
  return problems
}
