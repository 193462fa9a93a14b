// The master's in-memory model of the cluster and its jobs. Only scheduler.ts changes it.
//
// Task:    PENDING ──launch──> RUNNING ──report ok──> SUCCEEDED
//             ^                  │  (fail, lost)         │ (its map output lost with a worker)
//             └──────────────────┴───────────────────────┘
//          RUNNING ──fail × max_task_attempts──> FAILED (and the job FAILED)
// Worker:  IDLE/BUSY/PAUSED ──no heartbeat for the timeout──> DEAD ──heartbeat──> new incarnation
import type { AttemptId, JobId, TaskId, WorkerId } from '../../api/ids'
import type { AttemptState, JobError, JobRequest, JobResult, JobState, StageState } from '../../api/jobs'
import type { WorkerStatus } from '../../api/heartbeat'
import type { SinkOutput, SplitWire, StagePlan, TaskMetrics } from '../../api/tasks'
import type { TaskIndex } from './task-index'
import type { DatasetRecord, OutputPart, OutputRecord } from './catalog'

export type WorkerRun = {
  id: WorkerId
  address: string
  /** its --data-dir's id: workers that share a folder share a disk (catalog.ts) */
  disk: string
  status: WorkerStatus
  slots: number
  incarnation: string
  lastSeenMs: number
  memMb: number
  activeTasks: number
  /** cached partitions it holds, as its last heartbeat said */
  cached?: { memoryBytes: number; diskBytes: number }
  running: Set<AttemptId>
  /** when this incarnation joined: a report about a peer written before then is about an older one */
  joinedMs: number
  /** outputs replaced while this worker was away: its disk may hold their old parts. It gets no
   *  task until it has swapped them (`clearing`: the request is on its way). */
  staleOutputs?: Overwrite[]
  /** when it was declared DEAD: clears sent to live workers from then on missed it */
  lostMs?: number
  /** outputs recorded while it was away: its disk settles them (strays go, _SUCCESS) with the swaps */
  staleSettle?: string[]
  clearing?: boolean
  clearFailures?: number
}

export type TaskRunState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED'

/** `atMs`: when the map attempt reported it; a reduce attempt started before then was not told of it */
export type MapOutputRef = { worker: WorkerId; address: string; attempt: AttemptId; sizes: Map<string, number[]>; atMs: number }

export type TaskRun = {
  id: TaskId
  stage: number
  partition: number
  state: TaskRunState
  attempts: number
  failures: number
  current: AttemptId | null
  output: MapOutputRef | null
  sinks: SinkOutput[]
  /** the attempt the master let move its output into place */
  committer: AttemptId | null
  /** workers where an attempt failed: a re-run goes elsewhere when it can */
  failedOn?: WorkerId[]
  /** attempts in a row that ended for a reason not the task's fault (MAX_UNCOUNTED_RETRIES) */
  lostRuns?: number
  /** `losses` when a loss last cost this task a retry */
  lostAtLoss?: number
  /** UTF-8 bytes of the collect values in `sinks` (COLLECT_LIMIT_BYTES) */
  collectedBytes?: number
  /** where the attempt that committed its write parts ran (the parts' first copy) */
  home?: { worker: WorkerId; disk: string }
  /** copies of its committed write parts made on other disks (`replicas`), per write node */
  replicas?: Replica[]
  /** replicas being made now: the worker asked to pull one, per write node */
  replicating?: { node: string; disk: string; worker: WorkerId; incarnation: string }[]
  /** replica requests that failed (bounded: REPLICA_TRIES) */
  replicaFailures?: number
}

export type Replica = { node: string; disk: string; worker: WorkerId }

export type StageCounts = { total: number; pending: number; running: number; succeeded: number; failed: number }

export type StageRun = {
  plan: StagePlan
  state: StageState
  tasks: TaskRun[]
  /** counts by state and the PENDING queue, kept by setTaskState (task-index.ts) */
  index: TaskIndex
  splits: SplitWire[]
  /** per split, the disks that hold its file; absent: every worker may read it (a stage that
   *  reads no files, or a job planned before disks were known) */
  holders?: string[][]
  /** per disk, the PENDING splits it holds (placement.ts) */
  byDisk?: Map<string, number[]>
  /** since when a PENDING split has had no live holder (INPUT_UNAVAILABLE after a bound) */
  unavailableSinceMs?: number
  /** counts kept when a finished job's tasks are dropped from memory */
  finalCounts: StageCounts | null
  /** since when a task of this stage has waited for the holder of its cached partition (locality.ts);
   *  cleared when a task is launched on its holder, as Spark's delay scheduling resets its timer */
  localityWaitFromMs?: number
  /** fetch failures in a row that re-planned map outputs this stage reads (MAX_FETCH_FAILURE_ROUNDS) */
  fetchFailureRounds?: number
  /** a stage recomputing lost partitions of a persisted dataset (recompute.ts): the persisting
   *  job's params, its sort bounds, and, for a stage that writes the dataset, which partitions */
  lineage?: {
    params: Record<string, unknown>; bounds?: Record<string, unknown[]>; dataset: string; owner: string; writes?: { base: number; partitions: number[] }
    /** its tasks that do not run (their partitions of the dataset are held) */
    skipped?: number[]
  }
  /** successful attempts, and their moving average time, launch to report (queue-ahead.ts) */
  runs?: { n: number; avgMs: number }
}

export type JobRun = {
  id: JobId
  seq: number
  name: string
  state: JobState
  request: JobRequest
  params: Record<string, unknown>
  maxAttempts: number
  stages: StageRun[]
  /** write sinks' paths: they get _SUCCESS at the end */
  outputs: string[]
  /** those of `outputs` that replace an existing output: their parts are committed aside (in
   *  stagedPath) and swapped in at the end, so the previous output stays whole until then */
  overwrites: string[]
  /** UTF-8 bytes of collect values held for this job (COLLECT_LIMIT_BYTES) */
  collectedBytes?: number
  submittedMs: number
  startedMs: number | null
  finishedMs: number | null
  error: JobError | null
  result: JobResult | null
  finalizing: boolean
  /** finalize requests that failed with an answer (a worker that refuses connections is lost instead) */
  finalizeTries?: number
  /** live workers still to be asked to finalize, in turn */
  finalizeQueue?: WorkerId[]
  /** the worker incarnation asked to finalize that has not answered yet (one at a time) */
  finalizeWaiting?: Map<WorkerId, string>
  /** `worker@incarnation` of those that finalized */
  finalizeDone?: Set<string>
  /** a swap may have begun on some disk: a cancel waits, staged parts stay, a lost part is not run again */
  swapStarted?: boolean
  /** the parts of each output as finalize found them (catalog.ts), recorded when the job succeeds */
  finalParts?: Map<string, OutputPart[]>
  /** the disk that gets _SUCCESS for an output of no part */
  emptyOn?: string
  /** something changed that may call for a replica (a part committed, a copy failed, a worker came or went) */
  replicaDirty?: boolean
  /** since when a part has lacked a disk to be copied to (bounded: replicas.ts) */
  replicaWaitSinceMs?: number
  /** input files of the lineage of the datasets it reads that cannot be read as they were, found
   *  at submit (lineage.ts inputProblems): path → why */
  inputProblems?: Map<string, string>
  /** when each input file was last modified, per disk, as listed at submit (kept in the lineage of
   *  the datasets it persists; not stored: a job restarted by a new master records sizes only) */
  inputMtimes?: Map<string, Record<string, number>>
  /** recomputes planned per dataset it reads (bounded: recompute.ts) */
  recomputes?: Map<string, number>
}

/** An output replaced by a job that succeeded: a worker away when it was swapped in swaps it on
 *  its return. `atMs`: when the swap completed (workers lost before then missed it). Kept in the
 *  store. */
export type Overwrite = { path: string; job: JobId; submittedMs: number; atMs: number }

export type AttemptRun = {
  id: AttemptId
  job: JobId
  task: TaskId
  stage: number
  partition: number
  attempt: number
  worker: WorkerId
  incarnation: string
  state: AttemptState
  startedMs: number
  finishedMs: number | null
  metrics: TaskMetrics
  error: string | null
  /** a failure that counts toward max_task_attempts */
  counted?: boolean
  /** the master let this attempt move its output into place */
  committed?: boolean
  /** what a successful attempt produced, kept so a restarted master can go on from it */
  result?: { address: string; shuffle_outputs: { shuffle_id: string; sizes: number[] }[]; sinks: SinkOutput[]; replicas?: Replica[] }
}

export type MasterState = {
  workers: Map<WorkerId, WorkerRun>
  jobs: Map<JobId, JobRun>
  attempts: Map<AttemptId, AttemptRun>
  timeoutMs: number
  /** round-robin cursor over `ring` */
  rr: number
  /** the last step stopped launching at MAX_LAUNCHES_PER_STEP with tasks and room left: the
   *  driver posts schedule-due in a later turn to go on */
  scheduleMore?: boolean
  /** live workers that are not PAUSED, in registration order: who may get a task. Null once a
   *  worker joins or its status changes, and rebuilt on the next need (ringOf), not per event. */
  ring: WorkerRun[] | null
  incarnations: number
  /** worker losses so far: one loss costs a task at most one of its uncounted retries (retries.ts) */
  losses?: number
  /** outputs replaced, newest last: a worker that rejoins after one swaps it in too */
  overwrites: Overwrite[]
  /** the catalog: every output a job wrote, by path (catalog.ts) */
  outputs: Map<string, OutputRecord>
  /** persisted datasets by name (catalog.ts) */
  datasets: Map<string, DatasetRecord>
}

export const newState = (timeoutMs: number): MasterState =>
  ({ workers: new Map(), jobs: new Map(), attempts: new Map(), timeoutMs, rr: 0, ring: null, incarnations: 0, overwrites: [], outputs: new Map(), datasets: new Map() })

export const mayGetTasks = (w: WorkerRun): boolean => isLive(w) && w.status !== 'PAUSED' && w.staleOutputs === undefined && w.staleSettle === undefined

export const ringOf = (s: MasterState): WorkerRun[] =>
  s.ring ??= [...s.workers.values()].filter(mayGetTasks)

export const zeroMetrics = (): TaskMetrics =>
  ({ records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 })

export const isLive = (w: WorkerRun): boolean => w.status !== 'DEAD'

/** Where an overwriting job commits its parts of `path` until they are swapped in. A job id is
 *  the master's own text, never the user's, so it is safe as a path component. */
export const stagedPath = (path: string, job: JobId): string => `${path}/_temporary/${job}`
