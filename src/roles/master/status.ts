// Renders the master's model as the API's JobStatus and JobSummary (CONTRACT section 5).
import type { JobStatus, JobSummary } from '../../api/jobs'
import { countsOf } from './task-index'
import type { JobRun } from './state'

const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()

export function jobStatus(job: JobRun): JobStatus {
  let total = 0
  let done = 0
  const stages = job.stages.map(st => {
    const tasks = countsOf(st)
    total += tasks.total
    done += tasks.succeeded
    return {
      stage_id: st.plan.stage_id,
      node_ids: [st.plan.root.node.id, ...st.plan.nodes.map(n => n.id)],
      depends_on: st.plan.depends_on,
      ...(st.lineage === undefined ? {} : { recomputes: st.lineage.dataset }),
      state: st.state,
      tasks,
    }
  })
  const progress = job.state === 'SUCCEEDED' ? 1 : total === 0 ? 0 : done / total
  return {
    job_id: job.id, name: job.name, state: job.state,
    submitted_at: new Date(job.submittedMs).toISOString(), started_at: iso(job.startedMs), finished_at: iso(job.finishedMs),
    progress, error: job.error, stages,
  }
}

export const summaryOf = (s: JobStatus): JobSummary => ({
  job_id: s.job_id, name: s.name, state: s.state, submitted_at: s.submitted_at,
  started_at: s.started_at, finished_at: s.finished_at, progress: s.progress,
})
