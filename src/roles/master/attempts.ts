// The smallest state changes of an attempt and its task, shared by every decision file. Part of
// step(); pure, changes `s` in place.
import type { AttemptId } from '../../api/ids'
import type { Step } from './events'
import type { AttemptRun, MasterState, StageRun, TaskRun } from './state'
import { setTaskState } from './task-index'

export function endAttempt(s: MasterState, id: AttemptId, state: 'SUCCEEDED' | 'FAILED' | 'LOST' | 'KILLED', error: string | null, nowMs: number, out: Step): void {
  const a = s.attempts.get(id)
  if (a === undefined || a.state !== 'RUNNING') return
  a.state = state
  a.finishedMs = nowMs
  a.error = error
  s.workers.get(a.worker)?.running.delete(id)
  out.changes.push({ kind: 'attempt', attempt: a })
}

/** Back to PENDING, not counted as a failure. The commit right goes too: a re-run of a task whose
 *  output was lost must be able to commit its sink part again (the rename replaces the old one). */
export function requeue(stage: StageRun, t: TaskRun): void {
  setTaskState(stage, t, 'PENDING')
  t.current = null
  t.output = null
  t.committer = null
}

/** The task and stage of an attempt, if the attempt is still its task's current one. */
export function currentTaskOf(s: MasterState, a: AttemptRun): { stage: StageRun; task: TaskRun } | undefined {
  const stage = s.jobs.get(a.job)?.stages[a.stage]
  const task = stage?.tasks[a.partition]
  return stage !== undefined && task !== undefined && task.current === a.id ? { stage, task } : undefined
}
