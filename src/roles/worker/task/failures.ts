// How a task attempt fails, and what the master is told: each error class maps to a reason the
// master understands (counted or not, retried or not).
import type { TaskFailureWire } from '../../../api/tasks'
import { UdfError } from '../../../engine/records'
import { DiskFullError } from './run-store'

/** A failure no retry can fix: the job fails at once. */
export class FatalTaskError extends Error {
  constructor(readonly nodeId: string, message: string) { super(message) }
}

/** A peer could not serve its shuffle blocks: the master recomputes them, the task is not at fault. */
export class FetchFailed extends Error {
  constructor(readonly fromWorker: string, message: string, readonly unreachable = false, readonly missingAttempt?: string) { super(message) }
}

/** The input is not what was planned (a file gone, or of another size): retrying reads the same
 *  changed file, so the job fails at once, saying which file on which worker. */
export class InputChanged extends FatalTaskError {}

/** The attempt could not finish for a reason outside the task (the master could not be asked
 *  whether to commit): not counted against the task's attempts. */
export class Interrupted extends Error {}

export function toFailure(e: unknown): TaskFailureWire {
  if (e instanceof UdfError) return { reason: 'udf-error', message: e.message, node_id: e.nodeId, record: e.record }
  if (e instanceof DiskFullError) return { reason: 'task-error', message: e.message }
  if (e instanceof FatalTaskError) return { reason: 'fatal', message: e.message, node_id: e.nodeId }
  if (e instanceof FetchFailed) {
    return { reason: 'fetch-failed', message: e.message, from_worker: e.fromWorker, unreachable: e.unreachable, ...(e.missingAttempt === undefined ? {} : { missing_attempt: e.missingAttempt }) }
  }
  if (e instanceof Interrupted) return { reason: 'interrupted', message: e.message }
  const message = e instanceof Error ? e.message : String(e)
  return { reason: 'task-error', message }
}
