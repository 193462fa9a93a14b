// Messages between a worker's main thread and its task threads (Bun Workers).
import type { SinkOutput, TaskFailureWire, TaskMetrics, TaskSpec } from '../../api/tasks'

export type ThreadEnv = { dataDir: string; workDir: string; masterUrl: string; workerId: string; token: string | undefined }

export type ThreadRequest = { kind: 'run'; spec: TaskSpec; env: ThreadEnv }

/** A shuffle output file: reduce partition p is bytes [offsets[p], offsets[p+1]). */
export type BlockFile = { shuffle_id: string; path: string; offsets: number[] }

export type ThreadResult = {
  attempt_id: string
  state: 'SUCCEEDED' | 'FAILED'
  metrics: TaskMetrics
  blocks: BlockFile[]
  sinks: SinkOutput[]
  failure?: TaskFailureWire
}
