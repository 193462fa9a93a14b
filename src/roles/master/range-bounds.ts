// Range partitioning for sort: the bounds a stage's sort shuffle writes need, computed from the
// samples its sample stages reported (the `sample` sinks of stages with `sample_of`). Pure.
// Every map task of a sort must partition by the same bounds, re-runs included: the samples are
// task results that never change once their stage has succeeded, so the bounds are computed once
// per job and sort, and kept.
import { boundsFromSamples } from '../../engine/operators/sort'
import { SAMPLE_OP } from '../../engine/plan'
import type { JobRun, StageRun } from './state'

const computed = new WeakMap<JobRun, Map<string, unknown[]>>()

/** Per sort shuffle written by this stage, the upper bounds of reduce partitions 0..n-2, or
 *  undefined when the stage writes no sort shuffle. */
export function rangeBounds(job: JobRun, stage: StageRun): Record<string, unknown[]> | undefined {
  let out: Record<string, unknown[]> | undefined
  for (const w of stage.plan.shuffle_writes) {
    if (w.node.op !== 'sort') continue
    out ??= {}
    out[w.shuffle_id] = boundsOf(job, w.node.id, w.partitions)
  }
  return out
}

function boundsOf(job: JobRun, sortId: string, partitions: number): unknown[] {
  let byJob = computed.get(job)
  if (byJob === undefined) computed.set(job, byJob = new Map())
  const known = byJob.get(sortId)
  if (known !== undefined) return known
  const samples: { keys: unknown[]; count: number }[] = []
  let complete = true
  for (const st of job.stages) {
    if (st.plan.sample_of !== sortId) continue
    if (st.state !== 'SUCCEEDED') complete = false
    for (const t of st.tasks) {
      for (const o of t.sinks) if (o.op === SAMPLE_OP) samples.push({ keys: o.values ?? [], count: o.records })
    }
  }
  const bounds = boundsFromSamples(samples, partitions)
  // Only final samples are kept: a stage launched early (it cannot be, it depends on the sample
  // stages) would otherwise fix bounds from half the samples.
  if (complete) byJob.set(sortId, bounds)
  return bounds
}
