// The worker's memory policy, pure: what to do at a given resident size. The shell reads RSS
// (one function, replaceable in tests) and acts. Bun Workers have no heap limit of their own,
// so this is the only guard against a task that allocates without bound.

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
/** Past this share of --max-mem resident, the worker takes no new task (Dask's `pause`, 85%)... */
export const PAUSE_FRACTION = 0.85
/** ...until it is back under this one: a gap, so that it does not flap. */
export const RESUME_FRACTION = 0.75

/**
 * Backpressure with hysteresis: paused above PAUSE_FRACTION of the budget, resumed below
 * RESUME_FRACTION. `usedBytes` is what the worker's tasks hold plus what the process holds
 * beyond its idle size; the caller decides what to count.
 */
export function pauseDecision(usedBytes: number, maxMemBytes: number, paused: boolean): boolean {
  if (paused) return usedBytes > RESUME_FRACTION * maxMemBytes
  return usedBytes > PAUSE_FRACTION * maxMemBytes
}
