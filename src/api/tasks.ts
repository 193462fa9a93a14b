// The internal protocol between master and workers: stage plans, task dispatch, reports,
// input listing and output commit. Documented in both roles' OpenAPI documents.
import { t, type Static } from 'elysia'
import { Type } from '@sinclair/typebox'
import { NodeSpec } from './jobs'

// Integers of the internal protocol are plain JSON numbers: Elysia's t.Integer also accepts numeric
// strings, which makes it a transform, and a body with transforms is decoded field by field
// (1.7 µs against 0.07 µs for 17 integers) on every launch and report.
const Int = Type.Integer

export const StageRoot = t.Union([
  t.Object({ kind: t.Literal('source'), node: NodeSpec }),
  t.Object({ kind: t.Literal('shuffle'), node: NodeSpec, shuffle_ids: t.Array(t.String()) }),
  /** the partitions of a cached node (`cache_id` is the cache write of every stage that computes
   *  it): task p reads the block that map task p of those stages kept, numbered across them */
  t.Object({
    kind: t.Literal('cached'), node: NodeSpec, cache_id: t.String(),
    /** a persisted dataset (read_dataset): its blocks are held under `owner` on the workers, not
     *  under this job; task p reads `blocks[p]` (from the master's catalog at submit) */
    dataset: t.Optional(t.Object({
      name: t.String(), owner: t.String(),
      blocks: t.Array(t.Object({ attempt: t.String(), worker: t.String(), incarnation: t.String(), bytes: Int({ minimum: 0 }) })),
    })),
  }),
])
export type StageRoot = Static<typeof StageRoot>

export const ShuffleWrite = t.Object({
  shuffle_id: t.String(),
  /** the wide node this shuffle feeds; its op decides map-side work (combine for reduce_by_key) */
  node: NodeSpec,
  /** the node of this stage whose records are written */
  from: t.String(),
  partitions: Int({ minimum: 1 }),
  /** a cache write: the task keeps all its records of `from` as one block (reduce partition 0, so
   *  `partitions` is 1), at this level, on the worker that ran it; no wide node reads it */
  cache: t.Optional(t.Union([t.Literal('memory'), t.Literal('memory_and_disk'), t.Literal('disk')])),
  /** a persist sink's write (with `cache`): the block is kept under the dataset of this name, in a
   *  folder of its own, and outlives the job (`node` is the persist node) */
  persist: t.Optional(t.String()),
  /** a persist write that recomputes lost partitions of a dataset another job persisted: the block
   *  is kept under that dataset's owner (absent: the dataset this job persists) */
  owner: t.Optional(t.String()),
})
export type ShuffleWrite = Static<typeof ShuffleWrite>

export const StagePlan = t.Object({
  stage_id: Int({ minimum: 0 }),
  root: StageRoot,
  /** narrow nodes and sinks computed in this stage after the root, in topological order */
  nodes: t.Array(NodeSpec),
  shuffle_writes: t.Array(ShuffleWrite),
  sinks: t.Array(t.String()),
  depends_on: t.Array(Int()),
  /** tasks of this stage: input splits for a source stage, reduce partitions for a shuffle stage */
  partitions: Int({ minimum: 0 }),
  /** write sinks: the part number of this stage's partition 0. A sink after a union runs in the
   *  stage of each input, and its parts are numbered across those stages without gaps. */
  sink_parts: t.Optional(t.Record(t.String(), Int({ minimum: 0 }))),
  /** broadcast joins computed in this stage: the join's small input (`side` 0 left, 1 right) was
   *  written whole as partition 0 of `shuffle_id` by another stage; each task fetches all of it
   *  into a hash table and streams this stage's records past it, with no shuffle of the large side */
  broadcasts: t.Optional(t.Array(t.Object({ shuffle_id: t.String(), node_id: t.String(), side: t.Union([t.Literal(0), t.Literal(1)]) }))),
  /** a sort's sample stage: the sort node whose range bounds its `sample` sink feeds */
  sample_of: t.Optional(t.String()),
})
export type StagePlan = Static<typeof StagePlan>

export const Split = t.Object({ path: t.String(), start: Int(), end: Int(), file_size: Int() })
export type SplitWire = Static<typeof Split>

export const MapOutput = t.Object({
  map_partition: Int(), attempt_id: t.String(), worker_id: t.String(), address: t.String(),
  /** bytes of this reduce partition in that map output: the reduce task sizes its requests by it */
  bytes: t.Optional(Int({ minimum: 0 })),
})
export type MapOutput = Static<typeof MapOutput>

export const TaskSpec = t.Object({
  job_id: t.String(),
  task_id: t.String(),
  attempt_id: t.String(),
  attempt: Int({ minimum: 0 }),
  stage_id: Int(),
  partition: Int({ minimum: 0 }),
  params: t.Record(t.String(), t.Unknown()),
  stage: StagePlan,
  split: t.Union([Split, t.Null()]),
  shuffle_inputs: t.Array(t.Object({ shuffle_id: t.String(), map_outputs: t.Array(MapOutput) })),
  /** the worker incarnation this task was given to; the worker refuses a task for another one */
  incarnation: t.String(),
  /** sort: per shuffle id, the sampled upper bounds of reduce partitions 0..n-2 */
  range_bounds: t.Optional(t.Record(t.String(), t.Array(t.Unknown()))),
  /** the job's per-task time limit: an attempt running longer is stopped and failed (counted) */
  task_timeout_ms: t.Optional(Int({ minimum: 1 })),
})
export type TaskSpec = Static<typeof TaskSpec>

export const TaskMetrics = t.Object({
  records_in: Int(), records_out: Int(),
  shuffle_bytes_written: Int(), shuffle_bytes_read: Int(), spilled_bytes: Int(),
})
export type TaskMetrics = Static<typeof TaskMetrics>

export const SinkOutput = t.Object({
  node_id: t.String(),
  op: t.String(),
  records: Int(),
  /** collect: the values of this partition, in order */
  values: t.Optional(t.Array(t.Unknown())),
  /** write sinks: the part number written, and its size in bytes */
  part: t.Optional(Int({ minimum: 0 })),
  bytes: t.Optional(Int({ minimum: 0 })),
  /** persist: where the block is kept as the task ends */
  kept: t.Optional(t.Union([t.Literal('memory'), t.Literal('disk')])),
})
export type SinkOutput = Static<typeof SinkOutput>

export const TaskFailureWire = t.Object({
  /** `fatal`: retrying cannot help (a collect too large to send, an input file changed since
   *  planning): the job fails at once. `interrupted`: the attempt could not finish for a reason
   *  outside the task (the master could not be asked whether to commit): not the task's fault */
  reason: t.Union([t.Literal('udf-error'), t.Literal('fetch-failed'), t.Literal('task-error'), t.Literal('killed'), t.Literal('fatal'), t.Literal('interrupted')]),
  message: t.String(),
  node_id: t.Optional(t.String()),
  record: t.Optional(t.String()),
  /** fetch-failed: the worker that could not serve a block */
  from_worker: t.Optional(t.String()),
  /** fetch-failed: that worker refused the connection (its process is gone) */
  unreachable: t.Optional(t.Boolean()),
  /** fetch-failed: the one map attempt whose block that worker does not hold (a cached block it
   *  dropped under memory pressure): only that output is recomputed */
  missing_attempt: t.Optional(t.String()),
})
export type TaskFailureWire = Static<typeof TaskFailureWire>

export const TaskReport = t.Object({
  worker_id: t.String(),
  incarnation: t.String(),
  attempt_id: t.String(),
  state: t.Union([t.Literal('SUCCEEDED'), t.Literal('FAILED')]),
  metrics: TaskMetrics,
  /** bytes written per reduce partition, per shuffle this task wrote */
  shuffle_outputs: t.Array(t.Object({ shuffle_id: t.String(), sizes: t.Array(Int()) })),
  sinks: t.Array(SinkOutput),
  failure: t.Optional(TaskFailureWire),
})
export type TaskReport = Static<typeof TaskReport>

/** Several reports in one request (POST /tasks/reports): a worker sends what finished while its
 *  previous report was on its way, so a busy master gets fewer, larger requests. */
export const TaskReports = t.Object({
  reports: t.Array(TaskReport, { minItems: 1, maxItems: 1024 }),
  take_tasks: t.Optional(t.Boolean({ description: 'the worker takes tasks the master decides for it meanwhile in the answer (ReportsAnswer.tasks), instead of each in a POST /tasks of its own' })),
})
export type TaskReports = Static<typeof TaskReports>
/** The answer to POST /tasks/reports: with take_tasks, the tasks the master launched on this worker
 *  while it stored the reports. Each is the worker's to run as if pushed by POST /tasks. */
export const ReportsAnswer = t.Object({ ok: t.Literal(true), tasks: t.Optional(t.Array(TaskSpec)) })
export type ReportsAnswer = Static<typeof ReportsAnswer>

/** Several tasks in one request (POST /tasks/batch on a worker): the master sends what it has for a
 *  worker while its previous launch there is on its way. Each is accepted or refused on its own. */
export const TaskBatch = t.Object({ tasks: t.Array(TaskSpec, { minItems: 1, maxItems: 1024 }) })
export type TaskBatch = Static<typeof TaskBatch>
export const TaskBatchAnswer = t.Object({
  results: t.Array(t.Object({
    attempt_id: t.String(),
    accepted: t.Boolean(),
    /** why a task was refused (STALE_INCARNATION: it is for an older incarnation of this worker) */
    error: t.Optional(t.Object({ code: t.String(), message: t.String() })),
  })),
})
export type TaskBatchAnswer = Static<typeof TaskBatchAnswer>

export const CommitRequest = t.Object({ attempt_id: t.String(), worker_id: t.String() })
export const CommitAnswer = t.Object({ commit: t.Boolean() })

export const ListRequest = t.Object({
  inputs: t.Array(t.Object({ node_id: t.String(), path: t.String(), allow_empty: t.Optional(t.Boolean()) })),
  outputs: t.Array(t.Object({ node_id: t.String(), path: t.String(), overwrite: t.Boolean() })),
  /** absolute paths on the master's machine that no job may read, write or contain (its state db) */
  reserved: t.Optional(t.Array(t.Object({ path: t.String(), what: t.String() }))),
})
export type ListRequest = Static<typeof ListRequest>

export const ListAnswer = t.Object({
  inputs: t.Array(t.Object({
    node_id: t.String(),
    /** `mtime_ms`: when the file was last modified, on this worker's disk (a dataset's lineage
     *  keeps it, and recomputes a lost partition only from a file modified no later) */
    files: t.Array(t.Object({ path: t.String(), size: Int(), mtime_ms: t.Optional(Int()) })),
  })),
  /** problems found, each a message that says what to fix */
  errors: t.Array(t.Object({ node_id: t.String(), code: t.String(), message: t.String() })),
})
export type ListAnswer = Static<typeof ListAnswer>

/** One output as the master's catalog has it on one disk (FinalizeRequest.settle). */
export const OutputSettle = t.Object({
  path: t.String(),
  /** where the job committed its parts: `path`, or its staged folder when it replaces an output */
  dir: t.String(),
  /** the part files of `dir` that count on this disk; any other part-N file there is a copy left by
   *  an attempt that lost its commit, and goes */
  keep: t.Array(t.String()),
  /** this disk's _SUCCESS: the parts it holds and the output's total (absent: none here) */
  success: t.Optional(t.Object({ parts: t.Array(Int()), total: Int() })),
  /** the job that wrote the output, for its _SUCCESS (default: the request's job_id) */
  job_id: t.Optional(t.String()),
})
export type OutputSettle = Static<typeof OutputSettle>

export const FinalizeRequest = t.Object({
  /** the job whose outputs are finalized; '' when only swapping outputs this worker missed */
  job_id: t.String(),
  /** outputs of the job that get _SUCCESS on this worker's disk (its text: the job id), after the
   *  swaps; their _temporary folder goes. Asked of one worker per job */
  paths: t.Array(t.String()),
  /** outputs the job replaces, each swapped in on this worker's disk: the entries of `path` (but
   *  _temporary) move to `path`/_temporary/JOB.previous, the files of `staged` (the job's committed
   *  parts, `path`/_temporary/JOB) move into `path`, then the .previous folder and `staged` are
   *  removed. A _SUCCESS that names the job means the swap is done (a data dir shared with a worker
   *  that did it); `staged`/_MOVING means the previous entries are already aside. Safe to repeat
   *  after a crash at any step. The master asks one worker at a time. Where `staged` is not on this
   *  disk (no part of the job was committed here), only the files directly in `path` last written
   *  more than `older_than_ms` ago (before the job was submitted) are removed: a newer output there
   *  is left alone */
  swaps: t.Optional(t.Array(t.Object({ path: t.String(), staged: t.String(), older_than_ms: t.Integer({ minimum: 0 }) }))),
  /** per output: stray copies go before the swap, _SUCCESS is written after it */
  settle: t.Optional(t.Array(OutputSettle)),
})
export type FinalizeRequest = Static<typeof FinalizeRequest>
export const ShuffleFetch = t.Object({
  job_id: t.String(), shuffle_id: t.String(), reduce_partition: Int({ minimum: 0 }),
  attempts: t.Array(t.String(), { description: 'map attempt ids whose block for this partition is wanted' }),
})
export type ShuffleFetch = Static<typeof ShuffleFetch>
