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

/**
 * What a worker states to JavaScriptCore as the machine's memory (BUN_JSC_forceRAMSize). JSC lets
 * each VM's heap (the main thread's and every task thread's) double after a collection while it
 * is under a quarter of that figure, grow by half under a half of it, and by a quarter beyond. At
 * 8× the budget a task's heap doubled up to twice the budget, so garbage piled up to as much as
 * the live data again: a word count and a sort in one job peaked at 224-236 MiB resident at
 * --max-mem 32MiB (bound 232), a 1 GiB sort at 1285 MiB at 1GiB (bound 1224). At 4× a heap
 * doubles only while under the budget: 180-190 MiB and 1061-1110 MiB. Below the budget nothing
 * changes, so a job whose heap stays under it (most) collects no more often than before.
 */
export const JSC_RAM_PER_BUDGET = 4
/** Never less: JSC's own structures want some room however small the budget. */
export const JSC_RAM_MIN_BYTES = 64 * 1024 * 1024

/** BUN_JSC_forceRAMSize for a --max-mem, or null when the machine has no more than that anyway. */
export function jscRamBytes(maxMemBytes: number, machineBytes: number): number | null {
  const ram = Math.max(JSC_RAM_MIN_BYTES, JSC_RAM_PER_BUDGET * maxMemBytes)
  return ram >= machineBytes ? null : ram
}
