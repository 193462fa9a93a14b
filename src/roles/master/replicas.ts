// `replicas: N` on a write sink: each committed part is copied to N-1 other disks before the
// output's _SUCCESS, so that losing a machine loses no output. The worker of the target disk pulls
// the part from a holder through the data service (GET /shuffle_data/output/...). Pure; part of
// step(). A copy that fails is asked of another disk, a bounded number of times; too few disks
// live for too long fails the job, saying so.
import type { WorkerId } from '../../api/ids'
import type { MasterEvent, Step } from './events'
import { failJob } from './job-end'
import { isLive, stagedPath, type JobRun, type MasterState, type StageRun, type TaskRun, type WorkerRun } from './state'
import { liveDisks, partFile, writeNodes, type OutputPart } from './catalog'

/** Failed copy requests per task before its job fails. */
export const REPLICA_TRIES = 6

/** Whether every part of every output has the copies its sink asked for. */
export function replicasComplete(job: JobRun, parts: ReadonlyMap<string, readonly OutputPart[]>): boolean {
  for (const { path, replicas } of writeNodes(job).values()) {
    if (replicas <= 1) continue
    for (const p of parts.get(path) ?? []) if (p != null && p.copies.length < replicas) return false
  }
  return true
}

/** The job's write tasks whose parts still lack copies: asks a worker on another disk to pull each
 *  missing one. Waits (bounded) while too few disks are live. */
export function askReplicas(s: MasterState, job: JobRun, nowMs: number, out: Step): void {
  const nodes = writeNodes(job)
  if (![...nodes.values()].some(n => n.replicas > 1)) return
  const live = liveDisks(s)
  let short = false
  for (const stage of job.stages) {
    if (stage.state !== 'SUCCEEDED' && stage.index.succeeded === 0) continue
    for (const t of stage.tasks) {
      const home = t.state === 'SUCCEEDED' && t.home !== undefined ? s.workers.get(t.home.worker) : undefined
      if (home === undefined) continue
      for (const o of t.sinks) {
        const node = nodes.get(o.node_id)
        if (node === undefined || node.replicas <= 1 || o.part === undefined) continue
        const have = [t.home!.disk, ...(t.replicas ?? []).filter(r => r.node === o.node_id).map(r => r.disk)]
        const asked = (t.replicating ?? []).filter(r => r.node === o.node_id).map(r => r.disk)
        let missing = node.replicas - have.length - asked.length
        if (missing <= 0) continue
        const source = holderOf(s, home, t, o.node_id)
        if (source === undefined) continue   // its holders are away: loseWorker runs the task again
        const file = partFile(job.overwrites.includes(node.path) ? stagedPath(node.path, job.id) : node.path, o.part)
        for (const target of targets(s, live, [...have, ...asked])) {
          if (missing-- <= 0) break
          ;(t.replicating ??= []).push({ node: o.node_id, disk: target.disk, worker: target.id, incarnation: target.incarnation })
          out.actions.push({ kind: 'replicate', address: target.address, worker: target.id, incarnation: target.incarnation, job: job.id, stage: stage.plan.stage_id, partition: t.partition, node: o.node_id, file, from: source.address })
        }
        if (missing > 0) short = true
      }
    }
  }
  if (!short) { delete job.replicaWaitSinceMs; return }
  job.replicaWaitSinceMs ??= nowMs
  if (nowMs - job.replicaWaitSinceMs > 3 * s.timeoutMs) {
    const want = Math.max(...[...nodes.values()].map(n => n.replicas))
    failJob(s, job.id, { message: `"replicas": ${want} needs ${want} workers with disks of their own, and only ${live.size} disk(s) had a live worker for ${Math.round(3 * s.timeoutMs / 1000)} s: start more workers, or ask for fewer replicas`, node_id: null, task_id: null, record: null }, nowMs, out)
  }
}

/** A live worker that holds the part: the committer's, or one of a disk with a copy. */
function holderOf(s: MasterState, home: WorkerRun, t: TaskRun, node: string): WorkerRun | undefined {
  if (isLive(home) && home.disk === t.home?.disk) return home
  const disks = new Set((t.replicas ?? []).filter(r => r.node === node).map(r => r.disk))
  for (const w of s.workers.values()) if (isLive(w) && (w.disk === t.home?.disk || disks.has(w.disk))) return w
  return undefined
}

/** Live workers on disks that hold no copy yet, one a disk, the least busy first. */
function targets(s: MasterState, live: ReadonlySet<string>, taken: readonly string[]): WorkerRun[] {
  const byDisk = new Map<string, WorkerRun>()
  for (const w of s.workers.values()) {
    if (!isLive(w) || !live.has(w.disk) || taken.includes(w.disk) || w.staleOutputs !== undefined || w.staleSettle !== undefined) continue
    const best = byDisk.get(w.disk)
    if (best === undefined || w.running.size < best.running.size) byDisk.set(w.disk, w)
  }
  return [...byDisk.values()].sort((a, b) => a.running.size - b.running.size)
}

export function onReplicaMade(s: MasterState, e: Extract<MasterEvent, { kind: 'replica-made' }>, out: Step): void {
  const found = taskOf(s, e.job, e.stage, e.partition)
  if (found === undefined) return
  const { task } = found
  const i = (task.replicating ?? []).findIndex(r => r.node === e.node && r.worker === e.worker && r.incarnation === e.incarnation)
  if (i < 0) return
  const [r] = task.replicating!.splice(i, 1)
  ;(task.replicas ??= []).push({ node: r!.node, disk: r!.disk, worker: r!.worker })
  // Kept with the committed attempt, so that a restarted master knows the copies.
  const a = task.committer === null ? undefined : s.attempts.get(task.committer)
  if (a?.result !== undefined) { a.result.replicas = task.replicas; out.changes.push({ kind: 'attempt', attempt: a }) }
  else out.changes.push({ kind: 'replicas', task: task.id, replicas: task.replicas })
}

export function onReplicaFailed(s: MasterState, e: Extract<MasterEvent, { kind: 'replica-failed' }>, out: Step): void {
  const found = taskOf(s, e.job, e.stage, e.partition)
  if (found === undefined) return
  const { job, task } = found
  const i = (task.replicating ?? []).findIndex(r => r.node === e.node && r.worker === e.worker && r.incarnation === e.incarnation)
  if (i < 0) return
  task.replicating!.splice(i, 1)
  task.replicaFailures = (task.replicaFailures ?? 0) + 1
  if (task.replicaFailures >= REPLICA_TRIES) {
    failJob(s, job.id, { message: `copying part ${task.partition} of "${e.node}" to another disk failed ${task.replicaFailures} times; the last: ${e.message}`, node_id: e.node, task_id: task.id, record: null }, e.nowMs, out)
  }
}

/** A worker lost: the copies it was making are asked of others. */
export function forgetReplicasTo(s: MasterState, worker: WorkerId): void {
  for (const job of s.jobs.values()) {
    for (const stage of job.stages) for (const t of stage.tasks) {
      if (t.replicating !== undefined && t.replicating.length > 0) t.replicating = t.replicating.filter(r => r.worker !== worker)
    }
  }
}

function taskOf(s: MasterState, jobId: string, stageId: number, partition: number): { job: JobRun; stage: StageRun; task: TaskRun } | undefined {
  const job = s.jobs.get(jobId as JobRun['id'])
  const stage = job?.stages[stageId]
  const task = stage?.tasks[partition]
  if (job === undefined || stage === undefined || task === undefined || job.state !== 'RUNNING' || task.state !== 'SUCCEEDED') return undefined
  return { job, stage, task }
}

