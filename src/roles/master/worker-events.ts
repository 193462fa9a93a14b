// Worker events: heartbeats, leases, lost workers. Part of step(); pure, changes `s` in place.
//
//  (first beat) ──> IDLE/BUSY/PAUSED ──silent > timeout, refuses connections, or restarted──> DEAD
//                        ^                                                                    │
//                        └──────────── heartbeat: a new incarnation, nothing old counts ──────┘
import type { JobId, WorkerId } from '../../api/ids'
import { HELD_BLOCKS_MAX, type Heartbeat } from '../../api/heartbeat'
import { LAUNCH_GRACE_MS, type Step } from './events'
import { endAttempt, requeue } from './attempts'
import { retryLost } from './retries'
import { swapOf } from './swap'
import { liveDisks, outputsSince, reconcileHeld, settleRecorded, settleStaged } from './catalog'
import { forgetReplicasTo } from './replicas'
import { isLive, type AttemptRun, type JobRun, type MasterState, type Overwrite, type StageRun, type WorkerRun } from './state'
import { cachedBlockOf } from './locality'

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
    // Outputs replaced since the old incarnation was last heard of were swapped in on the disks
    // of the workers live then, not on this one's: their old parts may still be here.
    // A worker new by its id may mount the disk of one that is gone (restarted under another id).
    const disk = hb.disk_id ?? `own-${id}`
    const away = w === undefined ? awayOfDisk(s, disk) : w.lostMs ?? nowMs
    const stale = away === undefined ? [] : missedOverwrites(s, away)
    const settle = away === undefined ? [] : outputsSince(s, away).map(o => o.path)
    w = {
      id, address: hb.address, disk, status: hb.status, slots: hb.slots ?? 1, incarnation: `${nowMs.toString(36)}-${++s.incarnations}`,
      lastSeenMs: nowMs, joinedMs: nowMs, memMb: hb.mem_usage_mb, activeTasks: hb.active_tasks, running: new Set(),
      ...(stale.length > 0 ? { staleOutputs: stale } : {}),
      ...(settle.length > 0 ? { staleSettle: settle } : {}),
    }
    s.workers.set(id, w)
    s.ring = null
    for (const job of s.jobs.values()) job.replicaDirty = true
    out.changes.push({ kind: 'worker', worker: id })
    askToClear(s, w, nowMs, out)
    return
  }
  askToClear(s, w, nowMs, out)   // again, if an earlier request failed
  if (hb.disk_id !== undefined && hb.disk_id !== w.disk) { w.disk = hb.disk_id; out.changes.push({ kind: 'worker', worker: id }) }
  if (w.status !== hb.status || w.address !== hb.address) out.changes.push({ kind: 'worker', worker: id })
  if ((w.status === 'PAUSED') !== (hb.status === 'PAUSED')) s.ring = null
  w.status = hb.status
  w.address = hb.address
  w.slots = hb.slots ?? w.slots
  w.lastSeenMs = nowMs
  w.memMb = hb.mem_usage_mb
  w.activeTasks = hb.active_tasks
  if (hb.cached_memory_bytes !== undefined || hb.cached_disk_bytes !== undefined) w.cached = { memoryBytes: hb.cached_memory_bytes ?? 0, diskBytes: hb.cached_disk_bytes ?? 0 }
  if (hb.running !== undefined) reconcile(s, w, new Set(hb.running), nowMs, out)
  // A list at the bound may have been cut short: it says nothing of what is gone.
  if (hb.datasets !== undefined && hb.datasets.length < HELD_BLOCKS_MAX) {
    const held = reconcileHeld(s, w.id, hb.datasets, nowMs)
    for (const d of held.changed) out.changes.push({ kind: 'dataset', name: d.name, dataset: d })
    for (const owner of held.drop) out.actions.push({ kind: 'drop-job-data', address: w.address, job: owner as JobId, outputs: [], keepOutputs: true })
  }
}

/** Since when a disk has had no live worker, if a worker of it is known to have been lost. */
function awayOfDisk(s: MasterState, disk: string): number | undefined {
  let since: number | undefined
  for (const w of s.workers.values()) {
    if (w.disk !== disk) continue
    if (isLive(w)) return undefined
    if (w.lostMs !== undefined) since = Math.min(since ?? Infinity, w.lostMs)
  }
  return since
}

/** The last replacement of each output since `sinceMs`: an earlier one's parts were replaced again. */
function missedOverwrites(s: MasterState, sinceMs: number): Overwrite[] {
  const last = new Map<string, Overwrite>()
  for (const o of s.overwrites) if (o.atMs >= sinceMs) last.set(o.path, o)
  return [...last.values()]
}

// An attempt we think runs there but the worker does not list (and it is not on its way) was
// lost: its report never came, say across a master restart. Re-run it rather than wait for ever.
function reconcile(s: MasterState, w: WorkerRun, listed: ReadonlySet<string>, nowMs: number, out: Step): void {
  for (const id of [...w.running]) {
    const a = s.attempts.get(id)
    if (a === undefined || listed.has(id) || nowMs - a.startedMs < LAUNCH_GRACE_MS) continue
    const why = `worker ${w.id} no longer runs it`
    endAttempt(s, id, 'LOST', why, nowMs, out)
    retryLost(s, a, why, nowMs, out)
  }
}

export function expireLeases(s: MasterState, nowMs: number, out: Step): void {
  for (const w of s.workers.values()) {
    // Strictly after the timeout: a worker heard exactly timeoutMs ago is still alive.
    if (isLive(w) && nowMs - w.lastSeenMs > s.timeoutMs) loseWorker(s, w, `worker ${w.id} lost (no heartbeat for ${s.timeoutMs} ms)`, nowMs, out)
  }
}

function askToClear(s: MasterState, w: WorkerRun, nowMs: number, out: Step): void {
  if ((w.staleOutputs === undefined && w.staleSettle === undefined) || w.clearing === true) return
  w.clearing = true
  const swaps = (w.staleOutputs ?? []).map(o => swapOf(o.path, o.job, o.submittedMs, nowMs))
  const settle = (w.staleSettle ?? []).flatMap(path => {
    const o = s.outputs.get(path)
    if (o === undefined) return []
    const replaced = (w.staleOutputs ?? []).some(x => x.path === path && x.job === o.job)
    return replaced ? [settleRecorded(o, w.disk), settleStaged(o, w.disk)] : [settleRecorded(o, w.disk)]
  })
  out.actions.push({ kind: 'clear-stale-outputs', address: w.address, worker: w.id, incarnation: w.incarnation, swaps, settle })
}

/** Kept for an hour, and the last 1 000 (in the store too): a worker away longer is not swapped. */
const OVERWRITES_KEPT = 1_000
const OVERWRITES_KEPT_MS = 3_600_000

export function recordOverwrite(s: MasterState, o: Overwrite, out: Step): void {
  s.overwrites.push(o)
  s.overwrites = s.overwrites.filter(x => o.atMs - x.atMs <= OVERWRITES_KEPT_MS).slice(-OVERWRITES_KEPT)
  out.changes.push({ kind: 'overwrite', overwrite: o })
}

export const overwritesKept = (nowMs: number) => ({ sinceMs: nowMs - OVERWRITES_KEPT_MS, count: OVERWRITES_KEPT })

/** Swapped: the worker may get tasks. Failed: asked again with its next heartbeat, three times at
 *  most; then it gets tasks anyway (a worker kept idle for ever would be worse than stale files). */
export function onStaleOutputsCleared(s: MasterState, worker: WorkerId, incarnation: string, ok: boolean): void {
  const w = s.workers.get(worker)
  if (w === undefined || w.incarnation !== incarnation) return
  w.clearing = false
  if (!ok && (w.clearFailures = (w.clearFailures ?? 0) + 1) < 3) return
  delete w.staleOutputs
  delete w.staleSettle
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

/** The worker is gone: its running attempts are LOST; attempts elsewhere that read map outputs
 *  it held are stopped (they would only wait on it, holding their slots) and run again once those
 *  outputs are recomputed; and map outputs it held that unfinished stages still need are
 *  recomputed, for every job at once (not one fetch failure at a time). */
export function loseWorker(s: MasterState, w: WorkerRun, why: string, nowMs: number, out: Step): void {
  s.losses = (s.losses ?? 0) + 1
  w.status = 'DEAD'
  w.lostMs = nowMs
  s.ring = null
  out.changes.push({ kind: 'worker', worker: w.id })
  for (const id of [...w.running]) {
    const a = s.attempts.get(id)
    endAttempt(s, id, 'LOST', why, nowMs, out)
    if (a !== undefined) retryLost(s, a, why, nowMs, out, 'loss')
  }
  w.running.clear()
  forgetReplicasTo(s, w.id)
  const live = liveDisks(s)
  for (const job of s.jobs.values()) {
    job.finalizeWaiting?.delete(w.id)
    if (job.state !== 'RUNNING' && job.state !== 'QUEUED') continue
    stopReadersOf(s, job, w, why, nowMs, out)
    if (job.state !== 'RUNNING' && job.state !== 'QUEUED') continue
    job.replicaDirty = true
    if (!live.has(w.disk)) requeueLostParts(s, job, w.disk, live)
    forgetLostOutputs(job, w)
  }
}

/** Requeues the map outputs (shuffle and cache writes) `lost` held that an unfinished stage needs.
 *  A reader whose own output was lost runs again, and then needs its input again though it had
 *  finished reading it: readers are judged first (they come after what they read), and again until
 *  nothing changes. */
function forgetLostOutputs(job: JobRun, lost: WorkerRun): void {
  for (let changed = true; changed;) {
    changed = false
    for (let i = job.stages.length - 1; i >= 0; i--) {
      const stage = job.stages[i]!
      if (stage.plan.shuffle_writes.length === 0 || !neededByUnfinished(job, stage)) continue
      for (const t of stage.tasks) {
        if (t.state === 'SUCCEEDED' && t.output?.worker === lost.id) { requeue(stage, t); stage.state = 'RUNNING'; changed = true }
      }
    }
  }
}

/** Committed parts of a running job whose every copy was on `disk`, which no live worker mounts
 *  now: run again elsewhere, before the job ends (its output is whole on live disks when it
 *  succeeds; the copy left behind is a stray the catalog does not list). Not once a swap may have
 *  begun: a replaced output's parts on that disk are swapped in on its return instead. */
export function requeueLostParts(s: MasterState, job: JobRun, disk: string, live: ReadonlySet<string>): void {
  if (job.swapStarted === true) return
  for (const stage of job.stages) {
    if (!stage.plan.nodes.some(n => n.op === 'write_text' || n.op === 'write_jsonl')) continue
    for (const t of stage.tasks) {
      if (t.state !== 'SUCCEEDED' || t.home?.disk !== disk) continue
      if ((t.replicas ?? []).some(r => live.has(r.disk))) continue
      requeue(stage, t)
      t.sinks = []
      delete t.replicas
      delete t.replicating
      delete t.home
      stage.state = 'RUNNING'
    }
  }
}

/** Running attempts of `job` on other workers that were told to fetch a block from `lost`. */
function stopReadersOf(s: MasterState, job: JobRun, lost: WorkerRun, why: string, nowMs: number, out: Step): void {
  // Per shuffle: the reduce partitions with a block on the lost worker, and the newest such block.
  const held = new Map<string, { parts: Set<number>; firstAtMs: number }>()
  for (const stage of job.stages) {
    for (const t of stage.tasks) {
      if (t.output?.worker !== lost.id) continue
      for (const [sid, sizes] of t.output.sizes) {
        let h = held.get(sid)
        if (h === undefined) held.set(sid, h = { parts: new Set(), firstAtMs: t.output.atMs })
        h.firstAtMs = Math.min(h.firstAtMs, t.output.atMs)
        sizes.forEach((n, p) => { if (n > 0) h!.parts.add(p) })
      }
    }
  }
  if (held.size === 0) return
  for (const stage of job.stages) {
    const root = stage.plan.root
    if (root.kind === 'cached') {
      if (!held.has(root.cache_id)) continue
      // Task p of a cached stage reads the one block map task p kept.
      for (const t of stage.tasks) {
        const a = t.current === null ? undefined : s.attempts.get(t.current)
        const o = cachedBlockOf(job, root.cache_id, t.partition)?.output
        if (a === undefined || a.worker === lost.id || o?.worker !== lost.id || o.atMs > a.startedMs) continue
        stopReader(s, job, a, why, nowMs, out)
        if (job.state !== 'RUNNING') return
      }
      continue
    }
    const reads: [string, number | null][] = [
      ...(stage.plan.root.kind === 'shuffle' ? stage.plan.root.shuffle_ids.map((sid): [string, null] => [sid, null]) : []),
      ...(stage.plan.broadcasts ?? []).map((b): [string, number] => [b.shuffle_id, 0]),
    ]
    if (!reads.some(([sid]) => held.has(sid))) continue
    for (const t of stage.tasks) {
      const a = t.current === null ? undefined : s.attempts.get(t.current)
      if (a === undefined || a.worker === lost.id) continue
      const readsLost = reads.some(([sid, fixed]) => {
        const h = held.get(sid)
        // An attempt started before that block was reported was not told of it.
        return h !== undefined && h.firstAtMs <= a.startedMs && h.parts.has(fixed ?? t.partition)
      })
      if (!readsLost) continue
      stopReader(s, job, a, why, nowMs, out)
      if (job.state !== 'RUNNING') return
    }
  }
}

function stopReader(s: MasterState, job: JobRun, a: AttemptRun, why: string, nowMs: number, out: Step): void {
  const address = s.workers.get(a.worker)?.address
  if (address !== undefined) out.actions.push({ kind: 'kill', address, attempt: a.id })
  const reason = `it read shuffle data from a lost worker (${why})`
  endAttempt(s, a.id, 'LOST', reason, nowMs, out)
  retryLost(s, a, reason, nowMs, out, 'loss')
}

function neededByUnfinished(job: JobRun, stage: StageRun): boolean {
  return job.stages.some(c => c.plan.depends_on.includes(stage.plan.stage_id) && c.state !== 'SUCCEEDED')
}
