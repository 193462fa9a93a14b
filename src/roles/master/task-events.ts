// Task events: reports, launch failures and the output-commit question. Part of step(); pure.
import type { AttemptId, WorkerId } from '../../api/ids'
import type { SinkOutput, TaskReport } from '../../api/tasks'
import { COLLECT_LIMIT_BYTES, type Step } from './events'
import { endAttempt, requeue } from './attempts'
import { collectTooLarge, failJob } from './job-end'
import { countFetchFailureRound, retryLost, retryTask } from './retries'
import { isLive, type AttemptRun, type JobRun, type MasterState, type StageRun, type TaskRun } from './state'
import { loseWorker } from './worker-events'
import { allSucceeded, setTaskState } from './task-index'
import { noteRun } from './queue-ahead'

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
  if (r.state === 'SUCCEEDED') { onSucceeded(s, job, stage, task, a, r, nowMs, out); return }
  const reported = r.failure ?? { reason: 'task-error' as const, message: 'the task failed without a reason' }
  // Error texts come from user code: keep what the store and the API carry bounded.
  const f = { ...reported, message: reported.message.slice(0, MAX_ERROR_CHARS), ...(reported.record === undefined ? {} : { record: reported.record.slice(0, 1024) }) }
  endAttempt(s, a.id, 'FAILED', f.message, nowMs, out)
  const from = s.workers.get((f.from_worker ?? '') as WorkerId)
  if (f.reason === 'fetch-failed' && from !== undefined) { onFetchFailed(s, job, stage, task, a, from.id, f.unreachable === true, f.message, nowMs, out, f.missing_attempt); return }
  // Not the task's fault: it does not count (but it is bounded: retries.ts).
  if (f.reason === 'killed' || f.reason === 'interrupted') { retryLost(s, a, `${f.reason}: ${f.message}`, nowMs, out); return }
  task.current = null
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

function onSucceeded(s: MasterState, job: JobRun, stage: StageRun, task: TaskRun, a: AttemptRun, r: TaskReport, nowMs: number, out: Step): void {
  // Kept with the attempt in the store, so a restarted master knows where map outputs are.
  a.result = { address: s.workers.get(a.worker)?.address ?? '', shuffle_outputs: r.shuffle_outputs, sinks: r.sinks }
  endAttempt(s, a.id, 'SUCCEEDED', null, nowMs, out)
  noteRun(stage, nowMs - a.startedMs)
  setTaskState(stage, task, 'SUCCEEDED')
  task.current = null
  task.lostRuns = 0
  stage.fetchFailureRounds = 0
  task.sinks = r.sinks
  const w = s.workers.get(a.worker)
  if (r.sinks.some(o => o.part !== undefined)) {
    job.replicaDirty = true
    if (w !== undefined) task.home = { worker: w.id, disk: w.disk }
  }
  task.output = r.shuffle_outputs.length === 0 || w === undefined ? null : {
    worker: a.worker, address: w.address, attempt: a.id, atMs: nowMs,
    sizes: new Map(r.shuffle_outputs.map(o => [o.shuffle_id, o.sizes])),
  }
  // Counted as reports arrive: a collect too large fails its job before the rest of it reaches
  // the master's memory, not at the end.
  const collected = collectBytes(r.sinks)
  if (collected.bytes > 0 || (task.collectedBytes ?? 0) > 0) {
    job.collectedBytes = (job.collectedBytes ?? 0) - (task.collectedBytes ?? 0) + collected.bytes
    task.collectedBytes = collected.bytes
    if (job.collectedBytes > COLLECT_LIMIT_BYTES) {
      failJob(s, job.id, { message: collectTooLarge(collected.node ?? '?'), node_id: collected.node ?? null, task_id: null, record: null }, nowMs, out)
      return
    }
  }
  if (allSucceeded(stage)) {
    stage.state = 'SUCCEEDED'
    out.changes.push({ kind: 'job', job: job.id })
  }
}

function collectBytes(sinks: readonly SinkOutput[]): { bytes: number; node: string | undefined } {
  let bytes = 0
  let node: string | undefined
  for (const o of sinks) {
    if (o.op !== 'collect' || o.values === undefined || o.values.length === 0) continue
    bytes += Buffer.byteLength(JSON.stringify(o.values))
    node ??= o.node_id
  }
  return { bytes, node }
}

// A fetch failure is not the reduce task's fault: it does not count. The map outputs on that
// worker are lost, so they are recomputed before the task runs again; a peer that refuses
// connections is dead, and everything it held is recomputed at once. A report about an
// incarnation that has since been replaced changes nothing but the task: the new incarnation
// holds none of what the attempt was told to fetch, and must not be declared lost for it.
function onFetchFailed(s: MasterState, job: JobRun, stage: StageRun, task: TaskRun, a: AttemptRun, fromId: WorkerId, unreachable: boolean,
  message: string, nowMs: number, out: Step, missing?: string): void {
  const from = s.workers.get(fromId)!
  const why = `fetching from worker ${from.id} failed: ${message}`
  // A persisted block its holder does not have any more is lost for good: the task's next launch
  // fails the job naming it (scheduler.ts), instead of asking again.
  const root = stage.plan.root
  if (root.kind === 'cached' && root.dataset !== undefined && missing !== undefined) {
    const d = s.datasets.get(root.dataset.name)
    const b = d?.owner === root.dataset.owner ? d.blocks.find(x => x.attempt === missing && x.worker === fromId) : undefined
    if (d !== undefined && b !== undefined && b.lost !== true) { b.lost = true; out.changes.push({ kind: 'dataset', name: d.name, dataset: d }) }
  }
  const sameIncarnation = isLive(from) && from.joinedMs <= a.startedMs
  let replanned = false
  if (sameIncarnation && unreachable) {
    loseWorker(s, from, `worker ${from.id} refuses connections`, nowMs, out)
    replanned = true
  } else if (sameIncarnation) {
    // A worker that answers but lacks one block (a cached partition it dropped under memory
    // pressure) still holds the others: only that one is recomputed.
    replanned = forgetOutputsOn(job, from.id, a.startedMs, missing)
  }
  if (job.state !== 'RUNNING') return
  // A block its holder dropped on purpose (a memory-level cached partition) is an expected
  // recompute, not a peer in doubt: several readers may meet one in a row. It is bounded by the
  // reader's own retries in a row instead.
  if (replanned && missing === undefined && !countFetchFailureRound(s, job, stage, why, nowMs, out)) return
  // A peer that is gone (lost now or before) is a loss; one that answers badly is bounded by the
  // fetch-failure rounds above and by the retry count.
  if (task.current === a.id) retryTask(s, job, stage, task, why, nowMs, out, unreachable || !isLive(from) ? 'loss' : 'other')
}

/** Map outputs on `worker` that an attempt started at `beforeMs` was told of (only the one of
 *  attempt `only`, when given); true if any. */
function forgetOutputsOn(job: JobRun, worker: WorkerId, beforeMs: number, only?: string): boolean {
  let any = false
  for (const stage of job.stages) {
    if (stage.plan.shuffle_writes.length === 0) continue
    for (const t of stage.tasks) {
      if (only !== undefined && t.output?.attempt !== only) continue
      if (t.state === 'SUCCEEDED' && t.output?.worker === worker && t.output.atMs <= beforeMs) {
        requeue(stage, t)
        stage.state = 'RUNNING'
        any = true
      }
    }
  }
  return any
}

/** `permanent`: the worker answered 400/413/422 to the spec itself (too large, malformed): every
 *  worker would, so the job fails at once, saying why, instead of launching it again and again. */
export function onLaunchFailed(s: MasterState, attempt: AttemptId, message: string, unreachable: boolean, permanent: boolean, nowMs: number, out: Step): void {
  const a = s.attempts.get(attempt)
  if (a === undefined || a.state !== 'RUNNING') return
  const why = `could not start on ${a.worker}: ${message}`
  endAttempt(s, attempt, 'LOST', why, nowMs, out)
  const job = s.jobs.get(a.job)
  if (permanent && job !== undefined) {
    failJob(s, job.id, { message: `worker ${a.worker} refused task ${a.task}, as any worker would: ${message}`, node_id: null, task_id: a.task, record: null }, nowMs, out)
    return
  }
  // The worker first, then the task: a retry that a loss causes is counted against that loss.
  const w = s.workers.get(a.worker)
  if (unreachable && w !== undefined && isLive(w) && w.incarnation === a.incarnation) loseWorker(s, w, `worker ${w.id} refuses connections`, nowMs, out)
  retryLost(s, a, why, nowMs, out, unreachable ? 'loss' : 'other')
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
