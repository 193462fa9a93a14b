// How a job ends: SUCCEEDED with its result assembled, FAILED with a reason, or CANCELLED. Part of
// step(); pure, changes `s` in place.
import type { JobId } from '../../api/ids'
import type { JobError, JobResult, SinkResult } from '../../api/jobs'
import { COLLECT_LIMIT_BYTES, type Step } from './events'
import { endAttempt } from './attempts'
import { isLive, stagedPath, type JobRun, type MasterState } from './state'
import { countsOf, indexTasks, setTaskState } from './task-index'
import { datasetOwner, jobDatasets, persistNodes, type DatasetRecord } from './catalog'

/** Every live worker drops a dataset's blocks, memory and files (a worker away now drops them
 *  when it reports holding an owner the catalog does not know: catalog.ts reconcileHeld). */
export function freeDataset(s: MasterState, d: DatasetRecord, out: Step): void {
  for (const w of s.workers.values()) {
    if (isLive(w)) out.actions.push({ kind: 'drop-job-data', address: w.address, job: d.owner as JobId, outputs: [], keepOutputs: true })
  }
}

export function failJob(s: MasterState, job: JobId, error: JobError, nowMs: number, out: Step): void {
  endJob(s, job, 'FAILED', error, nowMs, out)
}

export function endJob(s: MasterState, id: JobId, state: 'FAILED' | 'CANCELLED' | 'SUCCEEDED', error: JobError | null, nowMs: number, out: Step): void {
  const job = s.jobs.get(id)
  if (job === undefined || job.state === 'SUCCEEDED' || job.state === 'FAILED' || job.state === 'CANCELLED') return
  // Every part is committed and the swap into place is under way on the workers: a cancel now
  // would leave an output half old, half new. The job ends as soon as the workers answer.
  if (state === 'CANCELLED' && job.swapStarted === true) return
  job.state = state
  job.error = error
  job.finishedMs = nowMs
  for (const stage of job.stages) {
    for (const t of stage.tasks) {
      if (t.current !== null) {
        const a = s.attempts.get(t.current)
        const w = a && s.workers.get(a.worker)
        if (w && isLive(w)) out.actions.push({ kind: 'kill', address: w.address, attempt: t.current })
        endAttempt(s, t.current, 'KILLED', state === 'CANCELLED' ? 'job cancelled' : 'job ended', nowMs, out)
        t.current = null
        setTaskState(stage, t, 'PENDING')   // never finished: not counted as running in the final status
      }
    }
    if (stage.state !== 'SUCCEEDED') stage.state = state === 'SUCCEEDED' ? 'SUCCEEDED' : state === 'FAILED' ? 'FAILED' : 'CANCELLED'
    stage.finalCounts = countsOf(stage)
    stage.tasks = []
    stage.index = indexTasks([])
  }
  // The per-attempt history stays in SQLite, not in memory.
  for (const [aid, a] of s.attempts) if (a.job === id) s.attempts.delete(aid)
  const drop = dropPaths(job, state === 'SUCCEEDED')
  for (const w of s.workers.values()) {
    if (isLive(w)) out.actions.push({ kind: 'drop-job-data', address: w.address, job: id, outputs: drop, keepOutputs: state === 'SUCCEEDED' })
  }
  // A job that did not succeed leaves no dataset: what its persist writes kept goes too.
  if (state !== 'SUCCEEDED') {
    for (const n of persistNodes(job.request.nodes)) {
      for (const w of s.workers.values()) if (isLive(w)) out.actions.push({ kind: 'drop-job-data', address: w.address, job: datasetOwner(id, n.name!) as JobId, outputs: [], keepOutputs: true })
    }
  }
  out.changes.push({ kind: 'job', job: id })
}

/** What a job's end removes: a new output is removed whole when the job did not succeed; an
 *  overwritten one only loses the parts staged aside, and the previous output stays as it was.
 *  Once a swap may have begun (finalizing), staged parts are left where they are. */
function dropPaths(job: JobRun, succeeded: boolean): string[] {
  const replaced = new Set(job.overwrites)
  const fresh = job.outputs.filter(p => !replaced.has(p))
  if (!succeeded && job.swapStarted === true) return fresh
  return [...fresh, ...job.overwrites.map(p => stagedPath(p, job.id))]
}

export function completeJob(s: MasterState, id: JobId, nowMs: number, out: Step): void {
  const job = s.jobs.get(id)
  if (job === undefined || job.state !== 'RUNNING') return
  const result = assembleResult(job)
  if ('error' in result) { failJob(s, id, { message: result.error, node_id: result.node, task_id: null, record: null }, nowMs, out); return }
  job.result = result
  // Its persisted datasets are recorded; one it replaces is freed now that the new one is complete.
  for (const d of jobDatasets(s, job, nowMs)) {
    const old = s.datasets.get(d.name)
    s.datasets.set(d.name, d)
    out.changes.push({ kind: 'dataset', name: d.name, dataset: d })
    if (old !== undefined) freeDataset(s, old, out)
  }
  endJob(s, id, 'SUCCEEDED', null, nowMs, out)
}

/** The message when a job's collect values pass COLLECT_LIMIT_BYTES. */
export const collectTooLarge = (nodeId: string): string =>
  `collect "${nodeId}" gathered more than ${COLLECT_LIMIT_BYTES >> 20} MiB: write the result with write_text or write_jsonl instead`

function assembleResult(job: JobRun): JobResult | { error: string; node: string } {
  const sinks: Record<string, SinkResult> = {}
  for (const stage of job.stages) {
    for (const nodeId of stage.plan.sinks) {
      const node = stage.plan.nodes.find(n => n.id === nodeId)!
      const outs = stage.tasks.map(t => t.sinks.find(o => o.node_id === nodeId))
      // A sink after a union runs in several stages (in stage order): their results add up.
      const prev = sinks[nodeId]
      const records = outs.reduce((n, o) => n + (o?.records ?? 0), 0)
      if (node.op === 'count') sinks[nodeId] = { op: 'count', value: records + (prev?.op === 'count' ? prev.value : 0) }
      else if (node.op === 'collect') {
        const limit = node.limit ?? 100000
        const values: unknown[] = prev?.op === 'collect' ? prev.values : []
        for (const o of outs) for (const v of o?.values ?? []) if (values.length < limit) values.push(v)
        if (Buffer.byteLength(JSON.stringify(values)) > COLLECT_LIMIT_BYTES) return { error: collectTooLarge(nodeId), node: nodeId }
        sinks[nodeId] = { op: 'collect', values }
      } else if (node.op === 'write_text' || node.op === 'write_jsonl') {
        const before = prev !== undefined && 'files' in prev ? prev : { files: 0, records: 0 }
        // The plan's path may be where the parts were staged; the result names the output.
        const path = job.request.nodes.find(n => n.id === nodeId)?.path ?? node.path!
        sinks[nodeId] = { op: node.op, path, files: before.files + stage.tasks.length, records: before.records + records }
      }
    }
  }
  return { sinks }
}
