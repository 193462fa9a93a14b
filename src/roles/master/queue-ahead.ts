// Tasks queued ahead at workers. A worker with a free slot otherwise idles for a whole round trip
// (its report to the master, the master's launch back) between two tasks: for tasks of a few
// milliseconds that round trip is most of the time. So a stage whose tasks have proved short gets
// more tasks per slot on each worker, which the worker queues and starts the moment a
// slot frees. A stage of long tasks does not: a task queued behind a long one would wait for it
// while another worker may idle, and a round trip is nothing beside it. The shorter the tasks, the
// more are queued (a round trip is worth several of them), within bounds.
//
// A queued task is an attempt like a running one: the worker lists it in its heartbeats, it is LOST
// with its worker (the lease), and a cancelled job's queued tasks are dropped by the worker with
// the job's data (POST /jobs/:id/drop) or refused on arrival (UNKNOWN_JOB). Part of step(); pure.
import type { StageRun, WorkerRun } from './state'

/** A stage whose successful attempts take at most this long (launch to report, as the master
 *  sees them: time queued at the worker included) queues ahead; it queues as many more tasks per
 *  slot as fit in this long, between 1 and MAX_AHEAD_PER_SLOT. A worker then holds at most about
 *  this much queued work per slot: what another worker may wait on at a stage's end. */
export const SHORT_TASK_MS = 100
/** The most tasks queued per slot, however short: a worker's queue stays small (its heartbeat
 *  lists every attempt it holds), and so does the master's burst of launches. */
export const MAX_AHEAD_PER_SLOT = 8
/** Attempts of the stage seen to succeed before it is judged. */
const SAMPLES = 2

/** Records how long one successful attempt of the stage took: a moving average, so that the
 *  depth follows the time tasks spend queued as it grows. */
export function noteRun(stage: StageRun, ms: number): void {
  const r = stage.runs ??= { n: 0, avgMs: 0 }
  r.n++
  r.avgMs += (Math.max(0, ms) - r.avgMs) / Math.min(r.n, 8)
}

/** Tasks queued ahead per slot for this stage: none until its tasks have proved short. */
export function aheadPerSlot(stage: StageRun): number {
  const r = stage.runs
  if (r === undefined || r.n < SAMPLES || r.avgMs > SHORT_TASK_MS) return 0
  return Math.max(1, Math.min(MAX_AHEAD_PER_SLOT, Math.floor(SHORT_TASK_MS / Math.max(1, r.avgMs))))
}

/** How many attempts `w` may hold for a task of `stage`: one per slot, and those queued ahead. */
export const capacity = (w: WorkerRun, stage: StageRun): number => w.slots * (1 + aheadPerSlot(stage))

export const hasRoom = (w: WorkerRun, stage: StageRun): boolean => w.running.size < capacity(w, stage)
