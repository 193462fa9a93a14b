// The master's decisions, pure: step(state, event) → { state, actions, changes }.
// Events are past-tense facts stamped with the time; actions are what the driver must do.
// No await, no clock, no randomness here: a fake clock tests the lease in microseconds.
// step() changes `s` in place (copying is too costly for large jobs); nothing else may.
//
// This file is the table of contents and the scheduling loop; the vocabulary is in events.ts, and
// each kind of event is decided in its own file: worker-events, task-events, finalize, job-end.
import { attemptIdOf } from '../../api/ids'
import { taskTimeoutMs } from '../../api/jobs'
import type { MapOutput, StagePlan, TaskSpec } from '../../api/tasks'
import { SINK_OPS } from '../../engine/dag'
import type { Op } from '../../api/jobs'
import { MAX_LAUNCHES_PER_STEP, type MasterAction, type MasterEvent, type Step } from './events'
import { rangeBounds } from './range-bounds'
import { expireLeases, onHeartbeat, onStaleOutputsCleared, onWorkerUnreachable } from './worker-events'
import { onCommitRequested, onLaunchFailed, onReport } from './task-events'
import { endJob, failJob, freeDataset } from './job-end'
import { takeHeld, unavailableAfterMs, unavailableError, unavailableSplit } from './placement'
import { askReplicas, onReplicaFailed, onReplicaMade } from './replicas'
import { finishIfAnswered, onFinalizeFailed, onFinalized, startFinalize } from './finalize'
import { ringOf, zeroMetrics, type AttemptRun, type JobRun, type MasterState, type StageRun, type TaskRun, type WorkerRun } from './state'
import { allSucceeded, peekPending, setTaskState, takePending } from './task-index'
import { cachedBlockOf, cachedHolder, localityChoice } from './locality'
import { checkDatasetRead, explainRecomputeFailure, keepRecomputed, recomputeFailure } from './recompute'
import { keepsBlock } from './lineage'
import { hasRoom } from './queue-ahead'
import type { WorkerId } from '../../api/ids'

export type { MasterAction, MasterEvent, Step, StoreChange } from './events'
export { COLLECT_LIMIT_BYTES } from './events'
export { endJob, failJob } from './job-end'

export function step(s: MasterState, e: MasterEvent): Step {
  const out: Step = { state: s, actions: [], changes: [] }
  switch (e.kind) {
    case 'heartbeat-received': onHeartbeat(s, e.hb, e.nowMs, out); break
    case 'lease-check-due': expireLeases(s, e.nowMs, out); break
    case 'schedule-due': break
    case 'job-submitted': s.jobs.set(e.job.id, e.job); out.changes.push({ kind: 'job-created', job: e.job.id }, { kind: 'job', job: e.job.id }); break
    case 'task-reported': {
      const failed = recomputeFailure(s, e.report)
      onReport(s, e.report, e.nowMs, out)
      keepRecomputed(s, e.report, e.nowMs, out)
      explainRecomputeFailure(failed)
      break
    }
    case 'launch-failed': onLaunchFailed(s, e.attempt, e.message, e.unreachable, e.permanent === true, e.nowMs, out); break
    case 'commit-requested': onCommitRequested(s, e.attempt, out); break
    case 'output-finalized': onFinalized(s, e, out); break
    case 'finalize-failed': onFinalizeFailed(s, e, out); break
    case 'job-cancel-requested': endJob(s, e.job, 'CANCELLED', null, e.nowMs, out); break
    case 'dataset-delete-requested': deleteDataset(s, e.name, out); break
    case 'worker-unreachable': onWorkerUnreachable(s, e.worker, e.incarnation, e.nowMs, out); break
    case 'stale-outputs-cleared': onStaleOutputsCleared(s, e.worker, e.incarnation, e.ok); break
    case 'replica-made': onReplicaMade(s, e, out); break
    case 'replica-failed': onReplicaFailed(s, e, out); break
    default: return assertNever(e)
  }
  schedule(s, e.nowMs, out, e.kind === 'lease-check-due')
  return out
}

/** A dataset leaves the catalog, and every live worker frees its memory and files. A job already
 *  reading it fails at its next launch (it was deleted), not with a partial read. */
function deleteDataset(s: MasterState, name: string, out: Step): void {
  const d = s.datasets.get(name)
  if (d === undefined) return
  s.datasets.delete(name)
  out.changes.push({ kind: 'dataset', name, dataset: null })
  freeDataset(s, d, out)
}

// ---- scheduling ----------------------------------------------------------------------------

/** Gives pending tasks of runnable stages to live workers with free slots, round-robin, jobs in
 *  submission order; starts finalizing jobs whose stages are all done. Costs O(jobs × stages) plus
 *  the launches it makes: it reads the stages' task indexes, never their tasks. */
function schedule(s: MasterState, nowMs: number, out: Step, checkHolders: boolean): void {
  let ring: WorkerRun[] | undefined   // built on first need: most events launch nothing
  let full = false                    // no live worker has a free slot
  s.scheduleMore = false
  // Launches beyond this step's bound wait for schedule-due (the driver posts it in a later turn).
  const cap = out.actions.length + MAX_LAUNCHES_PER_STEP
  const capped = (): boolean => {
    if (out.actions.length < cap) return false
    s.scheduleMore = true
    return true
  }
  for (const job of s.jobs.values()) {
    if (job.state !== 'QUEUED' && job.state !== 'RUNNING') continue
    if (job.state === 'QUEUED') { job.state = 'RUNNING'; job.startedMs = nowMs; out.changes.push({ kind: 'job', job: job.id }) }
    for (const stage of job.stages) {
      if (job.state !== 'RUNNING') break
      if (stage.state === 'SUCCEEDED') continue
      if (!stage.plan.depends_on.every(d => job.stages[d]?.state === 'SUCCEEDED')) continue
      if (stage.state === 'WAITING') { stage.state = 'RUNNING'; out.changes.push({ kind: 'job', job: job.id }) }
      if (allSucceeded(stage)) { stage.state = 'SUCCEEDED'; continue }
      if (stage.byDisk !== undefined) {
        ring ??= ringOf(s)
        if (!full) placeHeld(s, job, stage, ring, nowMs, out, capped)
        if (capped()) full = true
        if (checkHolders) checkUnavailable(s, job, stage, nowMs, out)
        continue
      }
      while (!full) {
        if (capped()) { full = true; break }
        const task = peekPending(stage)
        if (task === undefined) break
        // A persisted partition that is gone is recomputed from its lineage first (the stage
        // waits for it), or the job fails at once naming it, rather than read less.
        const lost = checkDatasetRead(s, job, stage, task, out)
        if (lost === 'wait') break
        if (lost !== undefined) { failJob(s, job.id, { message: lost, node_id: stage.plan.root.node.id, task_id: null, record: null }, nowMs, out); break }
        ring ??= ringOf(s)
        const placed = placeTask(s, ring, job, stage, task, nowMs)
        // The task waits for the holder of its cached partition; others behind it whose holders
        // have a free slot go there meanwhile.
        if (placed === 'wait') { launchLocalBehind(s, ring, job, stage, task, nowMs, out); break }
        // Undefined only when no worker has a free slot (the avoid list is a preference).
        const w = placed ?? pickWorker(s, ring, stage, task.failedOn)
        if (w === undefined) { full = true; break }
        takePending(stage, task)
        out.actions.push(launch(s, job, stage, task, w, nowMs, out))
      }
    }
    if (job.state !== 'RUNNING') continue
    if (job.replicaDirty === true || job.replicaWaitSinceMs !== undefined) { job.replicaDirty = false; askReplicas(s, job, nowMs, out) }
    if (job.state !== 'RUNNING') continue
    if (!job.finalizing && job.stages.every(st => st.state === 'SUCCEEDED')) startFinalize(s, job, nowMs, out)
    else finishIfAnswered(s, job, nowMs, out)
  }
}

/** Splits that must run where their files are: each worker with a free slot, in turn, takes the
 *  next split its disk holds, until none can take one. */
function placeHeld(s: MasterState, job: JobRun, stage: StageRun, ring: readonly WorkerRun[], nowMs: number, out: Step, capped: () => boolean): void {
  for (let progress = true; progress && job.state === 'RUNNING';) {
    progress = false
    for (let i = 0; i < ring.length; i++) {
      if (capped()) return
      const at = (s.rr + i) % ring.length
      const w = ring[at]!
      if (!hasRoom(w, stage)) continue
      const task = takeHeld(stage, w)
      if (task === undefined) continue
      s.rr = (at + 1) % ring.length
      out.actions.push(launch(s, job, stage, task, w, nowMs, out))
      progress = true
    }
  }
}

/** A split with no live holder waits a bounded time, then fails the job (INPUT_UNAVAILABLE). */
function checkUnavailable(s: MasterState, job: JobRun, stage: StageRun, nowMs: number, out: Step): void {
  const u = unavailableSplit(s, stage)
  if (u === undefined) { delete stage.unavailableSinceMs; return }
  stage.unavailableSinceMs ??= nowMs
  if (nowMs - stage.unavailableSinceMs > unavailableAfterMs(s)) failJob(s, job.id, unavailableError(s, job, stage, u), nowMs, out)
}

/** Round-robin over live workers with room (a free slot, or a place in its queue: queue-ahead.ts),
 *  skipping those where this task failed unless no other has room. */
function pickWorker(s: MasterState, ring: readonly WorkerRun[], stage: StageRun, avoid: readonly WorkerId[] = []): WorkerRun | undefined {
  for (const strict of avoid.length > 0 ? [true, false] : [false]) {
    for (let i = 0; i < ring.length; i++) {
      const w = ring[(s.rr + i) % ring.length]!
      if (!hasRoom(w, stage) || (strict && avoid.includes(w.id))) continue
      s.rr = (s.rr + i + 1) % ring.length
      return w
    }
  }
  return undefined
}

/** The holder of the task's cached partition when it has a free slot; 'wait' while the stage may
 *  still wait for it; undefined: any worker (no holder, or the stage waited long enough). The wait
 *  is the stage's, from its first task kept waiting until one runs on its holder (Spark's delay
 *  scheduling): once it is over, the tasks after it do not each wait again. */
function placeTask(s: MasterState, ring: readonly WorkerRun[], job: JobRun, stage: StageRun, task: TaskRun, nowMs: number): WorkerRun | 'wait' | undefined {
  const holder = s.workers.get(cachedHolder(job, stage, task) ?? ('' as WorkerId))
  if (holder === undefined) return undefined
  const free = holderFree(ring, holder, stage, task)
  const choice = localityChoice(free, free ? 0 : nowMs - (stage.localityWaitFromMs ??= nowMs))
  if (choice === 'holder') delete stage.localityWaitFromMs
  return choice === 'holder' ? holder : choice === 'wait' ? 'wait' : undefined
}

const holderFree = (ring: readonly WorkerRun[], holder: WorkerRun, stage: StageRun, task: TaskRun): boolean =>
  ring.includes(holder) && hasRoom(holder, stage) && !(task.failedOn ?? []).includes(holder.id)

/** How far behind a waiting task the scheduler looks for tasks whose holder is free: bounded, so
 *  that an event costs what it launches, not the size of the stage. */
const LOCAL_LOOKAHEAD = 1024

/** Launches PENDING tasks after `head` (in partition order, at most LOCAL_LOOKAHEAD of them) on
 *  the holders of their cached partitions that have a free slot. They stay in the stage's queue,
 *  which drops them when it reaches them (task-index.ts checks each entry's state when read). */
function launchLocalBehind(s: MasterState, ring: readonly WorkerRun[], job: JobRun, stage: StageRun, head: TaskRun, nowMs: number, out: Step): void {
  if (!ring.some(w => hasRoom(w, stage))) return
  const end = Math.min(stage.tasks.length, head.partition + 1 + LOCAL_LOOKAHEAD)
  for (let p = head.partition + 1; p < end; p++) {
    const t = stage.tasks[p]!
    if (t.state !== 'PENDING') continue
    const holder = s.workers.get(cachedHolder(job, stage, t) ?? ('' as WorkerId))
    if (holder === undefined || !holderFree(ring, holder, stage, t)) continue
    out.actions.push(launch(s, job, stage, t, holder, nowMs, out))
  }
}

function launch(s: MasterState, job: JobRun, stage: StageRun, task: TaskRun, w: WorkerRun, nowMs: number, out: Step): MasterAction {
  const attemptNo = task.attempts++
  const id = attemptIdOf(task.id, attemptNo)
  const a: AttemptRun = {
    id, job: job.id, task: task.id, stage: stage.plan.stage_id, partition: task.partition, attempt: attemptNo,
    worker: w.id, incarnation: w.incarnation, state: 'RUNNING', startedMs: nowMs, finishedMs: null, metrics: zeroMetrics(), error: null,
  }
  s.attempts.set(id, a)
  w.running.add(id)
  setTaskState(stage, task, 'RUNNING')
  task.current = id
  out.changes.push({ kind: 'attempt', attempt: a })
  const spec: TaskSpec = {
    job_id: job.id, task_id: task.id, attempt_id: id, attempt: attemptNo, stage_id: stage.plan.stage_id,
    partition: task.partition, params: stage.lineage?.params ?? job.params, stage: specPlan(stage, task.partition),
    split: stage.plan.root.kind === 'source' ? stage.splits[task.partition] ?? null : null,
    shuffle_inputs: [
      ...(stage.plan.root.kind === 'shuffle' ? stage.plan.root.shuffle_ids.map(sid => ({ shuffle_id: sid, map_outputs: mapOutputs(job, sid, task.partition) })) : []),
      ...(stage.plan.root.kind === 'cached' ? [{ shuffle_id: stage.plan.root.cache_id, map_outputs: cachedOutput(s, job, stage, stage.plan.root.cache_id, task.partition) }] : []),
      // A broadcast join's small side is all in partition 0 of its shuffle, for every task.
      ...(stage.plan.broadcasts ?? []).map(b => ({ shuffle_id: b.shuffle_id, map_outputs: mapOutputs(job, b.shuffle_id, 0) })),
    ],
    incarnation: w.incarnation,
  }
  const bounds = stage.lineage !== undefined ? stage.lineage.bounds : rangeBounds(job, stage)
  if (bounds !== undefined) spec.range_bounds = bounds
  const limit = taskTimeoutMs(job.request)
  if (limit !== undefined) spec.task_timeout_ms = limit
  return { kind: 'launch', worker: w.id, address: w.address, spec }
}

/** Where the blocks of one reduce partition are; map outputs with nothing for it are skipped.
 *  After a union, several stages write one shuffle: map partitions are numbered across them. */
function mapOutputs(job: JobRun, shuffleId: string, reduce: number): MapOutput[] {
  const refs: MapOutput[] = []
  let base = 0
  for (const writer of job.stages) {
    if (!writer.plan.shuffle_writes.some(w => w.shuffle_id === shuffleId)) continue
    for (const t of writer.tasks) {
      const o = t.output
      if (o === null) continue
      if ((o.sizes.get(shuffleId)?.[reduce] ?? 0) === 0) continue
      refs.push({ map_partition: base + t.partition, attempt_id: o.attempt, worker_id: o.worker, address: o.address, bytes: o.sizes.get(shuffleId)?.[reduce] ?? 0 })
    }
    base += writer.tasks.length
  }
  return refs
}

/** A read_dataset stage's plan without its blocks (every task would carry all of them): a task
 *  is told of its own block in its shuffle inputs. Made once per stage plan. */
const lightPlans = new WeakMap<StagePlan, StagePlan>()
const noKeepPlans = new WeakMap<StagePlan, StagePlan>()
function specPlan(stage: StageRun, partition: number): StagePlan {
  const plan = stage.plan
  const lin = stage.lineage
  // A recompute task that runs only for its map output writes no block of the dataset.
  if (lin !== undefined && !keepsBlock(lin.writes, partition)) {
    let bare = noKeepPlans.get(plan)
    if (bare === undefined) noKeepPlans.set(plan, bare = { ...plan, shuffle_writes: plan.shuffle_writes.filter(w => !(w.persist !== undefined && w.owner === lin.owner)) })
    return bare
  }
  const root = plan.root
  if (root.kind !== 'cached' || root.dataset === undefined) return plan
  let light = lightPlans.get(plan)
  if (light === undefined) lightPlans.set(plan, light = { ...plan, root: { ...root, dataset: { ...root.dataset, blocks: [] } } })
  return light
}

/** The one kept block a cached stage's task reads (reduce partition 0 of one map output); none
 *  when that partition is empty. Its writers have all succeeded before the task is launched. */
function cachedOutput(s: MasterState, job: JobRun, stage: StageRun, cacheId: string, partition: number): MapOutput[] {
  const root = stage.plan.root
  if (root.kind === 'cached' && root.dataset !== undefined) {
    const b = root.dataset.blocks[partition]
    if (b === undefined || b.bytes === 0) return []
    return [{ map_partition: partition, attempt_id: b.attempt, worker_id: b.worker, address: s.workers.get(b.worker as WorkerId)?.address ?? '', bytes: b.bytes }]
  }
  const t = cachedBlockOf(job, cacheId, partition)
  const o = t?.output
  if (t === undefined || o === null || o === undefined) return []
  const bytes = o.sizes.get(cacheId)?.[0] ?? 0
  return bytes === 0 ? [] : [{ map_partition: partition, attempt_id: o.attempt, worker_id: o.worker, address: o.address, bytes }]
}

export const isSinkOp = (op: string): boolean => SINK_OPS.has(op as Op)

function assertNever(x: never): never { throw new Error(`unhandled event ${JSON.stringify(x)}`) }
