// Messages between a worker's main thread and its task threads (Bun Workers).
import type { CacheLevel } from '../../api/jobs'
import type { SinkOutput, TaskFailureWire, TaskMetrics, TaskSpec } from '../../api/tasks'

export type ThreadEnv = {
  dataDir: string; workDir: string; masterUrl: string; workerId: string; token: string | undefined
  /** the worker's memory counter, shared by its task threads (engine/spill/budget.ts) */
  budget: SharedArrayBuffer
  /** the worker's memory pressure (engine/spill/budget.ts): a generation, at each raise of which a
   *  task spills once, and the squeeze, set while the worker is paused for its resident size */
  pressure: SharedArrayBuffer
  /** past this many bytes held by all tasks together, a task spills */
  spillAtBytes: number
  /** a task may always hold this much, whatever the others hold */
  floorBytes: number
}

/** `lane`: the thread's own counter in the shared budget, reclaimed by the main thread when the
 *  thread is gone, however it ended. */
export type ThreadRequest =
  | { kind: 'run'; spec: TaskSpec; env: ThreadEnv; lane: number }
  /** runs the engine's own warm-up task (task/warm-up.ts) before the thread's first real task */
  | { kind: 'warm-up'; env: ThreadEnv; lane: number }

/** What a task thread answers: a task's result, or the end of its warm-up (`failure` when the
 *  warm-up task did not succeed: the thread is still fit for tasks, only colder). */
export type ThreadReply =
  | { kind: 'result'; result: ThreadResult }
  /** `tasks`: warm-up tasks run, fewer than all when a task came meanwhile */
  | { kind: 'warmed'; ms: number; tasks: number; failure?: string }

/** A map task's output for one shuffle: one segment or more (one more per spill); in each,
 *  reduce partition p is bytes [offsets[p], offsets[p+1]). A cache write's block has one partition,
 *  in files (`segments`) or in memory (`cache.memory`, transferred from the task thread, then no
 *  segment). */
export type BlockFile = {
  shuffle_id: string
  segments: { path: string; offsets: number[] }[]
  cache?: { level: CacheLevel; memory?: Uint8Array }
  /** a persisted dataset's block: held under this owner (not the job), so the job's end keeps it */
  owner?: string
}

/** Bytes per reduce partition over all segments. */
export function partitionSizes(b: BlockFile): number[] {
  if (b.cache !== undefined) return [(b.cache.memory?.length ?? 0) + b.segments.reduce((n, s) => n + (s.offsets.at(-1) ?? 0), 0)]
  const n = (b.segments[0]?.offsets.length ?? 1) - 1
  const sizes = new Array<number>(n).fill(0)
  for (const s of b.segments) for (let p = 0; p < n; p++) sizes[p]! += s.offsets[p + 1]! - s.offsets[p]!
  return sizes
}

export type ThreadResult = {
  attempt_id: string
  state: 'SUCCEEDED' | 'FAILED'
  metrics: TaskMetrics
  blocks: BlockFile[]
  sinks: SinkOutput[]
  failure?: TaskFailureWire
}
