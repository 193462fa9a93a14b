// Retries that are not the task's fault: a lost worker, a refused or timed-out launch, a fetch
// failure, an attempt its worker no longer runs, a commit that could not reach the master. None
// counts toward max_task_attempts, and none may loop for ever either: one deterministic cause (a
// spec the worker cannot take, a thread that always dies) would otherwise add an attempt row per
// loop without end. Part of step(); pure.
import { MAX_FETCH_FAILURE_ROUNDS, MAX_UNCOUNTED_RETRIES, type Step } from './events'
import { currentTaskOf, requeue } from './attempts'
import { failJob } from './job-end'
import type { AttemptRun, JobRun, MasterState, StageRun, TaskRun } from './state'

/** What made a task run again: `loss`, a worker lost (the task ran there, read from it, or could
 *  not reach it); `other`, anything else (a kill, an interrupted commit, a launch that timed out, a
 *  reconcile that found the attempt gone). */
export type RetryCause = 'loss' | 'other'

/** The attempt `a` ended without a result, for a reason that is not its task's: the task runs
 *  again, unless another attempt took over, or it has been retried this way too often in a row
 *  (then the job fails, saying why). */
export function retryLost(s: MasterState, a: AttemptRun, why: string, nowMs: number, out: Step, cause: RetryCause = 'other'): void {
  const cur = currentTaskOf(s, a)
  if (cur === undefined) return
  retryTask(s, s.jobs.get(a.job)!, cur.stage, cur.task, why, nowMs, out, cause)
}

/** Runs the task again, not counted against max_task_attempts but bounded. One worker loss reaches
 *  a task by several paths at once (its fetch fails, its readers are stopped, its launch is refused):
 *  it costs the task one retry, not one per path, so that a few real losses in a row do not fail a
 *  job; a cause that repeats without a new loss counts every time. */
export function retryTask(s: MasterState, job: JobRun, stage: StageRun, task: TaskRun, why: string, nowMs: number, out: Step, cause: RetryCause = 'other'): void {
  requeue(stage, task)
  const losses = s.losses ?? 0
  if (cause === 'loss' && task.lostAtLoss === losses) return
  if (cause === 'loss') task.lostAtLoss = losses
  task.lostRuns = (task.lostRuns ?? 0) + 1
  if (task.lostRuns >= MAX_UNCOUNTED_RETRIES) {
    failJob(s, job.id, {
      message: `task ${task.id} ended ${task.lostRuns} times in a row without a result, for reasons not its own; the last: ${why}`,
      node_id: null, task_id: task.id, record: null,
    }, nowMs, out)
  }
}

/** A fetch failure re-planned map outputs that `stage` reads: one more round in a row. False when
 *  that was one too many and the job failed. */
export function countFetchFailureRound(s: MasterState, job: JobRun, stage: StageRun, why: string, nowMs: number, out: Step): boolean {
  stage.fetchFailureRounds = (stage.fetchFailureRounds ?? 0) + 1
  if (stage.fetchFailureRounds < MAX_FETCH_FAILURE_ROUNDS) return true
  failJob(s, job.id, {
    message: `stage ${stage.plan.stage_id} could not read its shuffle input ${stage.fetchFailureRounds} times in a row, each time after its map outputs were recomputed; the last: ${why}`,
    node_id: null, task_id: null, record: null,
  }, nowMs, out)
  return false
}
