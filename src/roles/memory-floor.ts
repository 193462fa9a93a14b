// The smallest --max-mem a worker can honour. A worker's resident size is its budget plus what the
// runtime itself holds: the main thread (HTTP, the shuffle server), and per task slot a JavaScript
// VM with its heap and its working set (a source chunk, a batch through the pipeline, a fetch in
// flight, a frame being encoded). The bound a worker keeps is --max-mem + MARGIN_MIB; below the
// floor, what the runtime holds alone passes it, whatever the budget. Figures measured on the
// compiled binary at --max-mem 1MiB (test/support/memory-shapes.ts, peak RSS of each shape).

/** What a worker holds beyond --max-mem, at most. */
export const MARGIN_MIB = 200
/** The main thread and the process around it, idle. */
export const RUNTIME_BASE_MIB = 70
/** One task slot at the smallest budget: its VM, heap and working set. */
export const PER_SLOT_MIB = 60

/** MiB of --max-mem below which the bound cannot hold with this many slots (0: any budget holds). */
export function maxMemFloorMiB(slots: number): number {
  return Math.max(0, RUNTIME_BASE_MIB + PER_SLOT_MIB * slots - MARGIN_MIB)
}

/** What the worker says at start when its --max-mem is below the floor; null when it is not. */
export function floorWarning(maxMemBytes: number, slots: number): string | null {
  const floor = maxMemFloorMiB(slots)
  if (maxMemBytes >= floor * 1024 * 1024) return null
  return `--max-mem below ${floor}MiB is not honoured: the runtime needs about ${floor} MiB with --slots ${slots} (its peak resident size may pass --max-mem + ${MARGIN_MIB} MiB; give it more --max-mem or fewer --slots)`
}
