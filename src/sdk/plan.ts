// The SDK's lineage graph and its translation into the contract's JobRequest (CONTRACT section 4).
// Pure: builds JSON, submits nothing. Function sources are made and checked here, so a closure
// over a program variable is refused before the job reaches the master.
import type { JobRequest, NodeSpec, Op } from '../api/jobs'
import { functionSource, type Arity, type Helpers } from './functions'
import type { Params, StorageLevel } from './types'

/**
 * A dataset marked with persist() or cache(), shared by every dataset made from the same node (as
 * a Spark RDD's storage level is). The first job that computes the node keeps it on the workers as
 * a persisted dataset (a persist sink on the node, CONTRACT section 8); from then on `dataset` is
 * set and every job reads it with read_dataset instead of computing the node again.
 */
export type Keep = {
  level: StorageLevel
  /** the dataset's name: the user's, or one the session made when the node was first planned */
  name?: string
  /** the user named it: it outlives the session (an unnamed one goes at session.stop()) */
  named: boolean
  replace?: boolean
  /** set once a job that persisted it succeeded: the name the workers hold it under */
  dataset?: string
  /** a job that persists it is running: other actions wait for it rather than persist it twice */
  pending?: Promise<unknown>
}

/** The fields of a node besides its id, op and inputs. */
export type NodeFields = Omit<NodeSpec, 'id' | 'op' | 'input' | 'inputs' | 'fn' | 'key'>

/** One operation of a dataset's lineage. Datasets share their upstream nodes; only the id changes,
 *  when the user names the node. */
export type PlanNode = {
  readonly op: Op
  readonly inputs: readonly PlanNode[]
  readonly fields: NodeFields
  /** the user's function, turned into source when the job is built */
  readonly fn?: { readonly value: unknown; readonly arity: Arity; readonly field: 'fn' | 'key' }
  /** the SDK method that made this node, for messages */
  readonly method: string
  /** set by .named() or a step's { name }; otherwise made from the op and where the step was
   *  written (see defaultName) */
  id?: string
  /** where the program made this step, "file.ts:12", when the stack says */
  readonly site?: string
  readonly params: Params
  /** functions of the program this node's function (and those after it) may call */
  readonly helpers?: Helpers
  /** persist() / cache(): kept on the workers by the first job that computes it */
  keep?: Keep
}

export class PlanError extends Error {
  override readonly name = 'PlanError'
}

export type JobOptions = {
  name?: string; maxTaskAttempts?: number; partitions?: number
  /** the name of an unnamed kept dataset, from its node's id (the session makes it unique) */
  datasetName?: (nodeId: string) => string
}

/** A persist sink the job adds for a kept node it computes. */
export type Persisting = { keep: Keep; name: string }

/**
 * The JobRequest that computes `sink` (a sink node) and everything upstream of it. A kept node
 * already persisted is read with read_dataset (its lineage is not planned); one not yet persisted
 * gets a persist sink beside its other consumers, listed in `persisting`.
 */
export function buildJob(sink: PlanNode, o: JobOptions = {}): { job: JobRequest; ids: Map<PlanNode, string>; persisting: Persisting[] } {
  const reached = topoOrder([sink])
  const ids0 = assignIds(reached)
  const persisting: Persisting[] = []
  const extra: PlanNode[] = []
  for (const n of reached) {
    const k = n.keep
    if (k === undefined || k.dataset !== undefined) continue
    k.name ??= (o.datasetName ?? defaultDatasetName)(ids0.get(n)!)
    persisting.push({ keep: k, name: k.name })
    extra.push({
      op: 'persist', method: 'persist', inputs: [n], params: {},
      fields: { name: k.name, ...(k.level === 'memory_and_disk' ? {} : { level: k.level }), ...(k.replace ? { replace: true } : {}) },
    })
  }
  const order = extra.length === 0 ? reached : topoOrder([sink, ...extra])
  const ids = extra.length === 0 ? ids0 : assignIds(order)
  const params = mergeParams(order, ids)
  const nodes: NodeSpec[] = order.map(n => {
    const id = ids.get(n)!
    const read = readsKept(n)
    if (read !== undefined) return { id, op: 'read_dataset', name: read }
    const spec: NodeSpec = { id, op: n.op, ...n.fields }
    if (n.inputs.length === 1 && n.op !== 'union') spec.input = ids.get(n.inputs[0]!)!
    else if (n.inputs.length > 0) spec.inputs = n.inputs.map(i => ids.get(i)!)
    if (n.fn !== undefined) spec[n.fn.field] = functionSource(n.fn.value, n.fn.arity, `${n.method} (node "${id}")`, n.helpers)
    return spec
  })
  const last = sink.inputs[0]
  const job: JobRequest = {
    name: o.name ?? `${last === undefined ? '' : `${ids.get(last)} → `}${sink.op}`,
    nodes,
  }
  if (Object.keys(params).length > 0) job.params = params
  if (o.maxTaskAttempts !== undefined) job.max_task_attempts = o.maxTaskAttempts
  if (o.partitions !== undefined) job.partitions = o.partitions
  return { job, ids, persisting }
}

/** The dataset a node is read from instead of computed: a kept node a job has persisted. */
const readsKept = (n: PlanNode): string | undefined => n.op === 'read_dataset' ? undefined : n.keep?.dataset

/** The kept nodes upstream of `sink`, as far as a job would plan them (not behind a persisted one). */
export function keptUpstream(sink: PlanNode): PlanNode[] {
  return topoOrder([sink]).filter(n => n.keep !== undefined)
}

/** A dataset name (letters, digits, _ . -, at most 128) made from a node id, when no session makes one. */
export const defaultDatasetName = (nodeId: string): string => {
  const s = nodeId.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100)
  return s === '' ? 'dataset' : s
}

/** Every node upstream of the sinks, each once, inputs before their consumers; a persisted kept
 *  node ends the walk (the job reads it). */
function topoOrder(sinks: readonly PlanNode[]): PlanNode[] {
  const order: PlanNode[] = []
  const done = new Set<PlanNode>()
  // Iterative post-order: lineages of thousands of narrow steps must not overflow the stack.
  const stack: { node: PlanNode; next: number }[] = sinks.map(node => ({ node, next: 0 })).reverse()
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    if (done.has(top.node)) { stack.pop(); continue }
    const input = readsKept(top.node) === undefined ? top.node.inputs[top.next++] : undefined
    if (input !== undefined) { if (!done.has(input)) stack.push({ node: input, next: 0 }); continue }
    stack.pop()
    done.add(top.node)
    order.push(top.node)
  }
  return order
}

/** A node id names a step in the web UI, the status and errors; the master takes 1 to 128 characters. */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw new TypeError('a step\'s name is a string of 1 to 128 characters')
  return name
}

/**
 * The id of a node the program did not name: what it reads for a source (`read_text:books/*.txt`),
 * the name of a named function (`flat_map:tokensOf`), else the op and where the step was written
 * (`map@wordcount.ts:14`), as Spark calls an RDD "map at WordCount.scala:14".
 */
function defaultName(n: PlanNode): string {
  const path = n.fields.path
  if (n.inputs.length === 0 && typeof path === 'string') return `${n.op}:${path.length > 100 ? `${path.slice(0, 99)}…` : path}`
  // read_dataset and persist: by the dataset's name
  if ((n.op === 'read_dataset' || n.op === 'persist') && typeof n.fields.name === 'string') return `${n.op}:${n.fields.name}`
  const fnName = n.fn !== undefined && typeof n.fn.value === 'function' ? n.fn.value.name : ''
  if (/^[A-Za-z_$][\w$]*$/.test(fnName)) return `${n.op}:${fnName}`
  return n.site === undefined ? n.op : `${n.op}@${n.site}`
}

/** Named nodes keep their names; the others get a default name, numbered (#2...) when it repeats. */
function assignIds(order: readonly PlanNode[]): Map<PlanNode, string> {
  const ids = new Map<PlanNode, string>()
  const taken = new Set<string>()
  for (const n of order) {
    if (n.id === undefined) continue
    if (taken.has(n.id)) throw new PlanError(`two steps are named "${n.id}": give each named step its own name`)
    taken.add(n.id)
    ids.set(n, n.id)
  }
  const seen = new Map<string, number>()
  for (const n of order) {
    if (ids.has(n)) continue
    const base = defaultName(n)
    let k = seen.get(base) ?? 0
    let id: string
    do { k++; id = k === 1 ? base : `${base}#${k}` } while (taken.has(id))
    seen.set(base, k)
    taken.add(id)
    ids.set(n, id)
  }
  return ids
}

/** The job's params: the union of every node's; one name with two different values is an error. */
function mergeParams(order: readonly PlanNode[], ids: ReadonlyMap<PlanNode, string>): Params {
  const out: Params = {}
  const from = new Map<string, string>()
  for (const n of order) {
    for (const [k, v] of Object.entries(n.params)) {
      if (k in out && JSON.stringify(out[k]) !== JSON.stringify(v)) {
        throw new PlanError(`params.${k} has two values in one job (at nodes "${from.get(k)}" and "${ids.get(n)}"): give one name one value`)
      }
      if (!(k in out)) {
        checkJson(k, v)
        out[k] = v
        from.set(k, ids.get(n)!)
      }
    }
  }
  return out
}

function checkJson(name: string, v: unknown): void {
  let text: string | undefined
  try { text = JSON.stringify(v) } catch (e) { throw new PlanError(`params.${name} cannot be sent as JSON: ${(e as Error).message}`) }
  if (text === undefined) throw new PlanError(`params.${name} is ${typeof v}, which JSON cannot carry: pass a JSON value`)
  if (typeof v === 'function') throw new PlanError(`params.${name} is a function: params carry JSON values only`)
}
