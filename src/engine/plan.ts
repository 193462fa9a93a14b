// Cuts a validated DAG into stages at shuffle boundaries. Pure.
//
// A stage starts at a source (one task per input split) or at a wide node (one task per reduce
// partition) and takes every narrow node and sink reachable without crossing another wide node.
// A wide node's map side (partitioning, map-side combine) runs at the end of its input's stage as a
// shuffle write. A node feeding several consumers in one stage is computed once and fanned out.
//
// union: a narrow node whose inputs may sit in different stages. It is planned in the stage of each
// input (the "hosts" of a node), and so is everything narrow after it: each host runs the union on
// its own records, like the partitions of Spark's UnionRDD. A wide node after a union gets a shuffle
// write from every host under one shuffle id; a sink after a union runs in every host, its parts
// numbered across them (`sink_parts`, set once the splits are known) and its results summed.
//
// sort: a sample stage per host of the sort's input runs the same root and the narrow nodes that
// lead to the input, ending in an internal `sample` sink (reservoir sample of the sort keys). The
// stage that writes the sort's shuffle depends on every sample stage, and the master gives it the
// range bounds cut from the samples (src/roles/master/range-bounds.ts). When the host itself is
// needed to compute a sample (the sort's input is a union of a node and something derived from it
// through a shuffle), waiting for the samples would be a cycle: the sort's map side then runs in a
// copy of the host that only computes the sort's input.
//
// broadcast join: when one input of a join is read straight from files or from a persisted dataset
// small enough (`Broadcasts.sourceBytes` of its source at most `maxBytes`), its stage writes it whole as a
// one-partition shuffle, and the join runs as a narrow node in the stage(s) of the other input,
// each task holding the small side in a hash table (Spark's broadcast hash join). Only where the
// large side is streamed: inner joins, and left (right) joins whose right (left) side is small.
//
// cache: a node with `cache` is computed once. Each stage that computes it ends with a cache write
// (a shuffle write of one partition per task, kept by the worker that ran the task), and a new stage
// rooted at the cached node (`{kind: 'cached'}`, one task per cached partition, numbered across the
// writing stages) becomes the node's only host: every consumer (narrow or wide, a sort's sample, a
// union) is planned after it and reads the kept blocks instead of computing the node again. As a
// shuffle write, a lost block is recomputed the way a lost map output is: only its task.
import type { NodeSpec, Op } from '../api/jobs'
import type { ShuffleWrite, StagePlan } from '../api/tasks'
import { SINK_OPS, SOURCE_OPS, WIDE_OPS, type ValidJob } from './dag'

/** Ops this version plans and runs; the validator refuses the others with UNSUPPORTED_OP. */
export const SUPPORTED_OPS: ReadonlySet<Op> = new Set<Op>([
  'read_text', 'read_jsonl', 'read_csv',
  'map', 'flat_map', 'filter', 'map_values', 'key_by', 'union',
  'reduce_by_key', 'group_by_key', 'join', 'distinct', 'sort',
  'write_text', 'write_jsonl', 'collect', 'count',
  'words', 'grep', 'key_by_field', 'count_by_value', 'agg_by_key',
  'persist', 'read_dataset',
])

/** Reduce partitions of one wide op (or a job's default): each is a task whose spec lists every
 *  map output, and a block file per map task on the workers. */
export const MAX_PARTITIONS = 10_000

/** The op of the internal sink that samples a sort's keys (never in a job's result). */
export const SAMPLE_OP = 'sample'

/** What the planner needs to choose broadcast joins: the bytes each source node reads (files, or a
 *  persisted dataset's blocks). */
export type Broadcasts = { sourceBytes: ReadonlyMap<string, number>; maxBytes: number }

export const DEFAULT_BROADCAST_BYTES = 32 * 1024 * 1024

export function planStages(job: ValidJob, defaultPartitions: number, broadcasts?: Broadcasts): StagePlan[] {
  const stages: StagePlan[] = []
  // The stages that compute each node: one, or several after a union.
  const hosts = new Map<string, StagePlan[]>()
  const newStage = (root: StagePlan['root'], partitions: number): StagePlan => {
    const s: StagePlan = { stage_id: stages.length, root, nodes: [], shuffle_writes: [], sinks: [], depends_on: [], partitions }
    stages.push(s)
    return s
  }
  const hostsOf = (id: string): StagePlan[] => hosts.get(id)!
  for (const id of job.order) {
    const node = job.nodes.get(id)!
    const op = node.op as Op
    const inputs = job.inputsOf.get(id) ?? []
    if (op === 'read_dataset') {
      // Its partitions are blocks a previous job kept: a stage rooted at them, one task per
      // block, whose count and holders the master fills in from its catalog (`root.dataset`).
      hosts.set(id, [newStage({ kind: 'cached', node, cache_id: datasetIdOf(node.name!) }, 0)])
    } else if (op === 'persist') {
      // A cache write of its input, kept under the dataset's own owner on the workers: no stage
      // reads it in this job, and the input's other consumers in the stage go on as they are.
      const input = inputs[0]!
      for (const h of hostsOf(input)) h.shuffle_writes.push({ shuffle_id: datasetIdOf(node.name!), node, from: input, partitions: 1, cache: node.level ?? 'memory_and_disk', persist: node.name! })
      hosts.set(id, hostsOf(input))
    } else if (SOURCE_OPS.has(op)) {
      // Tasks are counted once the inputs are listed (setSplitCount).
      hosts.set(id, [newStage({ kind: 'source', node }, 0)])
    } else if (op === 'sort') {
      hosts.set(id, [planSort(node, inputs[0]!, node.partitions ?? defaultPartitions, job, stages, hostsOf, newStage)])
    } else if (op === 'join' && broadcasts !== undefined && planBroadcast(node, inputs, stages, hostsOf, hosts, broadcasts)) {
      // planned as a narrow node of the large side's stages
    } else if (WIDE_OPS.has(op)) {
      const partitions = node.partitions ?? defaultPartitions
      const shuffleIds = inputs.map((_, side) => inputs.length === 1 ? id : `${id}/${side}`)
      const stage = newStage({ kind: 'shuffle', node, shuffle_ids: shuffleIds }, partitions)
      inputs.forEach((input, side) => {
        for (const from of hostsOf(input)) {
          from.shuffle_writes.push({ shuffle_id: shuffleIds[side]!, node, from: input, partitions })
          addDependency(stage, from)
        }
      })
      hosts.set(id, [stage])
    } else {
      const own: StagePlan[] = []
      for (const input of inputs) for (const s of hostsOf(input)) if (!own.includes(s)) own.push(s)
      own.sort((a, b) => a.stage_id - b.stage_id)
      for (const stage of own) {
        stage.nodes.push(node)
        if (SINK_OPS.has(op)) stage.sinks.push(id)
      }
      hosts.set(id, own)
    }
    if (node.cache !== undefined && !SINK_OPS.has(op)) planCache(node, stages, hostsOf, hosts, newStage)
  }
  return stages
}

/** The shuffle id of `node`'s cache write: its id and a suffix no other write of the plan has. */
export const cacheIdOf = (nodeId: string): string => `${nodeId}#cache`

function planCache(node: NodeSpec, stages: readonly StagePlan[], hostsOf: (id: string) => StagePlan[], hosts: Map<string, StagePlan[]>,
  newStage: (root: StagePlan['root'], partitions: number) => StagePlan): void {
  let cacheId = cacheIdOf(node.id)
  while (stages.some(s => s.shuffle_writes.some(w => w.shuffle_id === cacheId))) cacheId += '_'
  const writers = hostsOf(node.id)
  for (const h of writers) h.shuffle_writes.push({ shuffle_id: cacheId, node, from: node.id, partitions: 1, cache: node.cache! })
  const reader = newStage({ kind: 'cached', node, cache_id: cacheId }, 0)
  for (const h of writers) addDependency(reader, h)
  setCachedCount(reader, stages)
  hosts.set(node.id, [reader])
}

/** The shuffle id of a persisted dataset's blocks (a dataset name has no "#"). */
export const datasetIdOf = (name: string): string => `${name}#dataset`

/** A stage reading a cached node has one task per task of the stages that write it. Call after
 *  those stages are sized (setSplitCount), in stage order; other stages are left as they are (a
 *  read_dataset stage is sized from the catalog). */
export function setCachedCount(stage: StagePlan, stages: readonly StagePlan[]): void {
  const root = stage.root
  if (root.kind !== 'cached' || root.node.op === 'read_dataset') return
  let n = 0
  for (const s of stages) if (s.shuffle_writes.some(w => w.shuffle_id === root.cache_id)) n += s.partitions
  stage.partitions = n
}

/** Plans `node` (a join) as a broadcast join if one side qualifies; false leaves it to the shuffle. */
function planBroadcast(node: NodeSpec, inputs: readonly string[], stages: readonly StagePlan[], hostsOf: (id: string) => StagePlan[],
  hosts: Map<string, StagePlan[]>, b: Broadcasts): boolean {
  const how = node.how ?? 'inner'
  let best: { side: 0 | 1; host: StagePlan; bytes: number } | undefined
  for (const side of [1, 0] as const) {
    // The small side's missing matches would have to be found across all tasks: not broadcast.
    if (how === 'full' || (how === 'left' && side === 0) || (how === 'right' && side === 1)) continue
    const small = hostsOf(inputs[side]!)
    const large = hostsOf(inputs[1 - side]!)
    // Read straight from files, or from a dataset an earlier job persisted: a size known at plan
    // time (an iterative job's small per-iteration state, such as PageRank's ranks, joined with
    // a large kept dataset is then a narrow pass over the kept blocks).
    if (small.length !== 1 || !sizedRoot(small[0]!.root)) continue
    const host = small[0]!
    const bytes = b.sourceBytes.get(host.root.node.id)
    if (bytes === undefined || bytes > b.maxBytes) continue
    // The large side's stages will wait for the small side's: no cycle, and not the same stage.
    if (large.some(l => l === host || dependsOn(host, l, stages))) continue
    if (best === undefined || bytes < best.bytes) best = { side, host, bytes }
  }
  if (best === undefined) return false
  let shuffleId = `${node.id}#broadcast`
  while (stages.some(s => s.shuffle_writes.some(w => w.shuffle_id === shuffleId))) shuffleId += '_'
  best.host.shuffle_writes.push({ shuffle_id: shuffleId, node, from: inputs[best.side]!, partitions: 1 })
  const large = hostsOf(inputs[1 - best.side]!)
  for (const stage of large) {
    stage.nodes.push(node)
    ;(stage.broadcasts ??= []).push({ shuffle_id: shuffleId, node_id: node.id, side: best.side })
    addDependency(stage, best.host)
  }
  hosts.set(node.id, large)
  return true
}

const sizedRoot = (root: StagePlan['root']): boolean =>
  root.kind === 'source' || (root.kind === 'cached' && root.node.op === 'read_dataset')

/** A copy of a stage's path (a sort's sample stage, or its writer) needs the broadcast joins on it. */
function inheritBroadcasts(copy: StagePlan, from: StagePlan, stages: readonly StagePlan[]): void {
  const ids = new Set(copy.nodes.map(n => n.id))
  for (const b of from.broadcasts ?? []) {
    if (!ids.has(b.node_id)) continue
    ;(copy.broadcasts ??= []).push(b)
    const writer = stages.find(s => s.shuffle_writes.some(w => w.shuffle_id === b.shuffle_id))
    if (writer !== undefined) addDependency(copy, writer)
  }
}

function planSort(node: NodeSpec, input: string, partitions: number, job: ValidJob, stages: StagePlan[],
  hostsOf: (id: string) => StagePlan[], newStage: (root: StagePlan['root'], partitions: number) => StagePlan): StagePlan {
  const hosts = hostsOf(input)
  let sampleId = `${node.id}#sample`
  while (job.nodes.has(sampleId)) sampleId += '_'
  const sampleNode: NodeSpec = { id: sampleId, op: SAMPLE_OP, input, partitions, ...(node.key === undefined ? {} : { key: node.key }), ...(node.by === undefined ? {} : { by: node.by }) }
  const samples = hosts.map(h => {
    const s = newStage(h.root, h.partitions)
    s.nodes = [...pathTo(h, input), sampleNode]
    s.sample_of = node.id
    for (const d of rootWriters(h, stages)) addDependency(s, d)
    inheritBroadcasts(s, h, stages)
    return s
  })
  const writers = hosts.map(h => {
    if (!samples.some(s => dependsOn(s, h, stages))) return h
    const copy = newStage(h.root, h.partitions)
    copy.nodes = pathTo(h, input)
    for (const d of rootWriters(h, stages)) addDependency(copy, d)
    inheritBroadcasts(copy, h, stages)
    return copy
  })
  const sort = newStage({ kind: 'shuffle', node, shuffle_ids: [node.id] }, partitions)
  for (const w of writers) {
    const write: ShuffleWrite = { shuffle_id: node.id, node, from: input, partitions }
    w.shuffle_writes.push(write)
    for (const s of samples) addDependency(w, s)
    addDependency(sort, w)
  }
  return sort
}

/** The nodes of a stage that lead to `id` (itself included), in the stage's order. */
const pathTo = (stage: StagePlan, id: string): NodeSpec[] => leadingTo(stage.nodes, [id])

/** Of a stage's nodes, those that lead to `ids` (themselves included), in the stage's order. */
export function leadingTo(nodes: readonly NodeSpec[], ids: readonly string[]): NodeSpec[] {
  const byId = new Map(nodes.map(n => [n.id, n]))
  const need = new Set<string>()
  const stack = [...ids]
  while (stack.length > 0) {
    const at = stack.pop()!
    const n = byId.get(at)
    if (n === undefined || need.has(at)) continue
    need.add(at)
    for (const i of n.inputs ?? (n.input === undefined ? [] : [n.input])) stack.push(i)
  }
  return nodes.filter(n => need.has(n.id))
}

/** The stages whose shuffle writes a stage's root reads. */
function rootWriters(stage: StagePlan, stages: readonly StagePlan[]): StagePlan[] {
  const root = stage.root
  if (root.kind === 'source') return []
  const ids = root.kind === 'cached' ? [root.cache_id] : root.shuffle_ids
  return stages.filter(s => s.shuffle_writes.some(w => ids.includes(w.shuffle_id)))
}

/** Whether `stage` waits, directly or not, for `target`. */
function dependsOn(stage: StagePlan, target: StagePlan, stages: readonly StagePlan[]): boolean {
  const seen = new Set<number>()
  const stack = [...stage.depends_on]
  while (stack.length > 0) {
    const d = stack.pop()!
    if (d === target.stage_id) return true
    if (seen.has(d)) continue
    seen.add(d)
    stack.push(...stages[d]!.depends_on)
  }
  return false
}

function addDependency(stage: StagePlan, on: StagePlan): void {
  if (!stage.depends_on.includes(on.stage_id)) stage.depends_on.push(on.stage_id)
}

/** A source stage gets one task per split; an empty input gives a stage with no tasks. */
export function setSplitCount(stage: StagePlan, splits: number): void {
  stage.partitions = splits
}

/**
 * Numbers the parts of every write sink across the stages that run it, in stage order, without
 * gaps: `sink_parts[sink]` is the part number of the stage's partition 0. Call once every stage's
 * task count is known (after setSplitCount).
 */
export function numberSinkParts(stages: readonly StagePlan[]): void {
  const next = new Map<string, number>()
  for (const s of stages) {
    for (const id of s.sinks) {
      const node = s.nodes.find(n => n.id === id)
      if (node === undefined || (node.op !== 'write_text' && node.op !== 'write_jsonl')) continue
      const first = next.get(id) ?? 0
      ;(s.sink_parts ??= {})[id] = first
      next.set(id, first + s.partitions)
    }
  }
}

/** Text rendering of a plan, for golden tests and logs. */
export function renderPlan(stages: readonly StagePlan[]): string {
  return stages.map(s => {
    const root = s.root.kind === 'source' ? `source ${s.root.node.id}`
      : s.root.kind === 'cached' ? `cached ${s.root.node.id}(${s.root.cache_id})` : `shuffle ${s.root.node.id}(${s.root.shuffle_ids.join(',')})`
    const writes = s.shuffle_writes.map(w => `${w.from}=>${w.shuffle_id}[${w.cache ?? w.partitions}]`)
    return `stage ${s.stage_id} <- [${s.depends_on.join(',')}] ${root} | ${s.nodes.map(n => n.id).join(' ')}` +
      (writes.length ? ` | writes ${writes.join(' ')}` : '') + (s.sinks.length ? ` | sinks ${s.sinks.join(' ')}` : '') +
      (s.sample_of !== undefined ? ` | samples ${s.sample_of}` : '') +
      (s.broadcasts?.length ? ` | broadcast ${s.broadcasts.map(b => `${b.node_id}<=${b.shuffle_id}(side ${b.side})`).join(' ')}` : '')
  }).join('\n')
}
