// The job API: what users submit and what they read back (CONTRACT sections 4 and 5).
import { t, type Static } from 'elysia'
import type { TLiteral, TObject, TProperties } from '@sinclair/typebox'
import { JobIdT, NodeIdT, WorkerIdT } from './ids'

export { OPS, type Op } from './ops'
import { OPS, type Op } from './ops'

/** A dataset's name: it is a path component of GET /datasets/:name. */
export const DATASET_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$'

// One node as the engine reads it: every field of every op, optional. Plans add internal ops
// (a sort's sample) and task specs carry nodes in this shape; submissions are checked against the
// stricter JobNode below first.
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
  columns: t.Optional(t.Array(t.String({ minLength: 1, maxLength: 1024 }), { minItems: 1, maxItems: 1024 })),
  types: t.Optional(t.Record(t.String({ minLength: 1, maxLength: 1024 }), t.Union([t.Literal('string'), t.Literal('number'), t.Literal('int'), t.Literal('cents')]), { maxProperties: 1024 })),
  allow_empty: t.Optional(t.Boolean()),
  overwrite: t.Optional(t.Boolean()),
  replicas: t.Optional(t.Integer({ minimum: 1, maximum: 16 })),
  partitions: t.Optional(t.Integer({ minimum: 1, maximum: 100000 })),
  how: t.Optional(t.Union([t.Literal('inner'), t.Literal('left'), t.Literal('right'), t.Literal('full')])),
  descending: t.Optional(t.Boolean()),
  limit: t.Optional(t.Integer({ minimum: 0 })),
  // built-ins
  pattern: t.Optional(t.String({ minLength: 1, maxLength: 4096 })),
  flags: t.Optional(t.String({ maxLength: 8 })),
  lowercase: t.Optional(t.Boolean()),
  field: t.Optional(t.String({ minLength: 1, maxLength: 1024 })),
  agg: t.Optional(t.Union([t.Literal('sum'), t.Literal('count'), t.Literal('min'), t.Literal('max')])),
  by: t.Optional(t.Union([
    t.Object({ field: t.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
    t.Object({ slice: t.Tuple([t.Integer({ minimum: 0 }), t.Integer({ minimum: 0 })]) }, { additionalProperties: false }),
  ])),
  cache: t.Optional(t.Union([t.Literal('memory'), t.Literal('memory_and_disk'), t.Literal('disk')])),
  // persist / read_dataset
  name: t.Optional(t.String({ minLength: 1, maxLength: 128, pattern: DATASET_NAME_PATTERN })),
  level: t.Optional(t.Union([t.Literal('memory'), t.Literal('memory_and_disk'), t.Literal('disk')])),
  replace: t.Optional(t.Boolean()),
}, { additionalProperties: false })
export type NodeSpec = Static<typeof NodeSpec>

// The fields of CONTRACT section 4, one schema per op. Descriptions are what editors and Swagger
// show next to each field; the same objects make the union below, job.schema.json and the OpenAPI
// document, so they cannot drift apart.
const input = t.String({ ...NodeIdT, description: 'the id of the node this one reads' })
const fn = (what: string) => t.String({ maxLength: 65536, description: `JavaScript source of a function expression: ${what}; \`params\` is in scope` })
const path = (what: string) => t.String({ minLength: 1, maxLength: 4096, description: `${what}, relative to each worker's --data-dir` })
const partitions = t.Optional(t.Integer({ minimum: 1, maximum: 100000, description: 'reduce partitions (default: 2 × the live task slots at submit)' }))
const allowEmpty = t.Optional(t.Boolean({ description: 'accept a path or glob that matches no file (an empty input); default false: refused at submit' }))
const overwrite = t.Optional(t.Boolean({ description: 'replace an existing output; default false: refused at submit' }))
const replicas = t.Optional(t.Integer({ minimum: 1, maximum: 16, description: 'copies of each part, each on a different worker\'s disk, made before _SUCCESS (default 1): with 2, losing one machine loses no output' }))
/** Where a cached node's partitions are kept (CONTRACT section 8). */
export const CacheLevel = t.Union([t.Literal('memory'), t.Literal('memory_and_disk'), t.Literal('disk')])
export type CacheLevel = Static<typeof CacheLevel>
const cache = t.Optional(t.Union([t.Literal('memory'), t.Literal('memory_and_disk'), t.Literal('disk')], {
  description: 'compute this node once and keep its partitions on the workers that computed them, for every consumer in the job: memory (dropped under memory pressure and recomputed), memory_and_disk (moved to the work dir under pressure), disk (written to the work dir)',
}))

const node = <O extends Op, P extends TProperties>(op: O, description: string, props: P): TObject<{ id: typeof NodeIdT; op: TLiteral<O> } & P> =>
  t.Object({ id: NodeIdT, op: t.Literal(op), ...props }, { additionalProperties: false, title: op, description })

export const NODE_SCHEMAS = {
  read_text: node('read_text', 'each line of the files a path, directory or glob names', {
    path: path('a file, a directory or a glob (*, **)'),
    with_path: t.Optional(t.Boolean({ description: 'give [path, line] instead of the line' })),
    allow_empty: allowEmpty, cache,
  }),
  read_jsonl: node('read_jsonl', 'each line parsed as JSON; blank lines skipped', {
    path: path('a file, a directory or a glob (*, **)'), allow_empty: allowEmpty, cache,
  }),
  read_csv: node('read_csv', 'an object per row keyed by the header (arrays without one), values as strings; "columns" and "types" project and parse columns as a built-in', {
    path: path('a file, a directory or a glob (*, **)'),
    header: t.Optional(t.Boolean({ description: 'the first line names the columns (default true)' })),
    delimiter: t.Optional(t.String({ minLength: 1, maxLength: 1, description: 'one character (default ",")' })),
    multiline: t.Optional(t.Boolean({ description: 'quoted fields may hold line breaks; reads each file whole in one task' })),
    columns: t.Optional(t.Array(t.String({ minLength: 1, maxLength: 1024 }), {
      minItems: 1, maxItems: 1024, uniqueItems: true,
      description: 'keep only these header columns, in this order: each row is an object with exactly these keys, read from the line\'s bytes without making strings of the other fields (needs a header; a file whose header lacks one fails its task naming the file and the column); twin: map "r => ({ a: r.a, b: r.b })"',
    })),
    types: t.Optional(t.Record(t.String({ minLength: 1, maxLength: 1024 }), t.Union([t.Literal('string'), t.Literal('number'), t.Literal('int'), t.Literal('cents')]), {
      maxProperties: 1024,
      description: 'parse these columns (of "columns" when given, else of the header) from the bytes: "string" (as is), "number" (a decimal like -1.5e3), "int" (digits with an optional sign, a safe integer), "cents" (a decimal with at most two fraction digits, as integer hundredths: "12.3" gives 1230); an empty field gives null, anything else fails the task naming the file, line, column and value. Twin: map "r => ({ ...r, a: r.a === \'\' ? null : Number(r.a) })" (cents: Math.round(Number(v) * 100), exact below 2^51 hundredths)',
    })),
    allow_empty: allowEmpty, cache,
  }),
  map: node('map', 'one record out per record in', { input, fn: fn('record => record'), cache }),
  flat_map: node('flat_map', 'an iterable out per record in', { input, fn: fn('record => iterable'), cache }),
  filter: node('filter', 'keeps the records the function accepts', { input, fn: fn('record => boolean'), cache }),
  map_values: node('map_values', '[k, v] → [k, fn(v)]', { input, fn: fn('value => value'), cache }),
  key_by: node('key_by', 'x → [fn(x), x]', { input, fn: fn('record => key'), cache }),
  union: node('union', 'the records of all its inputs (no shuffle)', {
    inputs: t.Array(NodeIdT, { minItems: 1, maxItems: 64, description: 'the ids of the nodes to concatenate' }),
    cache,
  }),
  reduce_by_key: node('reduce_by_key', 'one [k, v] per key, combined on the map side first', { input, fn: fn('(a, b) => c'), partitions, cache }),
  group_by_key: node('group_by_key', '[k, [values...]] per key', { input, partitions, cache }),
  join: node('join', '[k, [left, right]] per matching pair', {
    inputs: t.Array(NodeIdT, { minItems: 2, maxItems: 2, description: '[left, right]' }),
    how: t.Optional(t.Union([t.Literal('inner'), t.Literal('left'), t.Literal('right'), t.Literal('full')], { description: 'default inner; null stands for a missing side' })),
    partitions, cache,
  }),
  distinct: node('distinct', 'each distinct record once', { input, partitions, cache }),
  sort: node('sort', 'a total order across parts (part 0 first)', {
    input,
    key: t.Optional(fn('record => sort key (default: the key of [k, v], else the record)')),
    by: t.Optional(t.Union([
      t.Object({ field: t.String({ minLength: 1, maxLength: 1024, description: 'sort objects by this field (twin: "key": "r => r[field]")' }) }, { additionalProperties: false }),
      t.Object({ slice: t.Tuple([t.Integer({ minimum: 0 }), t.Integer({ minimum: 0 })], { description: '[start, end]: sort strings by these characters (twin: "key": "r => r.slice(start, end)")' }) }, { additionalProperties: false }),
    ], { description: 'a built-in sort key instead of "key"' })),
    descending: t.Optional(t.Boolean()),
    partitions, cache,
  }),
  write_text: node('write_text', 'part files of one record a line (strings as they are, other values as JSON) and _SUCCESS', {
    input, path: path('the output directory'), overwrite, replicas,
  }),
  write_jsonl: node('write_jsonl', 'part files of one JSON record a line and _SUCCESS', {
    input, path: path('the output directory'), overwrite, replicas,
  }),
  collect: node('collect', 'the records, in the job\'s result, in part order', {
    input, limit: t.Optional(t.Integer({ minimum: 0, description: 'at most this many records (default 100000)' })),
  }),
  count: node('count', 'the number of records', { input }),
  // Built-ins: each does what a UDF twin does (named in its description), with identical results,
  // without a JS value per line or word where it can avoid one.
  words: node('words', 'text → each maximal run of the pattern\'s characters (ASCII), lowercased first by default; twin: flat_map "l => l.toLowerCase().match(/[a-z0-9]+/g) ?? []"', {
    input,
    lowercase: t.Optional(t.Boolean({ description: 'lowercase the text first, as toLowerCase() does (default true)' })),
    pattern: t.Optional(t.String({ minLength: 3, maxLength: 1024, description: 'one bracket class of printable ASCII characters and ranges, then "+" (default "[a-z0-9]+")' })),
    cache,
  }),
  grep: node('grep', 'the lines (strings) a regular expression matches; twin: filter "l => new RegExp(pattern, flags).test(l)"', {
    input,
    pattern: t.String({ minLength: 1, maxLength: 4096, description: 'a JavaScript regular expression' }),
    flags: t.Optional(t.String({ maxLength: 4, pattern: '^[imsu]*$', description: 'any of i, m, s, u (default none)' })),
    cache,
  }),
  key_by_field: node('key_by_field', 'object → [object[field], object]; twin: key_by "r => r[field]" (a record without the field fails the task)', {
    input,
    field: t.String({ minLength: 1, maxLength: 1024, description: 'the field (a read_csv column, a JSON property) to key by' }),
    cache,
  }),
  persist: node('persist', 'keeps the records of its input on the workers after the job ends, as the dataset `name`, for read_dataset in later jobs', {
    input,
    name: t.String({ minLength: 1, maxLength: 128, pattern: DATASET_NAME_PATTERN, description: 'the dataset\'s name (letters, digits, _ . -)' }),
    level: t.Optional(t.Union([t.Literal('memory'), t.Literal('memory_and_disk'), t.Literal('disk')], {
      description: 'memory (dropped under memory pressure), memory_and_disk (moved to the work dir under pressure; the default), disk (written to the work dir)',
    })),
    replace: t.Optional(t.Boolean({ description: 'replace a dataset of that name once this one is complete; default false: an existing name is refused at submit' })),
  }),
  read_dataset: node('read_dataset', 'the records of a dataset a previous job persisted, one task per partition, run where the partition is held', {
    name: t.String({ minLength: 1, maxLength: 128, pattern: DATASET_NAME_PATTERN, description: 'the name given to persist' }),
    cache,
  }),
  count_by_value: node('count_by_value', 'each distinct record with its number of occurrences, [record, n]; twin: map "x => [x, 1]" then reduce_by_key "(a, b) => a + b"', { input, partitions, cache }),
  agg_by_key: node('agg_by_key', 'one [k, agg of the values] per key of [k, v] records; twin: reduce_by_key with "(a, b) => a + b" (sum), Math.min, Math.max, or map_values "v => 1" first (count)', {
    input,
    agg: t.Union([t.Literal('sum'), t.Literal('count'), t.Literal('min'), t.Literal('max')], { description: 'sum, min, max (of numbers) or count (of records)' }),
    partitions,
    cache,
  }),
} satisfies Record<Op, TObject>

const N = NODE_SCHEMAS
/** A node as a job file gives it: which fields go with which op, told apart by `op`. */
export const JobNode = t.Union([
  N.read_text, N.read_jsonl, N.read_csv, N.map, N.flat_map, N.filter, N.map_values, N.key_by, N.union,
  N.reduce_by_key, N.group_by_key, N.join, N.distinct, N.sort, N.write_text, N.write_jsonl, N.collect, N.count,
  N.words, N.grep, N.key_by_field, N.count_by_value, N.agg_by_key, N.persist, N.read_dataset,
], {
  discriminator: { propertyName: 'op' },
  description: 'a node of the DAG; `op` says which fields it takes',
})

/** The fields a node of this op may carry. */
export const fieldsOf = (op: Op): string[] => Object.keys(NODE_SCHEMAS[op].properties)

export const JobRequest = t.Object({
  $schema: t.Optional(t.String({ maxLength: 4096, description: 'ignored: lets an editor find job.schema.json' })),
  name: t.Optional(t.String({ minLength: 1, maxLength: 256 })),
  nodes: t.Array(JobNode, { minItems: 1, maxItems: 10000 }),
  params: t.Optional(t.Record(t.String(), t.Unknown(), { description: 'a JSON object every function sees as `params`' })),
  max_task_attempts: t.Optional(t.Integer({ minimum: 1, maximum: 100, description: 'tries of a task before the job fails (default 4)' })),
  partitions: t.Optional(t.Integer({ minimum: 1, maximum: 10000, description: 'default partitions of wide ops' })),
  task_timeout: t.Optional(t.Union([
    t.Integer({ minimum: 1, maximum: 2 ** 31 }),
    t.String({ pattern: '^[0-9]+(ms|s|m|h)$' }),
  ], { description: 'a task attempt running longer than this is stopped and fails (counted): milliseconds, or "500ms", "30s", "5m", "1h" (default: no limit)' })),
  split_bytes: t.Optional(t.Integer({ minimum: 1, maximum: 2 ** 40, description: 'input split size in bytes (default 64 MiB)' })),
  broadcast_bytes: t.Optional(t.Integer({ minimum: 0, maximum: 2 ** 40, description: 'a join whose small input is read straight from files or a persisted dataset of at most this many bytes is computed without shuffling the large input (default 32 MiB; 0: never)' })),
}, { additionalProperties: false, title: 'Mini-Spark job' })
// The engine reads nodes through the wider NodeSpec (every JobNode is one), so code that builds
// jobs (the SDK, tests) is not bound to the union's narrowing.
export type JobRequest = Omit<Static<typeof JobRequest>, 'nodes'> & { nodes: NodeSpec[] }

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** A job's task_timeout in milliseconds, or undefined for no limit. */
export function taskTimeoutMs(req: Pick<JobRequest, 'task_timeout'>): number | undefined {
  const v = req.task_timeout
  if (v === undefined) return undefined
  if (typeof v === 'number') return v
  const m = /^([0-9]+)(ms|s|m|h)$/.exec(v)
  return m === null ? undefined : Math.max(1, Number(m[1]) * UNIT_MS[m[2]!]!)
}

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
  /** a stage added while the job ran to recompute lost partitions of this persisted dataset from its lineage */
  recomputes: t.Optional(t.String()),
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
