// The end of a job with write outputs: once every part is committed, every live worker in turn is
// asked to finalize what its disk holds (swap a replaced output's new parts in, write _SUCCESS), and
// the job is SUCCEEDED when each has answered or been lost. Part of step(); pure.
//
// A replaced output keeps its previous parts, _SUCCESS included, until this point: an overwriting
// job commits its parts aside (stagedPath), so a job that fails or is cancelled, or a submit that
// is refused, leaves the previous output exactly as it was.
import type { MasterEvent, OutputSwap, Step } from './events'
import { completeJob, failJob } from './job-end'
import { isLive, type JobRun, type MasterState, type WorkerRun } from './state'
import { onWorkerUnreachable, recordOverwrite } from './worker-events'
import { swapOf } from './swap'
import { jobParts, missingPart, recordOutputs, settleFor } from './catalog'
import { replicasComplete } from './replicas'

/** Finalize requests that fail with an answer before the job fails; one that refuses connections
 *  loses its worker instead, which then swaps on its return. */
const MAX_FINALIZE_FAILURES = 3

const swapsOf = (job: JobRun, nowMs: number): OutputSwap[] => job.overwrites.map(path => swapOf(path, job.id, job.submittedMs, nowMs))

/** Every stage is done: ask the live workers to finalize, one at a time (or end the job at once
 *  without outputs). One at a time: on a data dir they share, the first swaps and the others find
 *  it done, and no two move the same files at once. */
export function startFinalize(s: MasterState, job: JobRun, nowMs: number, out: Step): void {
  if (job.outputs.length === 0) { completeJob(s, job.id, nowMs, out); return }
  const live = [...s.workers.values()].filter(isLive)
  if (live.length === 0) return   // retried on the next event, once a worker is back
  const parts = jobParts(s, job)
  const missing = missingPart(job, parts)
  if (missing !== undefined) {
    failJob(s, job.id, { message: `the master does not know where ${missing} was committed: the output is left as it is, not marked complete`, node_id: null, task_id: null, record: null }, nowMs, out)
    return
  }
  // Replicas first: _SUCCESS says the output is whole, on every disk that holds a part of it.
  if (!replicasComplete(job, parts)) return
  job.finalizing = true
  job.swapStarted = true
  job.finalParts = parts
  job.emptyOn = live[0]!.disk
  job.finalizeQueue = live.map(w => w.id)
  job.finalizeWaiting = new Map()
  job.finalizeDone ??= new Set()
  finishIfAnswered(s, job, nowMs, out)
}

/** Each asked worker swaps what its disk holds; the first to answer also writes _SUCCESS for every
 *  output (until one has answered, each asked is told to). */
function ask(job: JobRun, w: WorkerRun, nowMs: number, out: Step): void {
  job.finalizeWaiting!.set(w.id, w.incarnation)
  const settle = settleFor(job, job.finalParts ?? new Map(), w.disk, job.emptyOn)
  out.actions.push({ kind: 'finalize-output', address: w.address, job: job.id, paths: [], swaps: swapsOf(job, nowMs), settle, worker: w.id, incarnation: w.incarnation })
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
  job.finalizeWaiting.delete(e.worker)
  ask(job, s.workers.get(e.worker)!, e.nowMs, out)
}

/** The next worker in turn is asked once the last has answered or been lost; when none is left, the
 *  job ends. Called by schedule() too: a worker lost while asked no longer holds the job up. */
export function finishIfAnswered(s: MasterState, job: JobRun, nowMs: number, out: Step): void {
  if (!job.finalizing || job.state !== 'RUNNING' || (job.finalizeWaiting?.size ?? 0) > 0) return
  while (job.finalizeQueue !== undefined && job.finalizeQueue.length > 0) {
    const w = s.workers.get(job.finalizeQueue.shift()!)
    if (w !== undefined && isLive(w)) { ask(job, w, nowMs, out); return }
  }
  if ((job.finalizeDone?.size ?? 0) === 0) {
    // Every worker asked was lost before answering: ask those live now.
    job.finalizing = false
    startFinalize(s, job, nowMs, out)
    return
  }
  for (const path of job.overwrites) {
    const o = { path, job: job.id, submittedMs: job.submittedMs, atMs: nowMs }
    recordOverwrite(s, o, out)
    // A worker that joined while the others swapped was not asked: it swaps now, before any task.
    for (const w of s.workers.values()) {
      if (!isLive(w) || job.finalizeDone!.has(`${w.id}@${w.incarnation}`)) continue
      ;(w.staleOutputs ??= []).push(o)
      s.ring = null
    }
  }
  for (const o of recordOutputs(s, job, job.finalParts ?? new Map(), nowMs)) {
    out.changes.push({ kind: 'output', output: o })
    // Likewise, a worker that was not asked settles the output (strays go) before any task.
    for (const w of s.workers.values()) {
      if (!isLive(w) || job.finalizeDone!.has(`${w.id}@${w.incarnation}`)) continue
      ;(w.staleSettle ??= []).push(o.path)
      s.ring = null
    }
  }
  completeJob(s, job.id, nowMs, out)
}
