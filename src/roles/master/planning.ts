// Turns a validated request into a runnable JobRun: stages from the DAG, input splits from a
// worker's listing (the master never opens data files), one PENDING task per split or partition.
// Everything a job makes the master hold or send is bounded here, at submit, with a 400 that says
// what to change: splits per job, partitions per wide op, the size of each task's spec.
import { taskIdOf, type JobId } from '../../api/ids'
import type { JobRequest, NodeSpec, Op } from '../../api/jobs'
import type { ListAnswer, ListRequest, StagePlan } from '../../api/tasks'
import { ApiError, type ErrorCode } from '../../api/errors'
import type { ValidJob } from '../../engine/dag'
import { DEFAULT_BROADCAST_BYTES, MAX_PARTITIONS, numberSinkParts, planStages, setCachedCount, setSplitCount } from '../../engine/plan'
import { countSplits, DEFAULT_SPLIT_BYTES, MAX_SPLITS_PER_JOB, planSplits } from '../../engine/splits'
import { MAX_BODY_BYTES } from '../http'
import { stagedPath, type JobRun, type StageRun } from './state'
import { indexTasks } from './task-index'
import { indexHolders } from './placement'
import { datasetRoot, persistNodes, type DatasetRecord } from './catalog'

/** Each source's files, with the disks that hold each (from mergeListings); without disks, any
 *  worker may read a file (a plan made from one worker's listing, as benchmarks of the master do). */
export type PlannedInputs = { inputs: { node_id: string; files: { path: string; size: number; disks?: string[]; mtimes?: Record<string, number> }[] }[] }

export function listingRequest(v: ValidJob): ListRequest {
  const req: ListRequest = { inputs: [], outputs: [] }
  for (const n of v.nodes.values()) {
    // allow_empty: a source field of the job schema (read here whether or not the schema lists it yet)
    const allowEmpty = (n as { allow_empty?: unknown }).allow_empty === true
    if (n.op === 'read_text' || n.op === 'read_jsonl' || n.op === 'read_csv') req.inputs.push({ node_id: n.id, path: n.path!, ...(allowEmpty ? { allow_empty: true } : {}) })
    if (n.op === 'write_text' || n.op === 'write_jsonl') req.outputs.push({ node_id: n.id, path: n.path!, overwrite: n.overwrite === true })
  }
  return req
}

/** A listing problem is the user's to fix: a 400 naming the node and path. */
export function checkListing(answer: ListAnswer): void {
  const first = answer.errors[0]
  if (first !== undefined) throw new ApiError(first.code as ErrorCode, first.message, { node_id: first.node_id })
}

/** `replicas: N` needs N disks with a live worker: a 400 at submit rather than a job that waits. */
export function checkReplicas(v: ValidJob, disks: number): void {
  for (const n of v.nodes.values()) {
    const want = (n as { replicas?: number }).replicas ?? 1
    if (want > disks) {
      throw new ApiError('INVALID_JOB', `node "${n.id}": "replicas": ${want} needs ${want} workers with disks of their own, and the live workers have ${disks} ` +
        '(workers that share a --data-dir share a disk): start more workers on other machines, or ask for fewer replicas', { node_id: n.id })
    }
  }
}

/** A task's spec travels in one request to a worker, whose body limit is MAX_BODY_BYTES; what is
 *  left below it is for the JSON around the parts estimated here. */
export const TASK_SPEC_MAX_BYTES = MAX_BODY_BYTES - 256 * 1024

export function buildJobRun(o: {
  id: JobId; seq: number; request: JobRequest; valid: ValidJob; listing: PlannedInputs; defaultPartitions: number; nowMs: number; splitBytes?: number
  /** the longest worker id and address now: map-output entries in reduce specs name them */
  peerChars?: number
  /** the catalog's datasets, for read_dataset and persist (checkDatasets) */
  datasets?: ReadonlyMap<string, DatasetRecord>
  /** dataset names that unfinished jobs persist, with the job */
  persisting?: ReadonlyMap<string, string>
}): JobRun {
  checkPartitions(o.valid, o.request)
  const datasets = o.datasets ?? new Map<string, DatasetRecord>()
  checkDatasets(o.valid, datasets, o.persisting)
  const sourceBytes = new Map(o.listing.inputs.map(i => [i.node_id, i.files.reduce((n: number, f) => n + f.size, 0)]))
  for (const n of o.valid.nodes.values()) {
    const d = n.op === 'read_dataset' ? datasets.get(n.name!) : undefined
    if (d !== undefined) sourceBytes.set(n.id, d.blocks.reduce((sum, b) => sum + b.bytes, 0))
  }
  const plans = planStages(o.valid, o.request.partitions ?? Math.min(o.defaultPartitions, MAX_PARTITIONS),
    { sourceBytes, maxBytes: o.request.broadcast_bytes ?? DEFAULT_BROADCAST_BYTES })
  checkSplitCount(plans, o.listing, o.request, o.splitBytes)
  const overwrites = overwrittenOutputs(o.valid)
  const stages: StageRun[] = plans.map(plan => {
    let splits: StageRun['splits'] = []
    let holders: string[][] | undefined
    if (plan.root.kind === 'source') {
      const files = o.listing.inputs.find(i => i.node_id === plan.root.node.id)?.files ?? []
      splits = planSplits(files, splitBytesOf(plan.root.node, o.splitBytes ?? o.request.split_bytes)).map(s => ({ path: s.path, start: s.start, end: s.end, file_size: s.fileSize }))
      // Each split runs where its file is (placement.ts).
      const disks = new Map(files.map(f => [f.path, f.disks]))
      if (files.every(f => f.disks !== undefined)) holders = splits.map(sp => disks.get(sp.path) ?? [])
      setSplitCount(plan, splits.length)
    }
    // A cached node's readers: one task per task of its writers, sized above (they come first).
    setCachedCount(plan, plans)
    // A dataset's readers: one task per block the catalog knows, each to run where it is held.
    if (plan.root.kind === 'cached' && plan.root.node.op === 'read_dataset') {
      const d = datasets.get(plan.root.node.name!)!
      plan.root.dataset = datasetRoot(d)
      plan.partitions = d.blocks.length
    }
    stageOverwrites(plan, o.id, overwrites)
    const tasks = Array.from({ length: plan.partitions }, (_, p) => ({
      id: taskIdOf(o.id, plan.stage_id, p), stage: plan.stage_id, partition: p, state: 'PENDING' as const,
      attempts: 0, failures: 0, current: null, output: null, sinks: [], committer: null,
    }))
    const stage: StageRun = { plan, state: 'WAITING', tasks, index: indexTasks(tasks), splits, finalCounts: null, ...(holders === undefined ? {} : { holders }) }
    indexHolders(stage)
    return stage
  })
  numberSinkParts(plans)
  checkSpecSizes(o.id, o.request, stages, o.peerChars ?? 64)
  const outputs = [...o.valid.nodes.values()].filter(n => n.op === 'write_text' || n.op === 'write_jsonl').map(n => n.path!)
  // When each input file was last modified, per disk: the lineage of a dataset it persists keeps it.
  const inputMtimes = new Map<string, Record<string, number>>()
  if (persistNodes([...o.valid.nodes.values()]).length > 0) for (const i of o.listing.inputs) for (const f of i.files) if (f.mtimes !== undefined) inputMtimes.set(f.path, f.mtimes)
  return {
    id: o.id, seq: o.seq, name: o.request.name ?? 'job', state: 'QUEUED', request: o.request, params: o.request.params ?? {},
    maxAttempts: o.request.max_task_attempts ?? 4, stages, outputs, overwrites, submittedMs: o.nowMs, startedMs: null, finishedMs: null,
    error: null, result: null, finalizing: false, ...(inputMtimes.size > 0 ? { inputMtimes } : {}),
  }
}

/** An overwriting sink commits its parts aside, and they are swapped in when the job succeeds:
 *  until then the previous output stays whole. The plan's copy of the node says where. */
function stageOverwrites(plan: StagePlan, job: JobId, overwrites: readonly string[]): void {
  if (overwrites.length === 0) return
  plan.nodes = plan.nodes.map(n => (n.op === 'write_text' || n.op === 'write_jsonl') && n.path !== undefined && overwrites.includes(n.path)
    ? { ...n, path: stagedPath(n.path, job) } : n)
}

/** read_dataset names a dataset the catalog holds; persist a name it does not hold (unless
 *  `replace`), once per job: a 400 at submit, not a job that fails later. */
export function checkDatasets(v: ValidJob, datasets: ReadonlyMap<string, DatasetRecord>, persisting: ReadonlyMap<string, string> = new Map()): void {
  const persisted = new Map<string, string>()
  for (const n of v.nodes.values()) {
    if (n.op === 'read_dataset' && !datasets.has(n.name!)) {
      throw new ApiError('INVALID_JOB', `node "${n.id}" reads dataset "${n.name}", which no job persisted (or it was deleted): GET /datasets lists them`, { node_id: n.id })
    }
  }
  for (const n of persistNodes([...v.nodes.values()])) {
    const other = persisted.get(n.name!)
    if (other !== undefined) throw new ApiError('INVALID_JOB', `nodes "${other}" and "${n.id}" both persist dataset "${n.name}": give each its own name`, { node_id: n.id })
    persisted.set(n.name!, n.id)
    if (datasets.has(n.name!) && n.replace !== true) {
      throw new ApiError('INVALID_JOB', `node "${n.id}" persists dataset "${n.name}", which exists: add "replace": true to replace it once this one is complete, or DELETE /datasets/${n.name}`, { node_id: n.id })
    }
    // Two jobs making one new name at once: the one to end last would replace the other unasked.
    const by = persisting.get(n.name!)
    if (by !== undefined && n.replace !== true) {
      throw new ApiError('INVALID_JOB', `node "${n.id}" persists dataset "${n.name}", which job ${by} is persisting now: add "replace": true to replace it, or wait for that job`, { node_id: n.id })
    }
  }
}

function checkPartitions(v: ValidJob, req: JobRequest): void {
  if (req.partitions !== undefined && req.partitions > MAX_PARTITIONS) {
    throw new ApiError('INVALID_JOB', `"partitions": ${req.partitions} is over the limit of ${MAX_PARTITIONS}: each partition is a task and a block per map task; use at most ${MAX_PARTITIONS}`)
  }
  for (const n of v.nodes.values()) {
    if (typeof n.partitions === 'number' && n.partitions > MAX_PARTITIONS) {
      throw new ApiError('INVALID_JOB', `node "${n.id}": "partitions": ${n.partitions} is over the limit of ${MAX_PARTITIONS}: each partition is a task and a block per map task; use at most ${MAX_PARTITIONS}`, { node_id: n.id })
    }
  }
}

/** Counted before any split is built: `split_bytes: 1` on a large input would otherwise hold
 *  millions of them in the master's memory before the job is refused. */
function checkSplitCount(plans: readonly StagePlan[], listing: PlannedInputs, req: JobRequest, splitBytes: number | undefined): void {
  let total = 0
  let bytes = 0
  for (const plan of plans) {
    if (plan.root.kind !== 'source') continue
    const files = listing.inputs.find(i => i.node_id === plan.root.node.id)?.files ?? []
    total += countSplits(files, splitBytesOf(plan.root.node, splitBytes ?? req.split_bytes))
    bytes += files.reduce((n, f) => n + f.size, 0)
  }
  if (total <= MAX_SPLITS_PER_JOB) return
  const need = Math.ceil(bytes / (MAX_SPLITS_PER_JOB / 2))
  throw new ApiError('INVALID_JOB', `the inputs would be cut into ${total} splits, over the limit of ${MAX_SPLITS_PER_JOB} per job: ` +
    (req.split_bytes !== undefined ? `raise "split_bytes" (${req.split_bytes}) to ${need} or more` : 'read fewer files (each file is at least one split)'), { splits: total })
}

/** The largest spec each stage's tasks would be sent, estimated from what is known at submit: the
 *  params and stage plan (in every spec), a split, and one entry per map output it reads. Sort
 *  bounds are known only later: a spec too large then is refused by the worker (413), which fails
 *  the job at once. */
function checkSpecSizes(id: JobId, req: JobRequest, stages: readonly StageRun[], peerChars: number): void {
  const params = Buffer.byteLength(JSON.stringify(req.params ?? {}))
  // {"map_partition":N,"attempt_id":"JOB:S:P#A","worker_id":"…","address":"…","bytes":N}
  const perOutput = 100 + id.length + 24 + peerChars
  const mapTasks = new Map<string, number>()   // shuffle id → map tasks writing it
  for (const st of stages) for (const w of st.plan.shuffle_writes) mapTasks.set(w.shuffle_id, (mapTasks.get(w.shuffle_id) ?? 0) + st.plan.partitions)
  for (const st of stages) {
    const split = st.splits.reduce((n, s) => Math.max(n, Buffer.byteLength(s.path)), 0)
    const reads = [...(st.plan.root.kind === 'shuffle' ? st.plan.root.shuffle_ids : []), ...(st.plan.broadcasts ?? []).map(b => b.shuffle_id)]
    const outputs = reads.reduce((n, sid) => n + (mapTasks.get(sid) ?? 0), 0)
    const bytes = params + Buffer.byteLength(JSON.stringify(st.plan)) + split + 256 + outputs * perOutput
    if (bytes <= TASK_SPEC_MAX_BYTES) continue
    const why = params > TASK_SPEC_MAX_BYTES / 2 ? `"params" take ${params} bytes, and every task carries them: pass large data as an input file`
      : outputs * perOutput > TASK_SPEC_MAX_BYTES / 2 ? `each of its tasks reads ${outputs} map outputs: use fewer input splits (a larger "split_bytes")`
        : 'its functions and params are too large: pass large data as an input file'
    throw new ApiError('INVALID_JOB', `a task of stage ${st.plan.stage_id} would be sent to its worker as about ${bytes} bytes, and a worker takes at most ${MAX_BODY_BYTES >> 20} MiB per request: ${why}`, { stage_id: st.plan.stage_id })
  }
}

/** read_csv with `multiline` reads each file whole in one task: a quoted field may hold a line
 *  break, so no byte offset inside the file is known to start a row. */
function splitBytesOf(source: NodeSpec, splitBytes: number | undefined): number {
  if (source.op === 'read_csv' && source.multiline === true) return Number.MAX_SAFE_INTEGER
  return splitBytes ?? DEFAULT_SPLIT_BYTES
}

export const overwrittenOutputs = (v: ValidJob): string[] =>
  [...v.nodes.values()].filter(n => ((n.op as Op) === 'write_text' || (n.op as Op) === 'write_jsonl') && n.overwrite === true && n.path !== undefined).map(n => n.path!)
