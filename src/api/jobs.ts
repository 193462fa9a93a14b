// The job API: what users submit and what they read back (CONTRACT sections 4 and 5).
import { t, type Static } from 'elysia'
import { JobIdT, NodeIdT, WorkerIdT } from './ids'

export const OPS = [
  'read_text', 'read_jsonl', 'read_csv',
  'map', 'flat_map', 'filter', 'map_values', 'key_by', 'union',
  'reduce_by_key', 'group_by_key', 'join', 'distinct', 'sort',
  'write_text', 'write_jsonl', 'collect', 'count',
] as const
export type Op = (typeof OPS)[number]

// One node of the DAG. Every op's fields are listed (optional) so a typo such as "fnn" is refused
// with a message naming it, and Swagger shows what each field means; dag.ts checks which op needs what.
export const NodeSpec = t.Object({
  id: NodeIdT,
  op: t.String({ description: `one of: ${OPS.join(', ')}` }),
  input: t.Optional(NodeIdT),
  inputs: t.Optional(t.Array(NodeIdT, { minItems: 1, maxItems: 64 })),
  fn: t.Optional(t.String({ maxLength: 65536, description: 'JavaScript source of a function expression' })),
  key: t.Optional(t.String({ maxLength: 65536, description: 'sort: key function source' })),
  path: t.Optional(t.String({ minLength: 1, maxLength: 4096, description: 'relative to each worker\'s --data-dir' })),
  with_path: t.Optional(t.Boolean()),
  header: t.Optional(t.Boolean()),
  delimiter: t.Optional(t.String({ minLength: 1, maxLength: 1 })),
  multiline: t.Optional(t.Boolean()),
  overwrite: t.Optional(t.Boolean()),
  partitions: t.Optional(t.Integer({ minimum: 1, maximum: 100000 })),
  how: t.Optional(t.Union([t.Literal('inner'), t.Literal('left'), t.Literal('right'), t.Literal('full')])),
  descending: t.Optional(t.Boolean()),
  limit: t.Optional(t.Integer({ minimum: 0 })),
}, { additionalProperties: false })
export type NodeSpec = Static<typeof NodeSpec>

export const JobRequest = t.Object({
  name: t.Optional(t.String({ minLength: 1, maxLength: 256 })),
  nodes: t.Array(NodeSpec, { minItems: 1, maxItems: 10000 }),
  params: t.Optional(t.Record(t.String(), t.Unknown())),
  max_task_attempts: t.Optional(t.Integer({ minimum: 1, maximum: 100 })),
  partitions: t.Optional(t.Integer({ minimum: 1, maximum: 100000 })),
  split_bytes: t.Optional(t.Integer({ minimum: 1, maximum: 2 ** 40, description: 'input split size in bytes (default 64 MiB)' })),
  broadcast_bytes: t.Optional(t.Integer({ minimum: 0, maximum: 2 ** 40, description: 'a join whose small input is read straight from files of at most this many bytes is computed without shuffling the large input (default 32 MiB; 0: never)' })),
}, { additionalProperties: false })
export type JobRequest = Static<typeof JobRequest>

export const JobState = t.Union([
  t.Literal('QUEUED'), t.Literal('RUNNING'), t.Literal('SUCCEEDED'), t.Literal('FAILED'), t.Literal('CANCELLED'),
])
export type JobState = Static<typeof JobState>
export const FINAL_JOB_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED']

export const JobAccepted = t.Object({ job_id: JobIdT, state: JobState })
export type JobAccepted = Static<typeof JobAccepted>

export const JobError = t.Object({
  message: t.String(),
  node_id: t.Union([t.String(), t.Null()]),
  task_id: t.Union([t.String(), t.Null()]),
  record: t.Union([t.String(), t.Null()]),
})
export type JobError = Static<typeof JobError>

export const StageState = t.Union([
  t.Literal('WAITING'), t.Literal('RUNNING'), t.Literal('SUCCEEDED'), t.Literal('FAILED'), t.Literal('CANCELLED'),
])
export type StageState = Static<typeof StageState>

export const StageStatus = t.Object({
  stage_id: t.Integer(),
  node_ids: t.Array(t.String()),
  depends_on: t.Array(t.Integer()),
  state: StageState,
  tasks: t.Object({
    total: t.Integer(), pending: t.Integer(), running: t.Integer(), succeeded: t.Integer(), failed: t.Integer(),
  }),
})
export type StageStatus = Static<typeof StageStatus>

const Time = t.Union([t.String({ format: 'date-time' }), t.Null()])

export const JobStatus = t.Object({
  job_id: t.String(),
  name: t.String(),
  state: JobState,
  submitted_at: t.String({ format: 'date-time' }),
  started_at: Time,
  finished_at: Time,
  progress: t.Number({ minimum: 0, maximum: 1 }),
  error: t.Union([JobError, t.Null()]),
  stages: t.Array(StageStatus),
})
export type JobStatus = Static<typeof JobStatus>

export const JobSummary = t.Object({
  job_id: t.String(), name: t.String(), state: JobState,
  submitted_at: t.String({ format: 'date-time' }), started_at: Time, finished_at: Time,
  progress: t.Number(),
})
export type JobSummary = Static<typeof JobSummary>

export const AttemptState = t.Union([
  t.Literal('PENDING'), t.Literal('RUNNING'), t.Literal('SUCCEEDED'), t.Literal('FAILED'), t.Literal('LOST'), t.Literal('KILLED'),
])
export type AttemptState = Static<typeof AttemptState>

export const TaskInfo = t.Object({
  task_id: t.String(), stage_id: t.Integer(), partition: t.Integer(), attempt: t.Integer(),
  worker_id: t.Union([WorkerIdT, t.Null()]),
  state: AttemptState,
  started_at: Time, finished_at: Time,
  records_in: t.Integer(), records_out: t.Integer(),
  shuffle_bytes_written: t.Integer(), shuffle_bytes_read: t.Integer(), spilled_bytes: t.Integer(),
  error: t.Union([t.String(), t.Null()]),
})
export type TaskInfo = Static<typeof TaskInfo>

export const SinkResult = t.Union([
  t.Object({ op: t.Union([t.Literal('write_text'), t.Literal('write_jsonl')]), path: t.String(), files: t.Integer(), records: t.Integer() }),
  t.Object({ op: t.Literal('collect'), values: t.Array(t.Unknown()) }),
  t.Object({ op: t.Literal('count'), value: t.Integer() }),
])
export type SinkResult = Static<typeof SinkResult>

export const JobResult = t.Object({ sinks: t.Record(t.String(), SinkResult) })
export type JobResult = Static<typeof JobResult>
