// The SDK's lineage graph and its translation into the contract's JobRequest (CONTRACT section 4).
// Pure: builds JSON, submits nothing. Function sources are made and checked here, so a closure
// over a program variable is refused before the job reaches the master.
import type { JobRequest, NodeSpec, Op } from '../api/jobs'
import { functionSource, type Arity, type Helpers } from './functions'
import type { Params } from './types'

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
}

export class PlanError extends Error {
  override readonly name = 'PlanError'
}

export type JobOptions = { name?: string; maxTaskAttempts?: number; partitions?: number }

/** The JobRequest that computes `sink` (a sink node) and everything upstream of it. */
export function buildJob(sink: PlanNode, o: JobOptions = {}): { job: JobRequest; ids: Map<PlanNode, string> } {
  const order = topoOrder(sink)
  const ids = assignIds(order)
  const params = mergeParams(order, ids)
  const nodes: NodeSpec[] = order.map(n => {
    const id = ids.get(n)!
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
  return { job, ids }
}

/** Every node upstream of `sink`, each once, inputs before their consumers. */
function topoOrder(sink: PlanNode): PlanNode[] {
  const order: PlanNode[] = []
  const done = new Set<PlanNode>()
  // Iterative post-order: lineages of thousands of narrow steps must not overflow the stack.
  const stack: { node: PlanNode; next: number }[] = [{ node: sink, next: 0 }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    if (done.has(top.node)) { stack.pop(); continue }
    const input = top.node.inputs[top.next++]
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
