// Validates a JobRequest as a DAG and orders it (Kahn). Pure: no I/O, so every rule is unit-tested.
// It does not look at files: input listing and output checks happen on a worker (listing.ts).
import { posix } from 'node:path'
import { ApiError } from '../api/error-codes'
import type { JobRequest, NodeSpec } from '../api/jobs'
import { OPS, type Op } from '../api/ops'
import { checkFunctionSource } from './udf'
import { checkFunctionScope } from './udf-scope'
import { checkBuiltin } from './builtins/check'

export const SOURCE_OPS: ReadonlySet<Op> = new Set(['read_text', 'read_jsonl', 'read_csv', 'read_dataset'])
export const SINK_OPS: ReadonlySet<Op> = new Set(['write_text', 'write_jsonl', 'collect', 'count', 'persist'])
export const WIDE_OPS: ReadonlySet<Op> = new Set(['reduce_by_key', 'group_by_key', 'join', 'distinct', 'sort', 'count_by_value', 'agg_by_key'])
const MULTI_INPUT_OPS: ReadonlySet<Op> = new Set(['union', 'join'])
const FN_OPS: ReadonlySet<Op> = new Set(['map', 'flat_map', 'filter', 'map_values', 'key_by', 'reduce_by_key'])
const PATH_OPS: ReadonlySet<Op> = new Set(['read_text', 'read_jsonl', 'read_csv', 'write_text', 'write_jsonl'])

export type ValidJob = {
  nodes: ReadonlyMap<string, NodeSpec>
  /** node ids, every node after its inputs */
  order: readonly string[]
  inputsOf: ReadonlyMap<string, readonly string[]>
  consumersOf: ReadonlyMap<string, readonly string[]>
}

export const isOp = (op: string): op is Op => (OPS as readonly string[]).includes(op)
export const inputsOfNode = (n: NodeSpec): string[] => n.inputs ?? (n.input === undefined ? [] : [n.input])

/** Validates everything that can be known without files; throws ApiError (a 400) naming what to fix. */
export function validateJob(req: JobRequest, supported: ReadonlySet<Op> = new Set(OPS)): ValidJob {
  const nodes = new Map<string, NodeSpec>()
  for (const n of req.nodes) {
    if (nodes.has(n.id)) throw new ApiError('INVALID_JOB', `two nodes have the id "${n.id}": node ids must be unique`, { node_id: n.id })
    nodes.set(n.id, n)
  }
  const inputsOf = new Map<string, string[]>()
  const consumersOf = new Map<string, string[]>([...nodes.keys()].map(id => [id, []]))
  for (const n of nodes.values()) {
    checkNodeFields(n, supported)
    const inputs = inputsOfNode(n)
    for (const i of inputs) {
      if (!nodes.has(i)) {
        throw new ApiError('DANGLING_INPUT', `node "${n.id}" reads from "${i}", which is not a node of this job: fix the input or add the node`, { node_id: n.id, input: i })
      }
      consumersOf.get(i)?.push(n.id)
    }
    inputsOf.set(n.id, inputs)
  }
  const order = topoSort([...nodes.keys()], inputsOf, consumersOf)
  let sinks = 0
  for (const n of nodes.values()) {
    const consumers = consumersOf.get(n.id) ?? []
    if (SINK_OPS.has(n.op as Op)) {
      sinks++
      if (consumers.length > 0) {
        throw new ApiError('INVALID_JOB', `sink "${n.id}" (${n.op}) is read by ${consumers.map(c => `"${c}"`).join(', ')}: a sink cannot have consumers`, { node_id: n.id })
      }
    } else if (consumers.length === 0) {
      throw new ApiError('INVALID_JOB', `node "${n.id}" is not used by any node: connect it to a sink (write_text, collect, count...) or remove it`, { node_id: n.id })
    }
  }
  if (sinks === 0) throw new ApiError('INVALID_JOB', 'the job has no sink: add a write_text, write_jsonl, collect or count node')
  checkOutputsApart([...nodes.values()])
  return { nodes, order, inputsOf, consumersOf }
}

function checkNodeFields(n: NodeSpec, supported: ReadonlySet<Op>): void {
  const where = `node "${n.id}"`
  if (!isOp(n.op)) {
    throw new ApiError('UNKNOWN_OP', `${where} has unknown op "${n.op}": use one of ${OPS.join(', ')}`, { node_id: n.id })
  }
  const op = n.op
  if (!supported.has(op)) {
    throw new ApiError('UNSUPPORTED_OP', `${where}: op "${op}" is not available in this version of Mini-Spark`, { node_id: n.id })
  }
  if (n.input !== undefined && n.inputs !== undefined) {
    throw new ApiError('INVALID_JOB', `${where} has both "input" and "inputs": give one`, { node_id: n.id })
  }
  const count = inputsOfNode(n).length
  if (SOURCE_OPS.has(op) && count > 0) {
    throw new ApiError('INVALID_JOB', `${where} is a source (${op}) and takes no input: remove "input"`, { node_id: n.id })
  }
  if (!SOURCE_OPS.has(op)) {
    if (count === 0) throw new ApiError('INVALID_JOB', `${where} (${op}) needs an input: add "input": "<node id>"`, { node_id: n.id })
    if (op === 'join' && count !== 2) {
      throw new ApiError('INVALID_JOB', `${where} is a join and needs "inputs": [left, right], exactly two`, { node_id: n.id })
    }
    if (!MULTI_INPUT_OPS.has(op) && count !== 1) {
      throw new ApiError('INVALID_JOB', `${where} (${op}) takes one input: use "input", not "inputs"`, { node_id: n.id })
    }
  }
  if (FN_OPS.has(op)) {
    if (n.fn === undefined) throw new ApiError('INVALID_JOB', `${where} (${op}) needs "fn": the source of a function expression`, { node_id: n.id })
  }
  if (op === 'sort' && n.fn !== undefined && n.key === undefined) {
    throw new ApiError('INVALID_JOB', `${where} is a sort: give its key function as "key", not "fn"`, { node_id: n.id })
  }
  if (op === 'read_csv' && n.delimiter !== undefined && /^["\r\n]$/.test(n.delimiter)) {
    throw new ApiError('INVALID_JOB', `${where}: ${JSON.stringify(n.delimiter)} cannot be a CSV delimiter: use one character other than a quote or a line break`, { node_id: n.id })
  }
  for (const [field, src] of [['fn', n.fn], ['key', n.key]] as const) {
    if (src === undefined) continue
    const problem = checkFunctionScope(src) ?? checkFunctionSource(src)
    if (problem !== null) throw new ApiError('BAD_FUNCTION', `${where}, field "${field}": ${problem}`, { node_id: n.id })
  }
  const builtin = checkBuiltin(n)
  if (builtin !== null) throw new ApiError('INVALID_JOB', `${where} (${op}): ${builtin}`, { node_id: n.id })
  // allow_empty is a source's field (read here whether or not the schema lists it yet).
  const allowEmpty = (n as { allow_empty?: unknown }).allow_empty
  if (allowEmpty !== undefined && (!SOURCE_OPS.has(op) || typeof allowEmpty !== 'boolean')) {
    throw new ApiError('INVALID_JOB', `${where}: "allow_empty" is a true/false field of a source (read_text, read_jsonl, read_csv): remove it from this ${op}`, { node_id: n.id })
  }
  if (PATH_OPS.has(op)) {
    if (n.path === undefined) throw new ApiError('INVALID_JOB', `${where} (${op}) needs "path", relative to the data dir`, { node_id: n.id })
    checkDataPath(n.id, n.path)
  }
}

const WRITE_OPS: ReadonlySet<string> = new Set(['write_text', 'write_jsonl'])
const GLOB_CHARS = /[*?[{]/

/**
 * Clearing or writing an output destroys what is under it, and a job reading what it writes reads
 * a moving target: so no output may be the data dir itself, two outputs may not overlap (the same
 * folder, or one inside the other), and no output may overlap what an input can read. Lexical, on
 * normalized paths; the workers check the same on real paths (symlinks) when they list.
 */
function checkOutputsApart(nodes: readonly NodeSpec[]): void {
  const outputs = nodes.filter(n => WRITE_OPS.has(n.op) && n.path !== undefined).map(n => ({ id: n.id, path: trimSlash(posix.normalize(n.path!)) }))
  for (const o of outputs) {
    if (o.path === '.') {
      throw new ApiError('OUTPUT_CONFLICT', `node "${o.id}" writes to the data dir itself ("." after normalizing): give it a folder of its own, such as "out/${o.id}"`, { node_id: o.id })
    }
  }
  for (let i = 0; i < outputs.length; i++) {
    for (let j = i + 1; j < outputs.length; j++) {
      const a = outputs[i]!, b = outputs[j]!
      if (a.path === b.path || within(a.path, b.path) || within(b.path, a.path)) {
        const how = a.path === b.path ? `both write "${a.path}"` : `write "${a.path}" and "${b.path}", one inside the other`
        throw new ApiError('OUTPUT_CONFLICT', `nodes "${a.id}" and "${b.id}" ${how}: give each sink a folder of its own, neither inside the other`, { node_id: a.id, other_node_id: b.id })
      }
    }
  }
  for (const input of nodes.filter(n => SOURCE_OPS.has(n.op as Op) && n.path !== undefined)) {
    for (const o of outputs) {
      if (mayOverlap(input.path!, o.path)) {
        throw new ApiError('OUTPUT_CONFLICT', `node "${o.id}" writes "${o.path}", which overlaps what node "${input.id}" reads ("${input.path}"): write outside the job's inputs`, { node_id: input.id, other_node_id: o.id })
      }
    }
  }
}

/** Whether `inner` lies strictly inside `outer` (normalized relative paths; "." is the data dir). */
export const within = (inner: string, outer: string): boolean =>
  outer === '.' ? inner !== '.' : inner.startsWith(outer + '/')

const trimSlash = (p: string): string => p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p

/** Whether an input (a path or a glob) could read the output folder or anything in it, or the
 *  output contains what the input names. A glob is compared segment by segment: `**` reaches any
 *  depth; a pattern with braces (whose alternatives may hold "/") by its literal prefix folder. */
export function mayOverlap(input: string, output: string): boolean {
  const inPath = trimSlash(posix.normalize(input))
  if (!GLOB_CHARS.test(inPath)) return inPath === output || within(inPath, output) || within(output, inPath)
  const prefix = literalPrefix(inPath)
  if (prefix === output || within(prefix, output)) return true
  if (inPath.includes('{')) return within(output, prefix)
  const pattern = inPath.split('/')
  const segments = output.split('/')
  for (let i = 0; i < segments.length; i++) {
    const g = pattern[i]
    if (g === undefined) return false
    if (g === '**') return true
    if (!(GLOB_CHARS.test(g) ? new Bun.Glob(g).match(segments[i]!) : g === segments[i])) return false
  }
  return true
}

/** The folder of a glob before its first segment with a glob character ("." if the first). */
export function literalPrefix(glob: string): string {
  const segments = glob.split('/')
  const first = segments.findIndex(s => GLOB_CHARS.test(s))
  return first <= 0 ? '.' : segments.slice(0, first).join('/')
}

/** Paths are relative to each worker's --data-dir and may not leave it. Workers check symlinks. */
export function checkDataPath(nodeId: string, path: string): string {
  if (path === '') throw new ApiError('INVALID_JOB', `node "${nodeId}": "path" is empty: give a path relative to --data-dir`, { node_id: nodeId })
  const normal = posix.normalize(path)
  if (posix.isAbsolute(path) || normal === '..' || normal.startsWith('../') || path.includes('\0')) {
    throw new ApiError('PATH_OUTSIDE_DATA_DIR', `node "${nodeId}": path "${path}" leaves the data dir: give a path relative to --data-dir, without ".." above it`, { node_id: nodeId, path })
  }
  return normal
}

/** Kahn's algorithm; ties keep the request's order so plans are stable. Throws DAG_CYCLE naming a cycle. */
export function topoSort(ids: readonly string[], inputsOf: ReadonlyMap<string, readonly string[]>, consumersOf: ReadonlyMap<string, readonly string[]>): string[] {
  const indegree = new Map(ids.map(id => [id, inputsOf.get(id)?.length ?? 0]))
  const ready = ids.filter(id => indegree.get(id) === 0)
  const order: string[] = []
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i]!
    order.push(id)
    for (const c of consumersOf.get(id) ?? []) {
      const d = (indegree.get(c) ?? 0) - 1
      indegree.set(c, d)
      if (d === 0) ready.push(c)
    }
  }
  if (order.length < ids.length) {
    const cycle = findCycle(ids.filter(id => (indegree.get(id) ?? 0) > 0), inputsOf)
    throw new ApiError('DAG_CYCLE', `the nodes form a cycle ${cycle.join(' → ')}: remove one of these edges`, { nodes: cycle })
  }
  return order
}

// Every node left by Kahn has an input that is also left, so walking inputs must revisit a node.
function findCycle(left: readonly string[], inputsOf: ReadonlyMap<string, readonly string[]>): string[] {
  const leftSet = new Set(left)
  const path: string[] = []
  const seenAt = new Map<string, number>()
  let at = left[0]!
  while (!seenAt.has(at)) {
    seenAt.set(at, path.length)
    path.push(at)
    at = (inputsOf.get(at) ?? []).find(i => leftSet.has(i))!
  }
  // path holds the walk against the edges; reverse it so the message follows the data flow.
  return [...path.slice(seenAt.get(at)!), at].reverse()
}
