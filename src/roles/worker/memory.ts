// The worker's memory policy, pure: what to do at a given resident size. The shell reads RSS
// (one function, replaceable in tests) and acts. Bun Workers have no heap limit of their own,
// so this is the only guard against a task that allocates without bound.
import { PER_SLOT_MIB, RUNTIME_BASE_MIB } from '../memory-floor'

/** Above --max-mem plus this margin, running tasks are stopped: a healthy task stays far below. */
export const RUNAWAY_MARGIN_BYTES = 512 * 1024 * 1024
/** After stopping tasks, give the freed heaps time to return to the system before judging again. */
export const RUNAWAY_GRACE_MS = 3_000

export type MemoryAction = 'ok' | 'stop-running-tasks'

export function runawayDecision(rssBytes: number, maxMemBytes: number, nowMs: number, lastStopMs: number): MemoryAction {
  if (nowMs - lastStopMs < RUNAWAY_GRACE_MS) return 'ok'
  return rssBytes > maxMemBytes + RUNAWAY_MARGIN_BYTES ? 'stop-running-tasks' : 'ok'
}

/** Past this share of --max-mem held by tasks, a task must spill (Dask's `spill`, 70%). */
export const SPILL_FRACTION = 0.7
/** Past this share of --max-mem in the process's measured memory, beyond what the runtime itself
 *  holds, cached data is evicted and the worker takes no new task (Dask's `pause`, 80%)... */
export const PAUSE_FRACTION = 0.8
/** ...until it is back under this one: a gap, so that it does not flap. */
export const RESUME_FRACTION = 0.7

export type PauseMarks = { pauseAtBytes: number; resumeAtBytes: number }

/**
 * The resident sizes at which the worker pauses and resumes. --max-mem is the budget for data; the
 * process holds the runtime besides (its main thread, a VM per task thread: memory-floor.ts), so
 * the marks are that much above the budget's shares, and a worker at rest is never over them.
 */
export function pauseMarks(maxMemBytes: number, slots: number): PauseMarks {
  const runtime = (RUNTIME_BASE_MIB + PER_SLOT_MIB * slots) * 1024 * 1024
  const pauseAtBytes = runtime + PAUSE_FRACTION * maxMemBytes
  // The resident size moves by a few MiB at rest (collections, the allocator): under a small budget
  // a gap of 10 % of it would let the worker flap.
  return { pauseAtBytes, resumeAtBytes: Math.min(runtime + RESUME_FRACTION * maxMemBytes, pauseAtBytes - MIN_RESUME_GAP_BYTES) }
}

/** The least distance between the pause and resume marks. */
export const MIN_RESUME_GAP_BYTES = 16 * 1024 * 1024

/**
 * Backpressure from the measured resident size, with hysteresis: paused above the pause mark,
 * resumed below the resume mark. The accounted bytes cannot tell: spilling caps them near the spill
 * threshold, while the heap, buffers in flight and garbage not yet collected go past it.
 * `relievable`: something the worker does will bring memory down (a task running, which will end or
 * spill; cached data in memory, which is evicted first). When nothing is, waiting cannot help (a heap
 * the allocator keeps): the worker resumes rather than stall for ever, and takes one task at a time.
 */
export function pauseDecision(rssBytes: number, marks: PauseMarks, paused: boolean, relievable: boolean): boolean {
  if (!relievable) return false
  if (paused) return rssBytes > marks.resumeAtBytes
  return rssBytes > marks.pauseAtBytes
}
