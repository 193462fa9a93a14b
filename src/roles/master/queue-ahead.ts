// Tasks queued ahead at workers. A worker with a free slot otherwise idles for a whole round trip
// (its report to the master, the master's launch back) between two tasks: for tasks of a few
// milliseconds that round trip is most of the time. So a stage whose tasks have proved short gets
// up to one more task per slot on each worker, which the worker queues and starts the moment a
// slot frees. A stage of long tasks does not: a task queued behind a long one would wait for it
// while another worker may idle, and a round trip is nothing beside it.
//
// A queued task is an attempt like a running one: the worker lists it in its heartbeats, it is LOST
// with its worker (the lease), and a cancelled job's queued tasks are dropped by the worker with
// the job's data (POST /jobs/:id/drop) or refused on arrival (UNKNOWN_JOB). Part of step(); pure.
import type { StageRun, WorkerRun } from './state'

/** A stage whose successful attempts took at most this long on average (launch to report, as
 *  the master saw them) queues ahead. */
export const SHORT_TASK_MS = 100
/** Attempts of the stage seen to succeed before it is judged. */
const SAMPLES = 2

/** Records how long one successful attempt of the stage took. */
export function noteRun(stage: StageRun, ms: number): void {
  const r = stage.runs ??= { n: 0, totalMs: 0 }
  r.n++
  r.totalMs += Math.max(0, ms)
}

export function queuesAhead(stage: StageRun): boolean {
  const r = stage.runs
  return r !== undefined && r.n >= SAMPLES && r.totalMs / r.n <= SHORT_TASK_MS
}

/** How many attempts `w` may hold for a task of `stage`: one per slot, and one more per slot
 *  queued ahead when the stage's tasks are short. */
export const capacity = (w: WorkerRun, stage: StageRun): number => queuesAhead(stage) ? 2 * w.slots : w.slots

export const hasRoom = (w: WorkerRun, stage: StageRun): boolean => w.running.size < capacity(w, stage)
