// Range partitioning for sort: the bounds a stage's sort shuffle writes need, computed from the
// samples its sample stage reported. Pure.
import type { JobRun, StageRun } from './state'

/** Per sort shuffle written by this stage, the upper bounds of reduce partitions 0..n-2, or
 *  undefined when the stage writes no sort shuffle. */
export function rangeBounds(_job: JobRun, _stage: StageRun): Record<string, unknown[]> | undefined {
  return undefined
}
