// The worker's memory policy, pure: what to do at a given resident size. The shell reads RSS
// (one function, replaceable in tests) and acts. Bun Workers have no heap limit of their own,
// so this is the only guard against a task that allocates without bound.
import { MARGIN_MIB, PER_SLOT_MIB, RUNTIME_BASE_MIB } from '../memory-floor'

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
  // Under a small budget the runtime's share dwarfs the budget, and its mark sat within a swing of
  // the bound (--max-mem + MARGIN_MIB): the worker pauses early enough that the swing stays under
  // the bound. Under a large budget the first is the lower, and nothing changes.
  const pauseAtBytes = Math.min(runtime + PAUSE_FRACTION * maxMemBytes, maxMemBytes + MARGIN_MIB * 1024 * 1024 - PAUSE_HEADROOM_BYTES)
  // The resident size moves by a few MiB at rest (collections, the allocator): under a small budget
  // a gap of 10 % of it would let the worker flap.
  return { pauseAtBytes, resumeAtBytes: Math.min(runtime + RESUME_FRACTION * maxMemBytes, pauseAtBytes - MIN_RESUME_GAP_BYTES) }
}

/** Room kept between the pause mark and the bound: what the resident size still grows by after a
 *  sample past the mark, until the tasks' spills and collections take effect. The reduce side of an
 *  aggregation over millions of keys at --max-mem 32MiB swung by ~25 MiB within half a second, and
 *  a sample comes up to SAMPLE_MS late. */
export const PAUSE_HEADROOM_BYTES = 40 * 1024 * 1024

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

// Past the pause mark, the tasks running are also told to spill what they hold (Dask spills on
// process memory as well as on what it counts): their estimates leave out what they cannot see
// (keys' hidden parts, garbage, buffers in flight), and the resident size is what is bounded.

/** A raise needs the running tasks to hold at least this share of the spill threshold by their
 *  estimates: less, and spilling it could not bring the resident size down by much. */
export const PRESSURE_MIN_HELD_FRACTION = 1 / 8
/** Between two raises, at least this long: a spill and its collection take some hundreds of ms to
 *  bring the resident size down. */
export const PRESSURE_GRACE_MS = 1_000

/**
 * Whether to raise memory pressure now (tasks spill once per raise, at their next reservation:
 * engine/spill/budget.ts). Only past `markBytes` of resident memory, only while the tasks hold at
 * least PRESSURE_MIN_HELD_FRACTION of `spillAtBytes` by their estimates, and not again within
 * PRESSURE_GRACE_MS: a resident size the allocator keeps high after a spill, or one made of
 * garbage and runtime rather than held data, then raises nothing, since spilling could not help.
 */
export function pressureDecision(rssBytes: number, markBytes: number, heldBytes: number, spillAtBytes: number, nowMs: number, lastRaiseMs: number): boolean {
  if (rssBytes <= markBytes) return false
  if (heldBytes < PRESSURE_MIN_HELD_FRACTION * spillAtBytes) return false
  return nowMs - lastRaiseMs >= PRESSURE_GRACE_MS
}
