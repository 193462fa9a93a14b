// Task events: reports, launch failures and the output-commit question. Part of step(); pure.
import type { AttemptId, WorkerId } from '../../api/ids'
import type { TaskReport } from '../../api/tasks'
import { failJob, type Step } from './scheduler'
import { loseWorker, requeue } from './worker-events'
import type { JobRun, MasterState } from './state'
import { allSucceeded, setTaskState } from './task-index'

const MAX_ERROR_CHARS = 4096

export function onReport(s: MasterState, r: TaskReport, nowMs: number, out: Step): void {
  const a = s.attempts.get(r.attempt_id as AttemptId)
  // Late messages change nothing: a superseded attempt, or one from a dead incarnation.
  if (a === undefined || a.state !== 'RUNNING' || a.incarnation !== r.incarnation) return
  const job = s.jobs.get(a.job)
  const stage = job?.stages[a.stage]
  const task = stage?.tasks[a.partition]
  if (job === undefined || stage === undefined || task === undefined || task.current !== a.id) return
  a.metrics = r.metrics
  if (r.state === 'SUCCEEDED') {
    // Kept with the attempt in the store, so a restarted master knows where map outputs are.
    a.result = { address: s.workers.get(a.worker)?.address ?? '', shuffle_outputs: r.shuffle_outputs, sinks: r.sinks }
    endAttempt(s, a.id, 'SUCCEEDED', null, nowMs, out)
    setTaskState(stage, task, 'SUCCEEDED')
    task.current = null
    task.sinks = r.sinks
    const w = s.workers.get(a.worker)
    task.output = r.shuffle_outputs.length === 0 || w === undefined ? null : {
      worker: a.worker, address: w.address, attempt: a.id,
      sizes: new Map(r.shuffle_outputs.map(o => [o.shuffle_id, o.sizes])),
    }
    if (allSucceeded(stage)) {
      stage.state = 'SUCCEEDED'
      out.changes.push({ kind: 'job', job: job.id })
    }
    return
  }
  const reported = r.failure ?? { reason: 'task-error' as const, message: 'the task failed without a reason' }
  // Error texts come from user code: keep what the store and the API carry bounded.
  const f = { ...reported, message: reported.message.slice(0, MAX_ERROR_CHARS), ...(reported.record === undefined ? {} : { record: reported.record.slice(0, 1024) }) }
  endAttempt(s, a.id, 'FAILED', f.message, nowMs, out)
  task.current = null
  const from = s.workers.get((f.from_worker ?? '') as WorkerId)
  if ((f.reason === 'fetch-failed' && from !== undefined) || f.reason === 'killed') {
    // Not the task's fault: it does not count. A fetch failure means the map outputs on that
    // worker are lost, so they are recomputed before the task runs again; a peer that refuses
    // connections is dead, and everything it held is recomputed at once.
    requeue(stage, task)
    if (from !== undefined && f.unreachable === true) loseWorker(s, from, `worker ${from.id} refuses connections`, nowMs, out)
    else if (from !== undefined) forgetOutputsOn(job, from.id)
    return
  }
  // A re-run prefers another worker: the fault may be the machine's (a full disk, say).
  ;(task.failedOn ??= []).push(a.worker)
  task.failures++
  a.counted = true
  if (task.failures >= job.maxAttempts || f.reason === 'fatal') {
    setTaskState(stage, task, 'FAILED')
    failJob(s, job.id, { message: f.message, node_id: f.node_id ?? null, task_id: task.id, record: f.record ?? null }, nowMs, out)
  } else {
    setTaskState(stage, task, 'PENDING')
  }
}

function forgetOutputsOn(job: JobRun, worker: WorkerId): void {
  for (const stage of job.stages) {
    for (const t of stage.tasks) {
      if (t.state === 'SUCCEEDED' && t.output?.worker === worker && stage.plan.shuffle_writes.length > 0) {
        requeue(stage, t)
        stage.state = 'RUNNING'
      }
    }
  }
}

export function onLaunchFailed(s: MasterState, attempt: AttemptId, message: string, unreachable: boolean, nowMs: number, out: Step): void {
  const a = s.attempts.get(attempt)
  if (a === undefined || a.state !== 'RUNNING') return
  endAttempt(s, attempt, 'LOST', `could not start on ${a.worker}: ${message}`, nowMs, out)
  const stage = s.jobs.get(a.job)?.stages[a.stage]
  const task = stage?.tasks[a.partition]
  if (stage !== undefined && task !== undefined && task.current === attempt) requeue(stage, task)
  const w = s.workers.get(a.worker)
  if (unreachable && w !== undefined && w.incarnation === a.incarnation) loseWorker(s, w, `worker ${w.id} refuses connections`, nowMs, out)
}

// Only the first attempt of a partition to ask may move its output into place, unless that
// attempt has since failed or been lost (then its output never reached the master as a success).
export function onCommitRequested(s: MasterState, attempt: AttemptId, out: Step): void {
  const a = s.attempts.get(attempt)
  if (a === undefined || a.state !== 'RUNNING') return
  const task = s.jobs.get(a.job)?.stages[a.stage]?.tasks[a.partition]
  if (task === undefined || task.current !== attempt) return
  const holder = task.committer === null ? undefined : s.attempts.get(task.committer)
  if (holder === undefined || holder.state === 'FAILED' || holder.state === 'LOST' || holder.state === 'KILLED') {
    if (task.committer !== attempt) { task.committer = attempt; a.committed = true; out.changes.push({ kind: 'attempt', attempt: a }) }
  }
}

export function commitAllowed(s: MasterState, attempt: AttemptId): boolean {
  const a = s.attempts.get(attempt)
  const task = a && s.jobs.get(a.job)?.stages[a.stage]?.tasks[a.partition]
  return task?.committer === attempt
}

export function endAttempt(s: MasterState, id: AttemptId, state: 'SUCCEEDED' | 'FAILED' | 'LOST' | 'KILLED', error: string | null, nowMs: number, out: Step): void {
  const a = s.attempts.get(id)
  if (a === undefined || a.state !== 'RUNNING') return
  a.state = state
  a.finishedMs = nowMs
  a.error = error
  s.workers.get(a.worker)?.running.delete(id)
  out.changes.push({ kind: 'attempt', attempt: a })
}

