// The end of a job with write outputs: once every part is committed, every live worker is asked to
// finalize what its disk holds (swap a replaced output's new parts in, write _SUCCESS), and the job
// is SUCCEEDED when each has answered or been lost. Part of step(); pure.
//
// A replaced output keeps its previous parts, _SUCCESS included, until this point: an overwriting
// job commits its parts aside (stagedPath), so a job that fails or is cancelled, or a submit that
// is refused, leaves the previous output exactly as it was.
import type { WorkerId } from '../../api/ids'
import type { MasterEvent, OutputSwap, Step } from './events'
import { completeJob, failJob } from './job-end'
import { isLive, stagedPath, type JobRun, type MasterState } from './state'
import { onWorkerUnreachable, recordOverwrite } from './worker-events'

/** Finalize requests that fail with an answer before the job fails; one that refuses connections
 *  loses its worker instead, which then swaps on its return. */
const MAX_FINALIZE_FAILURES = 3

export function swapsOf(job: JobRun, nowMs: number): OutputSwap[] {
  return job.overwrites.map(path => ({ path, staged: stagedPath(path, job.id), olderThanMs: Math.max(0, nowMs - job.submittedMs) }))
}

/** Every stage is done: ask each live worker to finalize (or end the job at once without outputs). */
export function startFinalize(s: MasterState, job: JobRun, nowMs: number, out: Step): void {
  if (job.outputs.length === 0) { completeJob(s, job.id, nowMs, out); return }
  const live = [...s.workers.values()].filter(isLive)
  if (live.length === 0) return   // retried on the next event, once a worker is back
  job.finalizing = true
  job.finalizeWaiting = new Map(live.map(w => [w.id, w.incarnation]))
  job.finalizeDone ??= new Set()
  for (const w of live) ask(job, w.id, w.address, w.incarnation, nowMs, out)
}

function ask(job: JobRun, worker: WorkerId, address: string, incarnation: string, nowMs: number, out: Step): void {
  const replaced = new Set(job.overwrites)
  out.actions.push({ kind: 'finalize-output', address, job: job.id, paths: job.outputs.filter(p => !replaced.has(p)), swaps: swapsOf(job, nowMs), worker, incarnation })
}

export function onFinalized(s: MasterState, e: Extract<MasterEvent, { kind: 'output-finalized' }>, out: Step): void {
  const job = s.jobs.get(e.job)
  if (job === undefined || job.state !== 'RUNNING' || job.finalizeWaiting?.get(e.worker) !== e.incarnation) return
  job.finalizeWaiting.delete(e.worker)
  job.finalizeDone?.add(`${e.worker}@${e.incarnation}`)
  finishIfAnswered(s, job, e.nowMs, out)
}

// A worker that refuses connections is lost at once (as a refused launch is), and swaps what its
// disk holds when it returns; any other error is asked again, and counts: three at most.
export function onFinalizeFailed(s: MasterState, e: Extract<MasterEvent, { kind: 'finalize-failed' }>, out: Step): void {
  const job = s.jobs.get(e.job)
  if (job === undefined || job.state !== 'RUNNING' || job.finalizeWaiting?.get(e.worker) !== e.incarnation) return
  if (e.unreachable === true && onWorkerUnreachable(s, e.worker, e.incarnation, e.nowMs, out)) { finishIfAnswered(s, job, e.nowMs, out); return }
  job.finalizeTries = (job.finalizeTries ?? 0) + 1
  if (job.finalizeTries >= MAX_FINALIZE_FAILURES) {
    failJob(s, e.job, { message: `finalizing the output on worker ${e.worker} failed ${job.finalizeTries} times: ${e.message}`, node_id: null, task_id: null, record: null }, e.nowMs, out)
    return
  }
  const w = s.workers.get(e.worker)!
  ask(job, w.id, w.address, w.incarnation, e.nowMs, out)
}

/** Called by schedule() too: a worker lost while asked no longer holds the job up. */
export function finishIfAnswered(s: MasterState, job: JobRun, nowMs: number, out: Step): void {
  if (!job.finalizing || job.state !== 'RUNNING' || (job.finalizeWaiting?.size ?? 0) > 0) return
  if ((job.finalizeDone?.size ?? 0) === 0) {
    // Every worker asked was lost before answering: ask those live now.
    job.finalizing = false
    startFinalize(s, job, nowMs, out)
    return
  }
  for (const path of job.overwrites) {
    const o = { path, job: job.id, cutoffMs: job.submittedMs, atMs: nowMs }
    recordOverwrite(s, o, out)
    // A worker that joined while the others swapped was not asked: it swaps now, before any task.
    for (const w of s.workers.values()) {
      if (!isLive(w) || job.finalizeDone!.has(`${w.id}@${w.incarnation}`)) continue
      ;(w.staleOutputs ??= []).push(o)
      s.ring = null
    }
  }
  completeJob(s, job.id, nowMs, out)
}
