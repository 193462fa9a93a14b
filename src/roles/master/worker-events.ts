// Worker events: heartbeats, leases, lost workers. Part of step(); pure, changes `s` in place.
//
//  (first beat) ──> IDLE/BUSY/PAUSED ──silent > timeout, refuses connections, or restarted──> DEAD
//                        ^                                                                    │
//                        └──────────── heartbeat: a new incarnation, nothing old counts ──────┘
import type { WorkerId } from '../../api/ids'
import type { Heartbeat } from '../../api/heartbeat'
import type { Step } from './scheduler'
import { endAttempt } from './task-events'
import { isLive, type AttemptRun, type JobRun, type MasterState, type StageRun, type TaskRun, type WorkerRun } from './state'
import { setTaskState } from './task-index'

/** A launch may still be on its way to the worker when a heartbeat says what it runs. */
export const LAUNCH_GRACE_MS = 5_000

export function onHeartbeat(s: MasterState, hb: Heartbeat, nowMs: number, out: Step): void {
  const id = hb.worker_id as WorkerId
  let w = s.workers.get(id)
  // A worker we declared DEAD, or a process that restarted (it lost everything it held), joins
  // as a new incarnation: nothing of the old one counts. Our workers send "" on their first beat
  // and then echo what we gave them; a seed-format heartbeat without the field is taken as the
  // same process.
  const restarted = w !== undefined && hb.incarnation !== undefined && hb.incarnation !== w.incarnation
  if (w !== undefined && isLive(w) && restarted) loseWorker(s, w, `worker ${id} restarted`, nowMs, out)
  if (w === undefined || !isLive(w) || restarted) {
    // Outputs overwritten since the old incarnation was last heard of were cleared on the disks
    // of the workers live then, not on this one's: their old parts may still be here.
    const away = w === undefined ? undefined : w.lostMs ?? nowMs
    const last = new Map<string, number>()   // the last overwrite of each path since then
    if (away !== undefined) for (const o of s.overwrites) if (o.atMs >= away) last.set(o.path, o.atMs)
    const stale = [...last].map(([path, atMs]) => ({ path, atMs }))
    w = {
      id, address: hb.address, status: hb.status, slots: hb.slots ?? 1, incarnation: `${nowMs.toString(36)}-${++s.incarnations}`,
      lastSeenMs: nowMs, memMb: hb.mem_usage_mb, activeTasks: hb.active_tasks, running: new Set(),
      ...(stale.length > 0 ? { staleOutputs: stale } : {}),
    }
    s.workers.set(id, w)
    s.ring = null
    out.changes.push({ kind: 'worker', worker: id })
    askToClear(w, nowMs, out)
    return
  }
  askToClear(w, nowMs, out)   // again, if an earlier request failed
  if (w.status !== hb.status || w.address !== hb.address) out.changes.push({ kind: 'worker', worker: id })
  if ((w.status === 'PAUSED') !== (hb.status === 'PAUSED')) s.ring = null
  w.status = hb.status
  w.address = hb.address
  w.slots = hb.slots ?? w.slots
  w.lastSeenMs = nowMs
  w.memMb = hb.mem_usage_mb
  w.activeTasks = hb.active_tasks
  if (hb.running !== undefined) reconcile(s, w, new Set(hb.running), nowMs, out)
}

// An attempt we think runs there but the worker does not list (and it is not on its way) was
// lost: its report never came, say across a master restart. Re-run it rather than wait for ever.
function reconcile(s: MasterState, w: WorkerRun, listed: ReadonlySet<string>, nowMs: number, out: Step): void {
  for (const id of [...w.running]) {
    const a = s.attempts.get(id)
    if (a === undefined || listed.has(id) || nowMs - a.startedMs < LAUNCH_GRACE_MS) continue
    endAttempt(s, id, 'LOST', `worker ${w.id} no longer runs it`, nowMs, out)
    requeueIfCurrent(s, a)
  }
}

export function expireLeases(s: MasterState, nowMs: number, out: Step): void {
  for (const w of s.workers.values()) {
    // Strictly after the timeout: a worker heard exactly timeoutMs ago is still alive.
    if (isLive(w) && nowMs - w.lastSeenMs > s.timeoutMs) loseWorker(s, w, `worker ${w.id} lost (no heartbeat for ${s.timeoutMs} ms)`, nowMs, out)
  }
}

function askToClear(w: WorkerRun, nowMs: number, out: Step): void {
  if (w.staleOutputs === undefined || w.clearing === true) return
  w.clearing = true
  const paths = w.staleOutputs.map(o => ({ path: o.path, ageMs: nowMs - o.atMs }))
  out.actions.push({ kind: 'clear-stale-outputs', address: w.address, worker: w.id, incarnation: w.incarnation, paths })
}

/** Kept for an hour, and the last 1 000: a worker away longer than that is not cleared. */
const OVERWRITES_KEPT = 1_000
const OVERWRITES_KEPT_MS = 3_600_000

export function onOutputsOverwritten(s: MasterState, paths: readonly string[], nowMs: number): void {
  for (const path of paths) s.overwrites.push({ path, atMs: nowMs })
  s.overwrites = s.overwrites.filter(o => nowMs - o.atMs <= OVERWRITES_KEPT_MS).slice(-OVERWRITES_KEPT)
}

/** Cleared: the worker may get tasks. Failed: asked again with its next heartbeat, three times at
 *  most; then it gets tasks anyway (a worker kept idle for ever would be worse than stale files). */
export function onStaleOutputsCleared(s: MasterState, worker: WorkerId, incarnation: string, ok: boolean): void {
  const w = s.workers.get(worker)
  if (w === undefined || w.incarnation !== incarnation) return
  w.clearing = false
  if (!ok && (w.clearFailures = (w.clearFailures ?? 0) + 1) < 3) return
  delete w.staleOutputs
  s.ring = null
}

/** A worker that refuses connections is gone: no need to wait for its lease. A word about an
 *  older incarnation changes nothing. True when this lost the worker. */
export function onWorkerUnreachable(s: MasterState, worker: WorkerId, incarnation: string, nowMs: number, out: Step): boolean {
  const w = s.workers.get(worker)
  if (w === undefined || !isLive(w) || w.incarnation !== incarnation) return false
  loseWorker(s, w, `worker ${w.id} refuses connections`, nowMs, out)
  return true
}

/** The worker is gone: its running attempts are LOST, and map outputs it held that unfinished
 *  stages still need are recomputed, for every job at once (not one fetch failure at a time). */
export function loseWorker(s: MasterState, w: WorkerRun, why: string, nowMs: number, out: Step): void {
  w.status = 'DEAD'
  w.lostMs = nowMs
  s.ring = null
  out.changes.push({ kind: 'worker', worker: w.id })
  for (const id of [...w.running]) {
    const a = s.attempts.get(id)
    endAttempt(s, id, 'LOST', why, nowMs, out)
    if (a !== undefined) requeueIfCurrent(s, a)
  }
  w.running.clear()
  for (const job of s.jobs.values()) {
    if (job.state !== 'RUNNING' && job.state !== 'QUEUED') continue
    for (const stage of job.stages) {
      if (stage.plan.shuffle_writes.length === 0 || !neededByUnfinished(job, stage)) continue
      for (const t of stage.tasks) {
        if (t.state === 'SUCCEEDED' && t.output?.worker === w.id) { requeue(stage, t); stage.state = 'RUNNING' }
      }
    }
  }
}

/** Back to PENDING, not counted as a failure. The commit right goes too: a re-run of a task whose
 *  output was lost must be able to commit its sink part again (the rename replaces the old one). */
export function requeue(stage: StageRun, t: TaskRun): void {
  setTaskState(stage, t, 'PENDING')
  t.current = null
  t.output = null
  t.committer = null
}

/** An attempt ended without a result: its task runs again, unless another attempt took over. */
function requeueIfCurrent(s: MasterState, a: AttemptRun): void {
  const stage = s.jobs.get(a.job)?.stages[a.stage]
  const task = stage?.tasks[a.partition]
  if (stage !== undefined && task !== undefined && task.current === a.id) requeue(stage, task)
}

function neededByUnfinished(job: JobRun, stage: StageRun): boolean {
  return job.stages.some(c => c.plan.depends_on.includes(stage.plan.stage_id) && c.state !== 'SUCCEEDED')
}
