// What the master's log says, derived from what step() decided: the event it was given and the
// changes it returned, read against the state after it. Jobs submitted, started and ended, workers
// registered, DEAD and back, task attempts that failed or were lost and run again, user functions
// that threw (with the node and the record). Pure: the driver's shell writes the lines.
//
// It remembers the last state it told of each job and worker, so that a line is written once per
// transition however many changes a step records; a job is forgotten when it ends.
import type { AttemptId, JobId, WorkerId } from '../../api/ids'
import type { JobState } from '../../api/jobs'
import type { MasterEvent, Step } from './events'
import { FINAL_JOB_STATES } from '../../api/jobs'
import type { AttemptRun, MasterState } from './state'
import { oneLine } from '../log'

export type LogLine = { level: 'debug' | 'info' | 'warn' | 'error'; event: string; msg: string; fields: Record<string, unknown> }

/** A record or error quoted in a log line is cut here: the line is for finding it, not for holding it. */
const RECORD_CHARS = 200
const ERROR_CHARS = 1000

export class StepLog {
  private readonly jobs = new Map<JobId, JobState>()
  private readonly workers = new Map<WorkerId, { incarnation: string; dead: boolean }>()

  /** `s`: the state the driver starts from (recovered after a restart: nothing in it is news).
   *  `debug`: also a line per attempt launched and ended (else none is built). */
  constructor(s: MasterState, private readonly debug = true) {
    for (const j of s.jobs.values()) this.jobs.set(j.id, j.state)
    for (const w of s.workers.values()) this.workers.set(w.id, { incarnation: w.incarnation, dead: w.status === 'DEAD' })
  }

  linesOf(e: MasterEvent, out: Step, s: MasterState): LogLine[] {
    const lines: LogLine[] = []
    if (e.kind === 'job-submitted') {
      const j = e.job
      lines.push({ level: 'info', event: 'job-submitted', msg: `job ${j.id} submitted`,
        fields: { job: j.id, name: j.name, stages: j.stages.length, tasks: j.stages.reduce((n, st) => n + st.plan.partitions, 0) } })
    }
    const udf = e.kind === 'task-reported' && e.report.failure?.reason === 'udf-error' ? e.report : undefined
    const seen = new Set<string>()
    for (const c of out.changes) {
      if (c.kind === 'job' || c.kind === 'job-created') {
        if (!seen.has(c.job)) { seen.add(c.job); this.job(s, c.job, lines) }
      } else if (c.kind === 'worker') {
        if (!seen.has(c.worker)) { seen.add(c.worker); this.worker(s, c.worker, e, out, lines) }
      } else if (c.kind === 'attempt') {
        this.attempt(s, c.attempt, e.nowMs, udf?.attempt_id === c.attempt.id ? udf.failure : undefined, lines)
      }
    }
    return lines
  }

  private job(s: MasterState, id: JobId, lines: LogLine[]): void {
    const j = s.jobs.get(id)
    if (j === undefined || this.jobs.get(id) === j.state) return
    this.jobs.set(id, j.state)
    if (j.state === 'RUNNING') {
      lines.push({ level: 'info', event: 'job-started', msg: `job ${id} started`,
        fields: { job: id, name: j.name, queued_ms: (j.startedMs ?? j.submittedMs) - j.submittedMs } })
    } else if (FINAL_JOB_STATES.includes(j.state)) {
      this.jobs.delete(id)
      const err = j.error
      lines.push({ level: 'info', event: 'job-finished', msg: `job ${id} ${j.state}${err ? `: ${oneLine(err.message)}` : ''}`,
        fields: { job: id, name: j.name, state: j.state, duration_ms: (j.finishedMs ?? j.submittedMs) - j.submittedMs,
          ...(err ? { error: err.message.slice(0, ERROR_CHARS), node: err.node_id, task: err.task_id } : {}) } })
    }
  }

  private worker(s: MasterState, id: WorkerId, e: MasterEvent, out: Step, lines: LogLine[]): void {
    const w = s.workers.get(id)
    if (w === undefined) return
    const before = this.workers.get(id)
    const dead = w.status === 'DEAD'
    this.workers.set(id, { incarnation: w.incarnation, dead })
    const fields = { worker: id, address: w.address, incarnation: w.incarnation }
    if (before === undefined) {
      lines.push({ level: 'info', event: 'worker-registered', msg: `worker ${id} registered at ${oneLine(w.address, 100)}`, fields: { ...fields, slots: w.slots } })
    } else if (before.incarnation !== w.incarnation) {
      const was = before.dead ? 'DEAD' : 'restarted'
      lines.push({ level: 'info', event: 'worker-rejoined', msg: `worker ${id} rejoined (it was ${was}) as a new incarnation`, fields: { ...fields, slots: w.slots, was } })
    } else if (dead && !before.dead) {
      const lost = out.changes.filter(c => c.kind === 'attempt' && c.attempt.worker === id && c.attempt.state === 'LOST').length
      const reason = e.kind === 'lease-check-due' ? `no heartbeat for ${s.timeoutMs} ms` : 'it refuses connections'
      lines.push({ level: 'info', event: 'worker-dead', msg: `worker ${id} DEAD: ${reason}`, fields: { ...fields, reason, lost_attempts: lost } })
    }
  }

  private attempt(s: MasterState, a: AttemptRun, nowMs: number, udf: { node_id?: string | undefined; record?: string | undefined; message: string } | undefined, lines: LogLine[]): void {
    const fields = { job: a.job, stage: a.stage, task: a.task, attempt: a.id, worker: a.worker }
    if (a.state === 'RUNNING') {
      if (this.debug && a.startedMs === nowMs && a.committed !== true) lines.push({ level: 'debug', event: 'task-launched', msg: `attempt ${a.id} launched on ${a.worker}`, fields })
      return
    }
    if (a.finishedMs !== nowMs) return
    const job = s.jobs.get(a.job)
    const task = job?.stages[a.stage]?.tasks[a.partition]
    // Run again: its job goes on and the task is back in the queue (another attempt may also have
    // taken over, or the job may have failed because of this one: then the job's line says why).
    const again = job !== undefined && (job.state === 'RUNNING' || job.state === 'QUEUED') && task !== undefined && task.state !== 'FAILED'
    const duration_ms = nowMs - a.startedMs
    if (udf !== undefined) {
      lines.push({ level: 'warn', event: 'udf-failed', msg: `node ${udf.node_id ?? '?'} threw in attempt ${a.id}: ${oneLine(udf.message)}${again ? '; the task runs again' : ''}`,
        fields: { ...fields, node: udf.node_id ?? null, record: udf.record === undefined ? null : udf.record.slice(0, RECORD_CHARS), error: udf.message.slice(0, ERROR_CHARS),
          failures: task?.failures ?? null, max_attempts: job?.maxAttempts ?? null, retry: again } })
      return
    }
    if ((a.state === 'FAILED' || a.state === 'LOST') && again) {
      lines.push({ level: 'warn', event: 'task-retry', msg: `attempt ${a.id} ${a.state} on ${a.worker}: ${oneLine(a.error ?? 'no reason given')}; the task runs again`,
        fields: { ...fields, state: a.state, reason: a.error, counted: a.counted === true, failures: task?.failures ?? null, max_attempts: job?.maxAttempts ?? null, duration_ms } })
      return
    }
    if (this.debug) lines.push({ level: 'debug', event: 'task-ended', msg: `attempt ${a.id} ${a.state}`, fields: { ...fields, state: a.state, duration_ms, ...(a.error ? { reason: a.error } : {}) } })
  }
}

/** What a master found in its state file at start: said once, when there was anything. */
export function recoveryLine(s: MasterState): LogLine | null {
  if (s.jobs.size === 0 && s.workers.size === 0) return null
  const jobs = [...s.jobs.keys()]
  const running = [...s.attempts.keys()] as AttemptId[]
  return {
    level: 'info', event: 'recovered',
    msg: `recovered ${jobs.length} unfinished job(s) and ${s.workers.size} known worker(s) from the state file; workers get a heartbeat timeout to come back`,
    fields: { jobs: jobs.slice(0, 50), unfinished_jobs: jobs.length, running_attempts: running.length, workers: s.workers.size,
      dead_workers: [...s.workers.values()].filter(w => w.status === 'DEAD').length },
  }
}
