// A restarted master rebuilds its model from the store: unfinished jobs with their plans, the
// tasks that already succeeded (and where their map outputs are), the attempts that may still be
// running, and the workers it knew. Workers get a full heartbeat timeout to come back before
// anything they held is declared lost (DESIGN: "the master can die").
import type { AttemptId, JobId, WorkerId } from '../../api/ids'
import type { JobRequest } from '../../api/jobs'
import type { SinkOutput } from '../../api/tasks'
import { newState, type AttemptRun, type JobRun, type MasterState, type StageRun, type TaskRun, type WorkerRun } from './state'
import type { StoredAttempt, StoredJob, StoredPlan, Store } from './store'
import { allSucceeded, indexTasks } from './task-index'
import { indexHolders } from './placement'
import { liveDisks } from './catalog'
import { requeueLostParts } from './worker-events'
import { refreshDatasetRoots } from './recompute'

export function recoverState(store: Store, nowMs: number, timeoutMs: number): MasterState {
  const s = newState(timeoutMs)
  for (const w of store.workers()) {
    // A DEAD worker is kept, with when it was last known alive: on its return it swaps in the
    // outputs replaced since then, as it would have had this master not restarted.
    const dead = w.status === 'DEAD'
    const run: WorkerRun = {
      id: w.worker_id as WorkerId, address: w.address, disk: w.disk ?? `own-${w.worker_id}`, status: w.status as WorkerRun['status'], slots: w.slots,
      incarnation: w.incarnation, lastSeenMs: dead ? w.last_seen_ms : nowMs, joinedMs: 0, memMb: 0, activeTasks: 0, running: new Set(),
      ...(dead ? { lostMs: w.last_seen_ms } : {}),
    }
    s.workers.set(run.id, run)
  }
  s.overwrites = store.overwrites()
  for (const o of store.outputs()) s.outputs.set(o.path, o)
  // Datasets as recorded; the workers' heartbeats then say which blocks they still hold.
  for (const d of store.datasets()) s.datasets.set(d.name, d)
  for (const row of store.unfinishedJobs()) {
    if (row.plan === null) continue
    const job = rebuildJob(row, JSON.parse(row.plan) as StoredPlan)
    refreshDatasetRoots(s, job)
    s.jobs.set(job.id, job)
    for (const a of store.attemptsOf(job.id)) restoreAttempt(s, job, a)
    // Parts committed on a disk whose workers were all DEAD before the restart run again.
    const live = liveDisks(s)
    for (const w of s.workers.values()) if (!live.has(w.disk)) requeueLostParts(s, job, w.disk, live)
    for (const stage of job.stages) {
      // restoreAttempt sets task states directly: index them once they are all known.
      stage.index = indexTasks(stage.tasks)
      indexHolders(stage)
      if (stage.tasks.length > 0 && allSucceeded(stage)) stage.state = 'SUCCEEDED'
    }
    job.replicaDirty = true
  }
  return s
}

function rebuildJob(row: StoredJob, plan: StoredPlan): JobRun {
  const request = JSON.parse(row.request) as JobRequest
  const stages: StageRun[] = plan.stages.map(({ plan: p, splits, holders, lineage }) => {
    // A stage recomputing a dataset's lost partitions does not run the tasks of those it holds.
    const skipped = new Set(lineage?.skipped ?? [])
    const tasks = Array.from({ length: p.partitions }, (_, i): TaskRun => ({
      id: `${row.job_id}:${p.stage_id}:${i}` as TaskRun['id'], stage: p.stage_id, partition: i, state: skipped.has(i) ? 'SUCCEEDED' : 'PENDING',
      attempts: 0, failures: 0, current: null, output: null, sinks: [], committer: null,
    }))
    return { plan: p, splits, state: 'WAITING', finalCounts: null, tasks, index: indexTasks(tasks), ...(holders === undefined ? {} : { holders }), ...(lineage === undefined ? {} : { lineage }) }
  })
  return {
    id: row.job_id as JobId, seq: row.seq, name: row.name, state: row.state as JobRun['state'], request,
    params: request.params ?? {}, maxAttempts: request.max_task_attempts ?? 4, stages, outputs: plan.outputs,
    overwrites: request.nodes.filter(n => (n.op === 'write_text' || n.op === 'write_jsonl') && n.overwrite === true && n.path !== undefined).map(n => n.path!),
    submittedMs: row.submitted_ms, startedMs: row.started_ms, finishedMs: null, error: null, result: null, finalizing: false,
    ...(plan.inputProblems === undefined ? {} : { inputProblems: new Map(plan.inputProblems) }),
  }
}

// Attempts come in order (stage, partition, attempt), so the last word on a task wins.
function restoreAttempt(s: MasterState, job: JobRun, row: StoredAttempt): void {
  const task = job.stages[row.stage_id]?.tasks[row.partition]
  if (task === undefined) return
  task.attempts = Math.max(task.attempts, row.attempt + 1)
  if (row.counted === 1) task.failures++
  if (row.committed === 1) task.committer = row.attempt_id as AttemptId
  const worker = s.workers.get(row.worker_id as WorkerId)
  const sameWorker = worker !== undefined && worker.incarnation === row.incarnation
  if (row.state === 'SUCCEEDED' && row.result !== null) {
    const result = JSON.parse(row.result) as NonNullable<AttemptRun['result']>
    task.state = 'SUCCEEDED'
    task.current = null
    task.sinks = result.sinks
    if (result.replicas !== undefined && result.replicas.length > 0) task.replicas = result.replicas
    if (row.committed === 1 && result.sinks.some(o => o.part !== undefined)) {
      task.home = { worker: row.worker_id as WorkerId, disk: s.workers.get(row.worker_id as WorkerId)?.disk ?? `own-${row.worker_id}` }
    }
    // Map output on a worker that is gone (or came back as a new incarnation) is recomputed.
    const stage = job.stages[row.stage_id]!
    if (result.shuffle_outputs.length > 0) {
      if (sameWorker) {
        task.output = { worker: worker.id, address: result.address, attempt: row.attempt_id as AttemptId, sizes: new Map(result.shuffle_outputs.map(o => [o.shuffle_id, o.sizes])), atMs: row.finished_ms ?? 0 }
      } else if (stage.plan.shuffle_writes.length > 0) {
        task.state = 'PENDING'
        task.committer = null
      }
    }
  } else if (row.state === 'RUNNING' && sameWorker) {
    const a: AttemptRun = {
      id: row.attempt_id as AttemptId, job: job.id, task: task.id, stage: row.stage_id, partition: row.partition, attempt: row.attempt,
      worker: worker.id, incarnation: row.incarnation, state: 'RUNNING', startedMs: row.started_ms, finishedMs: null,
      metrics: { records_in: row.records_in, records_out: row.records_out, shuffle_bytes_written: row.shuffle_bytes_written, shuffle_bytes_read: row.shuffle_bytes_read, spilled_bytes: row.spilled_bytes },
      error: null, ...(row.committed === 1 ? { committed: true } : {}),
    }
    s.attempts.set(a.id, a)
    worker.running.add(a.id)
    task.state = 'RUNNING'
    task.current = a.id
  } else if (row.state === 'RUNNING') {
    // Its worker is gone: the attempt is lost and its task runs again.
    task.state = 'PENDING'
    task.current = null
  } else if (task.current === row.attempt_id) {
    task.state = 'PENDING'
    task.current = null
  }
}
