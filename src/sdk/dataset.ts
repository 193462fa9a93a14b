// The one runtime class behind Dataset and KeyedDataset (types.ts): each call returns a new
// dataset over a new lineage node; actions build the JobRequest and hand it to the session.
// What a type allows is decided in types.ts; at run time every method exists, and the workers
// refuse records of the wrong shape with node and record.
import { basename, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { JobRequest, JobResult, Op, SinkResult } from '../api/jobs'
import type { Arity, Helpers } from './functions'
import { buildJob, checkName, keptUpstream, type Keep, type NodeFields, type Persisting, type PlanNode } from './plan'
import type { ActionOptions, JoinHow, Key, KeyedDataset, Params, PersistOptions, SinkSpec, SortOptions, StepOptions, StorageLevel, WideOptions, WriteOptions, Written } from './types'

/** What actions need from the session: run a job to its end and return its result, and keep
 *  track of the datasets its jobs persist. */
export interface Runner {
  run(job: JobRequest, o: ActionOptions): Promise<JobResult>
  /** a name for an unnamed kept dataset, unique in the session, from its node's id */
  datasetName(nodeId: string): string
  /** a job persisted these datasets (the session frees the unnamed ones when it stops) */
  persisted(kept: readonly Persisting[]): void
  /** DELETE /datasets/:name; a name the master does not know is not an error */
  unpersist(name: string): Promise<void>
  /** the state of every dataset the cluster knows (GET /datasets) */
  datasetStates(): Promise<Map<string, 'AVAILABLE' | 'LOST'>>
}

const LEVELS: readonly StorageLevel[] = ['memory', 'memory_and_disk', 'disk']

/** How the master names a dataset in a job's error (catalog.ts, planning.ts). */
const NAMED = /dataset "([A-Za-z0-9][A-Za-z0-9_.-]*)"/g

type Fn = (...args: never[]) => unknown

// The SDK's own files: a step's call site is the first frame of the stack outside them (in the
// published package they are one file, dist/index.js).
const SDK_DIR = dirname(fileURLToPath(import.meta.url))

/** "file.ts:12" of the program's line that made a step, or undefined when the stack does not say. */
function callSite(): string | undefined {
  const stack = new Error().stack ?? ''
  for (const line of stack.split('\n').slice(1)) {
    const m = /(?:\(|at )(?:file:\/\/)?(\/[^()\s]*|[A-Za-z]:\\[^()\s]*):(\d+):\d+\)?\s*$/.exec(line)
    if (m === null) continue
    const file = m[1]!.startsWith('/') && m[0].includes('file://') ? decodeURIComponent(m[1]!) : m[1]!
    if (dirname(file) === SDK_DIR || file.includes('/node_modules/')) continue
    // a node id is at most 128 characters: keep the end of a long file name
    const name = basename(file)
    return `${name.length > 80 ? `…${name.slice(-79)}` : name}:${m[2]}`
  }
  return undefined
}

export class DatasetImpl {
  constructor(private readonly runner: Runner, readonly node: PlanNode, private readonly params: Params, private readonly helpers: Helpers = {}) {}

  /** A source dataset (read_text, read_jsonl, read_csv). */
  static source(runner: Runner, op: Op, method: string, fields: NodeFields, name?: string): DatasetImpl {
    return new DatasetImpl(runner, { op, inputs: [], fields, method, params: {}, ...(name === undefined ? {} : { id: checkName(name) }) }, {})
  }

  private next(op: Op, method: string, o: { fn?: unknown; arity?: Arity; field?: 'fn' | 'key'; fields?: NodeFields; others?: readonly DatasetImpl[]; name?: string | undefined } = {}): DatasetImpl {
    const others = o.others ?? []
    const params = Object.assign({}, ...others.map(d => d.params), this.params) as Params
    const helpers = Object.assign({}, ...others.map(d => d.helpers), this.helpers) as Helpers
    const site = callSite()
    const node: PlanNode = {
      op, method, inputs: [this.node, ...others.map(d => d.node)], fields: o.fields ?? {}, params, helpers,
      ...(o.name === undefined ? {} : { id: checkName(o.name) }),
      ...(site === undefined ? {} : { site }),
      ...(o.fn === undefined ? {} : { fn: { value: o.fn, arity: o.arity ?? 1, field: o.field ?? 'fn' } }),
    }
    return new DatasetImpl(this.runner, node, params, helpers)
  }

  map(fn: Fn, o: StepOptions = {}) { return this.next('map', 'map', { fn, name: o.name }) }
  flatMap(fn: Fn, o: StepOptions = {}) { return this.next('flat_map', 'flatMap', { fn, name: o.name }) }
  filter(fn: Fn, o: StepOptions = {}) { return this.next('filter', 'filter', { fn, name: o.name }) }
  keyBy(fn: Fn, o: StepOptions = {}) { return this.next('key_by', 'keyBy', { fn, name: o.name }) }
  mapValues(fn: Fn, o: StepOptions = {}) { return this.next('map_values', 'mapValues', { fn, name: o.name }) }
  reduceByKey(fn: Fn, opts: WideOptions = {}) { return this.next('reduce_by_key', 'reduceByKey', { fn, arity: 2, fields: wide(opts), name: opts.name }) }
  groupByKey(opts: WideOptions = {}) { return this.next('group_by_key', 'groupByKey', { fields: wide(opts), name: opts.name }) }
  distinct(opts: WideOptions = {}) { return this.next('distinct', 'distinct', { fields: wide(opts), name: opts.name }) }

  sortBy(fn?: Fn | null, opts: SortOptions = {}) {
    const fields: NodeFields = { ...wide(opts), ...(opts.descending === undefined ? {} : { descending: opts.descending }) }
    return this.next('sort', 'sortBy', fn == null ? { fields, name: opts.name } : { fn, field: 'key', fields, name: opts.name })
  }
  sortByKey(opts: SortOptions = {}) { return this.sortBy(null, opts) }

  union(...others: DatasetImpl[]) {
    if (others.length === 0) return this
    return this.next('union', 'union', { others })
  }

  join(other: DatasetImpl, opts: WideOptions & { how?: JoinHow } = {}) {
    const how = opts.how ?? 'inner'
    return this.next('join', 'join', { others: [other], fields: { ...wide(opts), ...(how === 'inner' ? {} : { how }) }, name: opts.name })
  }
  leftOuterJoin(other: DatasetImpl, opts: WideOptions = {}) { return this.join(other, { ...opts, how: 'left' }) }
  rightOuterJoin(other: DatasetImpl, opts: WideOptions = {}) { return this.join(other, { ...opts, how: 'right' }) }
  fullOuterJoin(other: DatasetImpl, opts: WideOptions = {}) { return this.join(other, { ...opts, how: 'full' }) }

  withParams(params: Params) {
    if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new TypeError('withParams takes an object: .withParams({ minCount: 2 })')
    // The params ride on the nodes made from here on (and on the sink), not on this node: a
    // dataset used with and without them stays one node of the job.
    return new DatasetImpl(this.runner, this.node, { ...this.params, ...params }, this.helpers)
  }

  withHelpers(helpers: Helpers) {
    if (helpers === null || typeof helpers !== 'object' || Array.isArray(helpers)) throw new TypeError('withHelpers takes an object of functions: .withHelpers({ tokensOf })')
    for (const [k, v] of Object.entries(helpers)) {
      if (typeof v !== 'function') throw new TypeError(`withHelpers: "${k}" is ${v === null ? 'null' : typeof v}, not a function: pass values with .withParams({ ${k} })`)
    }
    // Like params: on the nodes made from here on, so the function that calls a helper has it.
    return new DatasetImpl(this.runner, this.node, this.params, { ...this.helpers, ...helpers })
  }

  /** Like Spark's setName, names this very node, so every dataset that shares it sees the name. */
  named(id: string) {
    this.node.id = checkName(id)
    return this
  }

  // ---- keeping a dataset across the jobs of a session ---------------------------------------

  /** persist('memory_and_disk'), as Spark's Dataset.cache(). */
  cache() { return this.persist('memory_and_disk') }

  /**
   * Marks this node to be kept on the workers by the first job that computes it (lazily, as in
   * Spark); every later job reads the kept partitions instead of computing it again. Marks the
   * node, so every dataset made from it sees the mark.
   */
  persist(how: StorageLevel | PersistOptions = 'memory_and_disk') {
    const o: PersistOptions = typeof how === 'string' ? { level: how } : how ?? {}
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new TypeError("persist takes a level ('memory', 'memory_and_disk', 'disk') or { name?, level?, replace? }")
    const level = o.level ?? 'memory_and_disk'
    if (!LEVELS.includes(level)) throw new TypeError(`persist: level "${String(level)}" is not one of ${LEVELS.join(', ')}`)
    if (o.name !== undefined && (typeof o.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.name) || o.name.length > 128)) {
      throw new TypeError(`persist: the name "${String(o.name)}" is not a dataset name (1 to 128 letters, digits, _ . -, not starting with _ . -)`)
    }
    // A dataset of session.dataset(name) is kept already, by whoever persisted it.
    if (this.node.op === 'read_dataset') return this
    const k = this.node.keep
    if (k !== undefined && (k.dataset !== undefined || k.pending !== undefined)) {
      // Kept already: only the same request is not a change (Spark refuses a new level too).
      if (k.level === level && (o.name === undefined || o.name === k.name)) return this
      throw new TypeError(`persist: this dataset is kept already (as "${k.dataset ?? k.name}", level ${k.level}): unpersist() it first`)
    }
    this.node.keep = { level, named: o.name !== undefined, ...(o.name === undefined ? {} : { name: o.name }), ...(o.replace ? { replace: true } : {}) }
    return this
  }

  /**
   * Forgets the mark, and frees the kept partitions on every worker (DELETE /datasets/:name) if a
   * job kept them; later jobs compute the node again from its lineage. On a dataset of
   * session.dataset(name), deletes that dataset.
   */
  async unpersist(): Promise<void> {
    const k = this.node.keep
    if (k === undefined) return
    if (k.pending !== undefined) await k.pending.catch(() => undefined)
    if (this.node.keep !== k) return
    if (this.node.op !== 'read_dataset') delete this.node.keep
    if (k.dataset !== undefined) await this.runner.unpersist(k.dataset)
  }

  // ---- actions ---------------------------------------------------------------------------

  async collect(opts: ActionOptions & { limit?: number } = {}): Promise<unknown[]> {
    const r = await this.action({ op: 'collect', ...(opts.limit === undefined ? {} : { limit: opts.limit }) }, 'collect', opts)
    return r.op === 'collect' ? r.values : unexpected(r)
  }

  async count(opts: ActionOptions = {}): Promise<number> {
    const r = await this.action({ op: 'count' }, 'count', opts)
    return r.op === 'count' ? r.value : unexpected(r)
  }

  saveAsTextFile(path: string, opts: WriteOptions = {}): Promise<Written> { return this.write('write_text', 'saveAsTextFile', path, opts) }
  saveAsJsonl(path: string, opts: WriteOptions = {}): Promise<Written> { return this.write('write_jsonl', 'saveAsJsonl', path, opts) }

  /** The JobRequest an action would submit, without submitting it. */
  toJobRequest(sink: SinkSpec = { op: 'collect' }, opts: ActionOptions = {}): JobRequest {
    const { op, ...fields } = sink
    return buildJob(this.sinkNode(op, op, fields), { ...jobOptions(opts), datasetName: id => this.runner.datasetName(id) }).job
  }

  private async write(op: 'write_text' | 'write_jsonl', method: string, path: string, opts: WriteOptions): Promise<Written> {
    const r = await this.action({ op, path, ...(opts.overwrite === undefined ? {} : { overwrite: opts.overwrite }) }, method, opts)
    return r.op === 'write_text' || r.op === 'write_jsonl' ? { path: r.path, files: r.files, records: r.records } : unexpected(r)
  }

  private async action(sink: { op: Op } & NodeFields, method: string, opts: ActionOptions): Promise<SinkResult> {
    const { op, ...fields } = sink
    const node = this.sinkNode(op, method, fields)
    // A kept dataset lost on the cluster (a worker died with its partitions and the master could
    // not recompute them) is computed again from the lineage the program holds, and kept again
    // under its name: at most once per kept node of the job, so this ends.
    const recomputed = new Set<Keep>()
    for (;;) {
      // Checked right before the job is built, with no await in between: two actions at once
      // must not both persist a kept node.
      for (let p = pendingUpstream(node); p.length > 0; p = pendingUpstream(node)) await Promise.allSettled(p)
      const { job, ids, persisting } = buildJob(node, { ...jobOptions(opts), datasetName: id => this.runner.datasetName(id) })
      const run = this.runner.run(job, opts)
      for (const p of persisting) p.keep.pending = run
      let result: JobResult
      try {
        result = await run
      } catch (e) {
        for (const p of persisting) delete p.keep.pending
        if (!await this.relost(e, node, recomputed)) throw e
        continue
      }
      for (const p of persisting) { delete p.keep.pending; p.keep.dataset = p.name; delete p.keep.replace }
      if (persisting.length > 0) this.runner.persisted(persisting)
      const r = result.sinks[ids.get(node)!]
      if (r === undefined) throw new Error(`the job's result has no sink "${ids.get(node)}": the master answered ${JSON.stringify(Object.keys(result.sinks))}`)
      return r
    }
  }

  /**
   * When a job failed naming a kept dataset of this program: every kept dataset the job read that
   * the cluster no longer holds whole (LOST, or deleted) is forgotten as persisted, so that the
   * next job computes it from the lineage the program holds and keeps it again under its name.
   * Once per dataset per action, so the retries end.
   */
  private async relost(e: unknown, node: PlanNode, recomputed: Set<Keep>): Promise<boolean> {
    const message = e instanceof Error ? e.message : ''
    const named = new Set([...message.matchAll(NAMED)].map(m => m[1]!))
    const ours = keptUpstream(node).filter(n => n.op !== 'read_dataset' && n.keep?.dataset !== undefined && !recomputed.has(n.keep))
    if (!ours.some(n => named.has(n.keep!.dataset!))) return false
    const states = await this.runner.datasetStates()
    let any = false
    for (const n of ours) {
      const k = n.keep!
      if (states.get(k.dataset!) === 'AVAILABLE') continue
      recomputed.add(k)
      delete k.dataset
      k.replace = true
      any = true
    }
    return any
  }

  private sinkNode(op: Op, method: string, fields: NodeFields): PlanNode {
    const site = callSite()
    return { op, method, inputs: [this.node], fields, params: this.params, ...(site === undefined ? {} : { site }) }
  }
}

/** The jobs persisting kept nodes upstream of `node` right now. */
const pendingUpstream = (node: PlanNode): Promise<unknown>[] =>
  keptUpstream(node).flatMap(n => n.keep?.pending === undefined ? [] : [n.keep.pending])

const wide = (o: WideOptions): NodeFields => o.partitions === undefined ? {} : { partitions: o.partitions }

const jobOptions = (o: ActionOptions) => ({
  ...(o.name === undefined ? {} : { name: o.name }),
  ...(o.maxTaskAttempts === undefined ? {} : { maxTaskAttempts: o.maxTaskAttempts }),
  ...(o.partitions === undefined ? {} : { partitions: o.partitions }),
})

function unexpected(r: SinkResult): never {
  throw new Error(`unexpected sink result ${JSON.stringify(r).slice(0, 200)}`)
}

/** Types of the datasets the session hands out (the runtime class is the same for all). */
export const asDataset = <D>(d: DatasetImpl): D => d as unknown as D
export type { Key, KeyedDataset }
