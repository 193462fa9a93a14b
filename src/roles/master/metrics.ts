// What the master's GET /metrics tells Prometheus: jobs by state and how long ended ones took, tasks
// of running jobs by state, task attempts running now, task attempts ended by how with their
// durations and bytes, the workers as the master sees them; then its process and HTTP metrics
// (process-metrics.ts). Read-only over the scheduler's in-memory state and the store; decides
// nothing.
//
// Counters only count what has ended: an attempt ends once (RUNNING → SUCCEEDED, FAILED, LOST or
// KILLED, never again), so a count of ended attempts only grows; running attempts are a gauge.
// Finished jobs' attempts live only in the store, and never change once the job has finished, so
// each finished job is read once and added to running totals (what is kept per job is its id);
// running jobs' ended attempts are counted from memory at each scrape. The names never start with
// minispark_worker_: those are a worker's own, and a sum over every target must not mix the two.
import { Histogram, MetricsText, type Sample } from '../../api/metrics'
import { FINAL_JOB_STATES, type AttemptState, type JobState, type TaskInfo } from '../../api/jobs'
import type { JobId } from '../../api/ids'
import type { TaskMetrics } from '../../api/tasks'
import type { WorkerStatus } from '../../api/heartbeat'
import { VERSION } from '../http'
import type { ProcessMetrics } from '../process-metrics'
import type { MasterState, TaskRunState } from './state'
import type { Store } from './store'

const JOB_STATES: readonly JobState[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED']
const TASK_STATES: readonly TaskRunState[] = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED']
/** How an attempt can end: the states a counter may count. */
const ENDED_STATES: readonly AttemptState[] = ['SUCCEEDED', 'FAILED', 'LOST', 'KILLED']
const ENDED: ReadonlySet<AttemptState> = new Set(ENDED_STATES)
const ENDED_JOB_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED']
const WORKER_STATUSES: readonly WorkerStatus[] = ['IDLE', 'BUSY', 'PAUSED', 'DEAD']
/** Seconds: from a quick map task to a long reduce. */
export const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const
/** Seconds: from a job of one small file to a batch run of hours. */
export const JOB_DURATION_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600] as const
/** Attempts whose duration is theirs: LOST and KILLED end when the master noticed, not when they stopped. */
const TIMED: ReadonlySet<AttemptState> = new Set(['SUCCEEDED', 'FAILED'])

/** Sums over ended task attempts, and over ended jobs' durations. */
class AttemptTotals {
  readonly byState = new Map<AttemptState, number>(ENDED_STATES.map(s => [s, 0]))
  readonly jobDurations = new Map<JobState, Histogram>(ENDED_JOB_STATES.map(s => [s, new Histogram(JOB_DURATION_BUCKETS)]))
  readonly durations = new Map<AttemptState, Histogram>([...TIMED].map(s => [s, new Histogram(DURATION_BUCKETS)]))
  shuffleWritten = 0
  shuffleRead = 0
  spilled = 0
  recordsIn = 0
  recordsOut = 0

  /** Attempts not ended yet are not counted: they would leave the count when they end. */
  addAttempt(state: AttemptState, startedMs: number | null, finishedMs: number | null, m: TaskMetrics): void {
    if (!ENDED.has(state)) return
    this.byState.set(state, (this.byState.get(state) ?? 0) + 1)
    if (startedMs !== null && finishedMs !== null) this.durations.get(state)?.observe(Math.max(0, finishedMs - startedMs) / 1000)
    this.shuffleWritten += m.shuffle_bytes_written
    this.shuffleRead += m.shuffle_bytes_read
    this.spilled += m.spilled_bytes
    this.recordsIn += m.records_in
    this.recordsOut += m.records_out
  }

  /** From submit to end: what the user waited. */
  addJob(state: JobState, submittedMs: number, finishedMs: number | null): void {
    if (finishedMs !== null) this.jobDurations.get(state)?.observe(Math.max(0, finishedMs - submittedMs) / 1000)
  }

  add(o: AttemptTotals): void {
    for (const [s, n] of o.byState) this.byState.set(s, (this.byState.get(s) ?? 0) + n)
    for (const [s, h] of o.jobDurations) this.jobDurations.get(s)?.add(h)
    for (const [s, h] of o.durations) this.durations.get(s)?.add(h)
    this.shuffleWritten += o.shuffleWritten
    this.shuffleRead += o.shuffleRead
    this.spilled += o.spilled
    this.recordsIn += o.recordsIn
    this.recordsOut += o.recordsOut
  }
}

const ms = (iso: string | null): number | null => iso === null ? null : Date.parse(iso)

function totalsOfStored(tasks: readonly TaskInfo[]): AttemptTotals {
  const t = new AttemptTotals()
  for (const a of tasks) t.addAttempt(a.state, ms(a.started_at), ms(a.finished_at), a)
  return t
}

export type MasterMetricsDeps = { state: MasterState; store: Store; process: ProcessMetrics }

/** Returns the scrape function; it keeps the totals of finished jobs between scrapes. */
export function masterMetrics(deps: MasterMetricsDeps): (nowMs: number) => Promise<string> {
  const finishedTotals = new AttemptTotals()
  let counted = new Set<string>()
  return async nowMs => {
    const { state, store } = deps
    // Jobs: every job the store knows, the live state winning for jobs still in memory. A job
    // pruned from the store leaves `counted` too (its attempts stay in the totals).
    const jobs = new Map<JobState, number>(JOB_STATES.map(s => [s, 0]))
    const stillStored = new Set<string>()
    for (const row of store.jobStates()) {
      const st = (state.jobs.get(row.job_id as JobId)?.state ?? row.state) as JobState
      jobs.set(st, (jobs.get(st) ?? 0) + 1)
      // Read once the store says the job ended: then its attempts there are final too.
      const storedState = row.state as JobState
      if (FINAL_JOB_STATES.includes(storedState) && !counted.has(row.job_id)) {
        finishedTotals.add(totalsOfStored(store.tasks(row.job_id as JobId)))
        finishedTotals.addJob(storedState, row.submitted_ms, row.finished_ms)
        counted.add(row.job_id)
      }
      if (counted.has(row.job_id)) stillStored.add(row.job_id)
    }
    counted = stillStored
    const attempts = new AttemptTotals()
    attempts.add(finishedTotals)
    let running = 0
    for (const a of state.attempts.values()) {
      if (counted.has(a.job)) continue
      if (a.state === 'RUNNING') running++
      attempts.addAttempt(a.state, a.startedMs, a.finishedMs, a.metrics)
    }
    // Tasks of unfinished jobs, by where they are now.
    const tasks = new Map<TaskRunState, number>(TASK_STATES.map(s => [s, 0]))
    for (const job of state.jobs.values()) {
      if (FINAL_JOB_STATES.includes(job.state)) continue
      for (const stage of job.stages) for (const t of stage.tasks) tasks.set(t.state, (tasks.get(t.state) ?? 0) + 1)
    }
    const workers = [...state.workers.values()].sort((a, b) => (a.id < b.id ? -1 : 1))
    const byStatus = new Map<WorkerStatus, number>(WORKER_STATUSES.map(s => [s, 0]))
    for (const w of workers) byStatus.set(w.status, (byStatus.get(w.status) ?? 0) + 1)
    const per = (f: (w: (typeof workers)[number]) => number): Sample[] => workers.map(w => [{ worker: w.id }, f(w)])

    const own = new MetricsText()
      .gauge('minispark_build_info', 'the running Mini-Spark version', [[{ version: VERSION, role: 'master' }, 1]])
      .gauge('minispark_jobs', 'jobs by state (those the state file keeps)', [...jobs].map(([s, n]) => [{ state: s }, n]))
      .gauge('minispark_jobs_in_memory', 'jobs the scheduler holds in memory: the unfinished ones (ended jobs are read from the store)', state.jobs.size)
      .histogram('minispark_job_duration_seconds', 'how long ended jobs took from submit to end, by how they ended', [...attempts.jobDurations].map(([s, h]) => [{ state: s }, h]))
      .gauge('minispark_tasks', 'tasks of unfinished jobs by state', [...tasks].map(([s, n]) => [{ state: s }, n]))
      .gauge('minispark_task_attempts_running', 'task attempts launched and not ended yet', running)
      .counter('minispark_task_attempts_total', 'task attempts that ended, by how: SUCCEEDED, FAILED, LOST (its worker lost), KILLED', [...attempts.byState].map(([s, n]) => [{ state: s }, n]))
      .histogram('minispark_task_duration_seconds', 'how long task attempts ran, by how they ended', [...attempts.durations].map(([s, h]) => [{ state: s }, h]))
      .counter('minispark_shuffle_written_bytes_total', 'shuffle bytes written by ended task attempts (map side)', attempts.shuffleWritten)
      .counter('minispark_shuffle_read_bytes_total', 'shuffle bytes fetched by ended task attempts (reduce side)', attempts.shuffleRead)
      .counter('minispark_spilled_bytes_total', 'bytes ended task attempts spilled to disk', attempts.spilled)
      .counter('minispark_records_read_total', 'records ended task attempts read', attempts.recordsIn)
      .counter('minispark_records_written_total', 'records ended task attempts produced', attempts.recordsOut)
      .gauge('minispark_workers', 'workers by status', [...byStatus].map(([s, n]) => [{ status: s }, n]))
      .gauge('minispark_workers_alive', 'workers not DEAD', workers.filter(w => w.status !== 'DEAD').length)
      .gauge('minispark_master_worker_up', '1 while the worker holds its lease, 0 once DEAD', per(w => (w.status === 'DEAD' ? 0 : 1)))
      .gauge('minispark_master_worker_heartbeat_age_seconds', 'seconds since the master last heard from the worker', per(w => Math.max(0, nowMs - w.lastSeenMs) / 1000))
      .gauge('minispark_master_worker_memory_bytes', 'resident memory of the worker process, from its last heartbeat', per(w => w.memMb * 1048576))
      .gauge('minispark_master_worker_active_tasks', 'task attempts the worker runs or queues, from its last heartbeat', per(w => (w.status === 'DEAD' ? 0 : w.activeTasks)))
      .gauge('minispark_master_worker_slots', 'task threads of the worker', per(w => w.slots))
      .toString()
    return own + await deps.process.text()
  }
}
