// The master's decision vocabulary: the events step() takes (past-tense facts, stamped with the
// time), the actions it asks the driver to perform (imperatives), the store changes it records,
// and the timing both sides agree on. Every decision file imports these from here, so none of them
// imports another's implementation for its types.
import type { AttemptId, JobId, TaskId, WorkerId } from '../../api/ids'
import type { Heartbeat } from '../../api/heartbeat'
import type { OutputSettle, TaskReport, TaskSpec } from '../../api/tasks'
import type { AttemptRun, JobRun, MasterState, Overwrite, Replica } from './state'
import type { DatasetRecord, OutputRecord } from './catalog'

export type MasterEvent =
  | { kind: 'heartbeat-received'; nowMs: number; hb: Heartbeat }
  | { kind: 'lease-check-due'; nowMs: number }
  /** the last step launched its most (MAX_LAUNCHES_PER_STEP): launch on */
  | { kind: 'schedule-due'; nowMs: number }
  | { kind: 'job-submitted'; nowMs: number; job: JobRun }
  | { kind: 'task-reported'; nowMs: number; report: TaskReport }
  /** `unreachable`: that worker incarnation is gone (connection refused, or it answered that it is
   *  another incarnation); `permanent`: it answered 400/413/422, and the same spec would be refused
   *  again anywhere */
  | { kind: 'launch-failed'; nowMs: number; attempt: AttemptId; message: string; unreachable: boolean; permanent?: boolean }
  | { kind: 'commit-requested'; nowMs: number; attempt: AttemptId }
  | { kind: 'output-finalized'; nowMs: number; job: JobId; worker: WorkerId; incarnation: string }
  | { kind: 'finalize-failed'; nowMs: number; job: JobId; message: string; worker: WorkerId; incarnation: string; unreachable?: boolean }
  | { kind: 'job-cancel-requested'; nowMs: number; job: JobId }
  /** DELETE /datasets/:name */
  | { kind: 'dataset-delete-requested'; nowMs: number; name: string }
  | { kind: 'worker-unreachable'; nowMs: number; worker: WorkerId; incarnation: string }
  | { kind: 'stale-outputs-cleared'; nowMs: number; worker: WorkerId; incarnation: string; ok: boolean }
  | { kind: 'replica-made'; nowMs: number; job: JobId; stage: number; partition: number; node: string; worker: WorkerId; incarnation: string }
  | { kind: 'replica-failed'; nowMs: number; job: JobId; stage: number; partition: number; node: string; worker: WorkerId; incarnation: string; message: string }

/** One output to swap in on a worker: the previous entries of `path` go, and the job's committed
 *  parts move from `staged` into it; where none is staged, files older than `olderThanMs` (from
 *  before the job) go (FinalizeRequest.swaps). */
export type OutputSwap = { path: string; staged: string; olderThanMs: number }

export type MasterAction =
  /** copy a committed part (`file`, relative to the data dir) from the worker at `from` to this one's disk */
  | { kind: 'replicate'; address: string; worker: WorkerId; incarnation: string; job: JobId; stage: number; partition: number; node: string; file: string; from: string }
  | { kind: 'launch'; worker: WorkerId; address: string; spec: TaskSpec }
  | { kind: 'kill'; address: string; attempt: AttemptId }
  /** remove the job's shuffle data and temporary files; `outputs` are removed whole (a failed or
   *  cancelled job leaves no partial output), `keep` only lose their _temporary folder */
  | { kind: 'drop-job-data'; address: string; job: JobId; outputs: string[]; keepOutputs: boolean }
  /** every part is committed: `swaps` replace the previous output with the staged parts on this
   *  worker's disk, then `paths` get _SUCCESS (asked of one worker only) */
  | { kind: 'finalize-output'; address: string; job: JobId; paths: string[]; swaps: OutputSwap[]; settle: OutputSettle[]; worker: WorkerId; incarnation: string }
  /** outputs replaced while this worker was away: its disk may still hold the previous parts */
  | { kind: 'clear-stale-outputs'; address: string; worker: WorkerId; incarnation: string; swaps: OutputSwap[]; settle: OutputSettle[] }

// An attempt change carries the row itself: a finished job's attempts leave memory in the same step.
export type StoreChange = { kind: 'job'; job: JobId } | { kind: 'job-created'; job: JobId } | { kind: 'attempt'; attempt: AttemptRun }
  | { kind: 'worker'; worker: WorkerId } | { kind: 'overwrite'; overwrite: Overwrite } | { kind: 'output'; output: OutputRecord }
  /** a persisted dataset recorded or changed; null: deleted */
  | { kind: 'dataset'; name: string; dataset: DatasetRecord | null }
  /** copies of a task's committed parts, kept with its committed attempt's row */
  | { kind: 'replicas'; task: TaskId; replicas: Replica[] }

export type Step = { state: MasterState; actions: MasterAction[]; changes: StoreChange[] }

/** How long one launch request may take. A launch queued behind another request to the same worker
 *  waits for that one first (launcher.ts), so a launch is answered within twice this. */
export const LAUNCH_TIMEOUT_MS = 5_000
/** A heartbeat that does not list an attempt launched less than this ago proves nothing: the launch
 *  may still be on its way. Longer than any launch may take, or a slow launch would be declared
 *  LOST while it is still accepted, and run as a zombie beside its re-run. */
export const LAUNCH_GRACE_MS = 2 * LAUNCH_TIMEOUT_MS + 1_000

/** Failures that are not the task's fault (its worker lost, a launch refused, a fetch failed, an
 *  interrupted commit) do not count toward max_task_attempts, but they are bounded too: after this
 *  many in a row, one task fails the job, saying what kept failing. */
export const MAX_UNCOUNTED_RETRIES = 8
/** Consecutive fetch-failure rounds of one stage (each re-planning map outputs) before the job
 *  fails, as Spark's 4 consecutive stage attempts. A task of the stage succeeding resets it. */
export const MAX_FETCH_FAILURE_ROUNDS = 4
/** Launches one step makes at most: a burst (a stage that starts on a thousand workers, or whose
 *  tasks just proved short enough to queue ahead) goes out over several turns of the event loop,
 *  with heartbeats and reports answered between them, instead of in one turn that holds them all. */
export const MAX_LAUNCHES_PER_STEP = 256
/** Collected for at most 64 MiB (UTF-8 of the values' JSON), counted as reports arrive. */
export const COLLECT_LIMIT_BYTES = 64 * 1024 * 1024
