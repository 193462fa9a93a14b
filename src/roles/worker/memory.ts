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
