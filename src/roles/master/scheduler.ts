// The master's decisions, pure: step(state, event) → { state, actions, changes }.
// Events are past-tense facts stamped with the time; actions are what the driver must do.
// No await, no clock, no randomness here: a fake clock tests the lease in microseconds.
// step() changes `s` in place (copying is too costly for large jobs); nothing else may.
import { attemptIdOf, type AttemptId, type JobId, type WorkerId } from '../../api/ids'
import type { Heartbeat } from '../../api/heartbeat'
import type { JobError, JobResult, SinkResult } from '../../api/jobs'
import type { MapOutput, TaskReport, TaskSpec } from '../../api/tasks'
import { SINK_OPS } from '../../engine/dag'
import type { Op } from '../../api/jobs'
import { rangeBounds } from './range-bounds'
import { expireLeases, onHeartbeat, onOutputsOverwritten, onStaleOutputsCleared, onWorkerUnreachable } from './worker-events'
import { endAttempt, onCommitRequested, onLaunchFailed, onReport } from './task-events'
import { isLive, ringOf, zeroMetrics, type AttemptRun, type JobRun, type MasterState, type StageRun, type TaskRun, type WorkerRun } from './state'
import { allSucceeded, countsOf, indexTasks, peekPending, setTaskState, takePending } from './task-index'

export type MasterEvent =
  | { kind: 'heartbeat-received'; nowMs: number; hb: Heartbeat }
  | { kind: 'lease-check-due'; nowMs: number }
  | { kind: 'job-submitted'; nowMs: number; job: JobRun }
  | { kind: 'task-reported'; nowMs: number; report: TaskReport }
  | { kind: 'launch-failed'; nowMs: number; attempt: AttemptId; message: string; unreachable: boolean }
  | { kind: 'commit-requested'; nowMs: number; attempt: AttemptId }
  | { kind: 'output-finalized'; nowMs: number; job: JobId }
  | { kind: 'finalize-failed'; nowMs: number; job: JobId; message: string; worker?: WorkerId; incarnation?: string; unreachable?: boolean }
  | { kind: 'job-cancel-requested'; nowMs: number; job: JobId }
  | { kind: 'worker-unreachable'; nowMs: number; worker: WorkerId; incarnation: string }
  /** the job being submitted overwrites these outputs: live workers clear them now */
  | { kind: 'outputs-overwritten'; nowMs: number; paths: string[] }
  | { kind: 'stale-outputs-cleared'; nowMs: number; worker: WorkerId; incarnation: string; ok: boolean }

export type MasterAction =
  | { kind: 'launch'; worker: WorkerId; address: string; spec: TaskSpec }
  | { kind: 'kill'; address: string; attempt: AttemptId }
  /** remove the job's shuffle data and temporary files; `outputs` are removed whole (a failed or
   *  cancelled job leaves no partial output), `keep` only lose their _temporary folder */
  | { kind: 'drop-job-data'; address: string; job: JobId; outputs: string[]; keepOutputs: boolean }
  | { kind: 'finalize-output'; address: string; job: JobId; paths: string[]; worker: WorkerId; incarnation: string }
  /** each path's files written before its last overwrite (`ageMs` ago) */
  | { kind: 'clear-stale-outputs'; address: string; worker: WorkerId; incarnation: string; paths: { path: string; ageMs: number }[] }

// An attempt change carries the row itself: a finished job's attempts leave memory in the same step.
export type StoreChange = { kind: 'job'; job: JobId } | { kind: 'job-created'; job: JobId } | { kind: 'attempt'; attempt: AttemptRun } | { kind: 'worker'; worker: WorkerId }

export type Step = { state: MasterState; actions: MasterAction[]; changes: StoreChange[] }

/** Collected for at most 64 MiB, beyond that the job fails and says to write instead. */
export const COLLECT_LIMIT_BYTES = 64 * 1024 * 1024

export function step(s: MasterState, e: MasterEvent): Step {
  const out: Step = { state: s, actions: [], changes: [] }
  switch (e.kind) {
    case 'heartbeat-received': onHeartbeat(s, e.hb, e.nowMs, out); break
    case 'lease-check-due': expireLeases(s, e.nowMs, out); break
    case 'job-submitted': s.jobs.set(e.job.id, e.job); out.changes.push({ kind: 'job-created', job: e.job.id }, { kind: 'job', job: e.job.id }); break
    case 'task-reported': onReport(s, e.report, e.nowMs, out); break
    case 'launch-failed': onLaunchFailed(s, e.attempt, e.message, e.unreachable, e.nowMs, out); break
    case 'commit-requested': onCommitRequested(s, e.attempt, out); break
    case 'output-finalized': completeJob(s, e.job, e.nowMs, out); break
    case 'finalize-failed': onFinalizeFailed(s, e, out); break
    case 'job-cancel-requested': endJob(s, e.job, 'CANCELLED', null, e.nowMs, out); break
    case 'worker-unreachable': onWorkerUnreachable(s, e.worker, e.incarnation, e.nowMs, out); break
    case 'outputs-overwritten': onOutputsOverwritten(s, e.paths, e.nowMs); break
    case 'stale-outputs-cleared': onStaleOutputsCleared(s, e.worker, e.incarnation, e.ok); break
    default: return assertNever(e)
  }
  schedule(s, e.nowMs, out)
  return out
}

// ---- jobs ----------------------------------------------------------------------------------

export function failJob(s: MasterState, job: JobId, error: JobError, nowMs: number, out: Step): void {
  endJob(s, job, 'FAILED', error, nowMs, out)
}

export function endJob(s: MasterState, id: JobId, state: 'FAILED' | 'CANCELLED' | 'SUCCEEDED', error: JobError | null, nowMs: number, out: Step): void {
  const job = s.jobs.get(id)
  if (job === undefined || job.state === 'SUCCEEDED' || job.state === 'FAILED' || job.state === 'CANCELLED') return
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
  for (const w of s.workers.values()) {
    if (isLive(w)) out.actions.push({ kind: 'drop-job-data', address: w.address, job: id, outputs: job.outputs, keepOutputs: state === 'SUCCEEDED' })
  }
  out.changes.push({ kind: 'job', job: id })
}

function completeJob(s: MasterState, id: JobId, nowMs: number, out: Step): void {
  const job = s.jobs.get(id)
  if (job === undefined || job.state !== 'RUNNING') return
  const result = assembleResult(job)
  if ('error' in result) { failJob(s, id, { message: result.error, node_id: result.node, task_id: null, record: null }, nowMs, out); return }
  job.result = result
  endJob(s, id, 'SUCCEEDED', null, nowMs, out)
}

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
        if (JSON.stringify(values).length > COLLECT_LIMIT_BYTES) {
          return { error: `collect "${nodeId}" gathered more than 64 MiB: write the result with write_text or write_jsonl instead`, node: nodeId }
        }
        sinks[nodeId] = { op: 'collect', values }
      } else if (node.op === 'write_text' || node.op === 'write_jsonl') {
        const before = prev !== undefined && 'files' in prev ? prev : { files: 0, records: 0 }
        sinks[nodeId] = { op: node.op, path: node.path!, files: before.files + stage.tasks.length, records: before.records + records }
      }
    }
  }
  return { sinks }
}

// ---- scheduling ----------------------------------------------------------------------------

/** Gives pending tasks of runnable stages to live workers with free slots, round-robin, jobs in
 *  submission order; starts finalizing jobs whose stages are all done. Costs O(jobs × stages) plus
 *  the launches it makes: it reads the stages' task indexes, never their tasks. */
function schedule(s: MasterState, nowMs: number, out: Step): void {
  let ring: WorkerRun[] | undefined   // built on first need: most events launch nothing
  let full = false                    // no live worker has a free slot
  for (const job of s.jobs.values()) {
    if (job.state !== 'QUEUED' && job.state !== 'RUNNING') continue
    if (job.state === 'QUEUED') { job.state = 'RUNNING'; job.startedMs = nowMs; out.changes.push({ kind: 'job', job: job.id }) }
    for (const stage of job.stages) {
      if (stage.state === 'SUCCEEDED') continue
      if (!stage.plan.depends_on.every(d => job.stages[d]?.state === 'SUCCEEDED')) continue
      if (stage.state === 'WAITING') { stage.state = 'RUNNING'; out.changes.push({ kind: 'job', job: job.id }) }
      if (allSucceeded(stage)) { stage.state = 'SUCCEEDED'; continue }
      while (!full) {
        const task = peekPending(stage)
        if (task === undefined) break
        ring ??= ringOf(s)
        // Undefined only when no worker has a free slot (the avoid list is a preference).
        const w = pickWorker(s, ring, task.failedOn)
        if (w === undefined) { full = true; break }
        takePending(stage, task)
        out.actions.push(launch(s, job, stage, task, w, nowMs, out))
      }
    }
    if (job.stages.every(st => st.state === 'SUCCEEDED') && !job.finalizing) startFinalize(s, job, nowMs, out)
  }
}

// The worker asked to write _SUCCESS may have died since. One that refuses connections is lost at
// once (as a refused launch is) and the write goes to another without counting as a failure; any
// other error counts, and the next try goes to another worker if there is one: three at most.
function onFinalizeFailed(s: MasterState, e: Extract<MasterEvent, { kind: 'finalize-failed' }>, out: Step): void {
  const job = s.jobs.get(e.job)
  if (job === undefined || job.state !== 'RUNNING') return
  job.finalizing = false
  job.finalizeAvoid = e.worker
  if (e.unreachable === true && e.worker !== undefined && e.incarnation !== undefined && onWorkerUnreachable(s, e.worker, e.incarnation, e.nowMs, out)) return
  job.finalizeTries = (job.finalizeTries ?? 0) + 1
  if (job.finalizeTries >= 3) failJob(s, e.job, { message: `writing _SUCCESS failed: ${e.message}`, node_id: null, task_id: null, record: null }, e.nowMs, out)
}

function startFinalize(s: MasterState, job: JobRun, nowMs: number, out: Step): void {
  if (job.outputs.length === 0) { completeJob(s, job.id, nowMs, out); return }
  const live = [...s.workers.values()].filter(isLive)
  const w = live.find(x => x.id !== job.finalizeAvoid) ?? live[0]
  if (w === undefined) return   // retried on the next event, once a worker is back
  job.finalizing = true
  out.actions.push({ kind: 'finalize-output', address: w.address, job: job.id, paths: job.outputs, worker: w.id, incarnation: w.incarnation })
}

/** Round-robin over live workers with a free slot, skipping those where this task failed unless
 *  no other has room. */
function pickWorker(s: MasterState, ring: readonly WorkerRun[], avoid: readonly WorkerId[] = []): WorkerRun | undefined {
  for (const strict of avoid.length > 0 ? [true, false] : [false]) {
    for (let i = 0; i < ring.length; i++) {
      const w = ring[(s.rr + i) % ring.length]!
      if (w.running.size >= w.slots || (strict && avoid.includes(w.id))) continue
      s.rr = (s.rr + i + 1) % ring.length
      return w
    }
  }
  return undefined
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
    partition: task.partition, params: job.params, stage: stage.plan,
    split: stage.plan.root.kind === 'source' ? stage.splits[task.partition] ?? null : null,
    shuffle_inputs: [
      ...(stage.plan.root.kind === 'shuffle' ? stage.plan.root.shuffle_ids.map(sid => ({ shuffle_id: sid, map_outputs: mapOutputs(job, sid, task.partition) })) : []),
      // A broadcast join's small side is all in partition 0 of its shuffle, for every task.
      ...(stage.plan.broadcasts ?? []).map(b => ({ shuffle_id: b.shuffle_id, map_outputs: mapOutputs(job, b.shuffle_id, 0) })),
    ],
    incarnation: w.incarnation,
  }
  const bounds = rangeBounds(job, stage)
  if (bounds !== undefined) spec.range_bounds = bounds
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

export const isSinkOp = (op: string): boolean => SINK_OPS.has(op as Op)

function assertNever(x: never): never { throw new Error(`unhandled event ${JSON.stringify(x)}`) }
