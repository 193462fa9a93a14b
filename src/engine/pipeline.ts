// Builds a stage's operator tree: narrow operators over record batches, fanned out to the stage's
// shuffle writes and sinks. Pure: the worker supplies the consumers that do I/O.
// A union is no operator at all: each of its inputs pushes straight into the union's consumers
// (once per time it is listed in `inputs`, so union(a, a) gives every record of a twice). Inputs of
// a union planned in other stages never push here: there, the union runs on their records.
// Per-record loops are plain `for` loops over a batch with no closure per record; a UDF is
// compiled once per task.
import type { NodeSpec } from '../api/jobs'
import type { ShuffleWrite, StagePlan } from '../api/tasks'
import { compileUdf, type Udf } from './udf'
import { UdfError, isPair, notAPair, udfError } from './records'
import type { HashJoin } from './operators/join'
import { BUILTIN_NARROW_OPS, builtinOperator, takesRegions, takesTokens } from './builtins/operators'

export interface Consumer { push(batch: unknown[]): void }

export type StageOutputs = {
  shuffle(write: ShuffleWrite): Consumer
  sink(node: NodeSpec): Consumer
  /** a broadcast join with its small side built (the stage's `broadcasts`) */
  broadcast?(nodeId: string): HashJoin
}

/** Returns the consumer that receives the root's records (the source's lines, or the reduce side's output). */
export function buildStagePipeline(stage: StagePlan, params: Readonly<Record<string, unknown>>, out: StageOutputs): Consumer {
  const built = new Map<string, Consumer>()
  // Build from the leaves up, so each node gets its downstream consumers at construction.
  for (let i = stage.nodes.length - 1; i >= 0; i--) {
    const node = stage.nodes[i]!
    if (isStageSink(node.op)) {
      built.set(node.id, out.sink(node))
    } else if (node.op === 'union') {
      built.set(node.id, downstream(node.id, stage, built, out))
    } else if (node.op === 'join') {
      built.set(node.id, broadcastJoin(node, stage, out, downstream(node.id, stage, built, out)))
    } else if (BUILTIN_NARROW_OPS.has(node.op)) {
      built.set(node.id, builtinOperator(node, downstream(node.id, stage, built, out)))
    } else {
      built.set(node.id, narrowOperator(node, params, downstream(node.id, stage, built, out)))
    }
  }
  return downstream(stage.root.node.id, stage, built, out)
}

function downstream(id: string, stage: StagePlan, built: ReadonlyMap<string, Consumer>, out: StageOutputs): Consumer {
  // A node this stage computes for its cache write feeds that write alone: its consumers are
  // planned after the stage that reads the kept blocks (a union listed here for another of its
  // inputs would otherwise get this one's records twice, here and there).
  const cache = stage.shuffle_writes.find(w => w.from === id && w.cache !== undefined && w.persist === undefined)
  if (cache !== undefined) return out.shuffle(cache)
  const next: Consumer[] = []
  for (const n of stage.nodes) {
    if (n.input === id) next.push(built.get(n.id)!)
    else if (n.inputs !== undefined) for (const i of n.inputs) if (i === id) next.push(built.get(n.id)!)
  }
  for (const w of stage.shuffle_writes) if (w.from === id) next.push(out.shuffle(w))
  return fanOut(next)
}

/** The sinks of the contract, and `sample`, the internal sink of a sort's sample stage. */
export const isStageSink = (op: string): boolean =>
  op === 'write_text' || op === 'write_jsonl' || op === 'collect' || op === 'count' || op === 'sample'

const NOTHING: Consumer = { push() {} }

// Consumers must not mutate a batch they are given (the array): a fanned-out batch is shared.
// Its records are not: a function may mutate its record, and a consumer may keep records
// (collect, a shuffle buffer), so every consumer but the last gets its own deep copy of each
// object record, and what a branch sees never depends on its siblings nor on whether the plan
// put a shuffle between them (where every consumer decodes its own copy). Strings, numbers and
// the other primitives are shared as they are.
// Bytes (regions of lines, a word's bytes: see builtins/operators.ts) are only read, so every
// consumer gets the same ones; the fan-out passes them on only when all its consumers take them.
function fanOut(next: Consumer[]): Consumer {
  if (next.length === 0) return NOTHING
  if (next.length === 1) return next[0]!
  const last = next.length - 1
  const c: Consumer & { pushRegion?(r: Uint8Array): void; pushToken?(b: Uint8Array, s: number, e: number): void } = {
    push(batch) { for (let i = 0; i < last; i++) next[i]!.push(copyBatch(batch)); next[last]!.push(batch) },
  }
  if (next.every(takesRegions)) c.pushRegion = region => { for (const n of next) (n as typeof c).pushRegion!(region) }
  if (next.every(takesTokens)) c.pushToken = (b, s, e) => { for (const n of next) (n as typeof c).pushToken!(b, s, e) }
  return c
}

/** The batch with each object record deep-copied; the batch itself when it holds none. */
export function copyBatch(batch: unknown[]): unknown[] {
  let out: unknown[] | null = null
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i]
    if (typeof r === 'object' && r !== null) {
      out ??= batch.slice()
      out[i] = copyRecord(r)
    }
  }
  return out ?? batch
}

function copyRecord(r: object): unknown {
  try {
    return copyJson(r)
  } catch {
    // Nested past the stack, or a cycle: the platform's copy handles both.
    try { return structuredClone(r) } catch { return r }
  }
}

// Records are JSON-like, so plain arrays and objects are copied by hand (several times faster
// than structuredClone on small records); anything else (a Map, a Date) by structuredClone.
function copyJson(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length)
    for (let i = 0; i < v.length; i++) out[i] = copyJson(v[i])
    return out
  }
  const proto = Object.getPrototypeOf(v) as unknown
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = proto === null ? Object.create(null) as Record<string, unknown> : {}
    for (const k of Object.keys(v)) {
      const value = copyJson((v as Record<string, unknown>)[k])
      // JSON.parse makes "__proto__" an own key; assigning it would set the prototype instead.
      if (k === '__proto__') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true })
      else out[k] = value
    }
    return out
  }
  return structuredClone(v)
}

function narrowOperator(node: NodeSpec, params: Readonly<Record<string, unknown>>, next: Consumer): Consumer {
  const fn = compileFor(node, params)
  switch (node.op) {
    case 'map': return { push(batch) { next.push(mapBatch(node.id, fn, batch)) } }
    case 'filter': return { push(batch) { next.push(filterBatch(node.id, fn, batch)) } }
    case 'flat_map': return { push(batch) { flatMapBatches(node.id, fn, batch, next) } }
    case 'map_values': return { push(batch) { next.push(mapValuesBatch(node.id, fn, batch)) } }
    case 'key_by': return { push(batch) { next.push(keyByBatch(node.id, fn, batch)) } }
    default: throw new Error(`op ${node.op} is not a narrow operator`)
  }
}

/** A join in a map-side stage: its small side was built into a hash join beforehand, and this
 *  stage's records, the other side, are probed past it (HashJoin keeps the unmatched ones of a
 *  left or right join). */
function broadcastJoin(node: NodeSpec, stage: StagePlan, out: StageOutputs, next: Consumer): Consumer {
  const built = stage.broadcasts?.some(b => b.node_id === node.id) === true ? out.broadcast?.(node.id) : undefined
  if (built === undefined) throw new Error(`join "${node.id}" runs in stage ${stage.stage_id} with no broadcast input`)
  return { push(batch) { built.probe(batch, next) } }
}

function compileFor(node: NodeSpec, params: Readonly<Record<string, unknown>>): Udf {
  try {
    return compileUdf(node.fn ?? '', params)
  } catch (e) {
    throw new UdfError(node.id, `fn of node "${node.id}" cannot be compiled: ${(e as Error).message}`, '')
  }
}

function mapBatch(id: string, fn: Udf, batch: unknown[]): unknown[] {
  const out = new Array<unknown>(batch.length)
  let i = 0
  try {
    for (; i < batch.length; i++) out[i] = fn(batch[i])
  } catch (e) { throw udfError(id, e, batch[i]) }
  return out
}

function filterBatch(id: string, fn: Udf, batch: unknown[]): unknown[] {
  const out: unknown[] = []
  let i = 0
  try {
    for (; i < batch.length; i++) if (fn(batch[i])) out.push(batch[i])
  } catch (e) { throw udfError(id, e, batch[i]) }
  return out
}

/** The most records a flat_map hands on in one batch. Its output is otherwise as large as the UDF
 *  makes it: a line made into 24 records, a batch of lines into a quarter-million strings held at
 *  once, per task thread, and more once a consumer reads them (a concatenated string is flattened
 *  into a copy of its own when encoded): a cache write of such records passed its memory bound. */
export const FLAT_MAP_BATCH = 4096

function flatMapBatches(id: string, fn: Udf, batch: unknown[], next: Consumer): void {
  let out: unknown[] = []
  for (let i = 0; i < batch.length; i++) {
    // The UDF's errors (its call, or its iterable's) name its node and record; a consumer's do not.
    try {
      const r = fn(batch[i])
      if (Array.isArray(r)) {
        for (let j = 0; j < r.length; j++) out.push(r[j])
      } else if (r !== null && typeof r === 'object' && Symbol.iterator in r) {
        for (const x of r as Iterable<unknown>) out.push(x)
      } else {
        throw new TypeError(`flat_map must return an array or another iterable, but returned ${r === null ? 'null' : typeof r}`)
      }
    } catch (e) { throw udfError(id, e, batch[i]) }
    if (out.length >= FLAT_MAP_BATCH) {
      next.push(out)
      out = []
    }
  }
  if (out.length > 0) next.push(out)
}

function mapValuesBatch(id: string, fn: Udf, batch: unknown[]): unknown[] {
  const out = new Array<unknown>(batch.length)
  let i = 0
  try {
    for (; i < batch.length; i++) {
      const r = batch[i]
      if (!isPair(r)) throw notAPair(id, 'map_values', r)
      out[i] = [r[0], fn(r[1])]
    }
  } catch (e) { throw udfError(id, e, batch[i]) }
  return out
}

function keyByBatch(id: string, fn: Udf, batch: unknown[]): unknown[] {
  const out = new Array<unknown>(batch.length)
  let i = 0
  try {
    for (; i < batch.length; i++) out[i] = [fn(batch[i]), batch[i]]
  } catch (e) { throw udfError(id, e, batch[i]) }
  return out
}
