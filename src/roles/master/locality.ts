// Where a task would rather run, pure: a task that reads a cached partition runs on the worker that
// holds it, and elsewhere (fetching the block from that worker) only after the holder has had no
// free slot for LOCALITY_WAIT_MS, as Spark's delay scheduling does. It does not pick among other
// workers (the scheduler's round-robin does) and knows nothing of input files.
import type { WorkerId } from '../../api/ids'
import type { JobRun, StageRun, TaskRun } from './state'

/** How long a task waits for the holder of its cached partition before reading it remotely. */
export const LOCALITY_WAIT_MS = 3_000

/** The writing task whose kept block is partition `partition` of cache `cacheId`: map tasks are
 *  numbered across the stages that write it (several after a union), in stage order. */
export function cachedBlockOf(job: JobRun, cacheId: string, partition: number): TaskRun | undefined {
  let base = 0
  for (const writer of job.stages) {
    if (!writer.plan.shuffle_writes.some(w => w.shuffle_id === cacheId)) continue
    if (partition < base + writer.tasks.length) return writer.tasks[partition - base]
    base += writer.tasks.length
  }
  return undefined
}

/** The worker holding the cached partition `task` reads, if its stage reads one and it is kept;
 *  none for an empty partition (there is nothing to read, so anywhere will do). */
export function cachedHolder(job: JobRun, stage: StageRun, task: TaskRun): WorkerId | undefined {
  const root = stage.plan.root
  if (root.kind !== 'cached') return undefined
  // A persisted dataset's block: its holder is the catalog's, as of submit.
  if (root.dataset !== undefined) {
    const b = root.dataset.blocks[task.partition]
    return b === undefined || b.bytes === 0 ? undefined : b.worker as WorkerId
  }
  const o = cachedBlockOf(job, root.cache_id, task.partition)?.output
  return o === null || o === undefined || (o.sizes.get(root.cache_id)?.[0] ?? 0) === 0 ? undefined : o.worker
}

export type LocalityChoice = 'holder' | 'wait' | 'any'

/**
 * `holderFree`: the holder may get tasks and has a free slot (and the task has not failed there).
 * `waitedMs`: since the task was first passed over for want of a slot on its holder.
 */
export function localityChoice(holderFree: boolean, waitedMs: number): LocalityChoice {
  if (holderFree) return 'holder'
  return waitedMs < LOCALITY_WAIT_MS ? 'wait' : 'any'
}
