// Lost partitions of a persisted dataset, recomputed inside the job that reads them. Part of
// step(); pure, changes `s` in place.
//
// A read_dataset task whose block is gone (its holder died or rejoined as a new incarnation, or a
// memory-level block was dropped) does not fail its job: the dataset's lineage (lineage.ts) is
// planned into the job as extra stages, the reading stage waits for them, and each recomputed
// block becomes the dataset's partition again as soon as its task succeeds (the catalog is
// updated, so GET /datasets and every later job see it, as Spark re-caches a recomputed
// partition). A lineage that reads another dataset recurses through the same path: its reading
// stage finds that dataset's lost blocks in turn. Without a lineage, or with an input that is gone
// or changed, the job fails at once naming the dataset and what is missing.
import type { AttemptId, TaskId } from '../../api/ids'
import type { TaskReport } from '../../api/tasks'
import type { Step } from './events'
import { blockHeld, datasetRoot, lostMessage, lostPartitions, type DatasetRecord } from './catalog'
import { cannotRecompute, planRecompute } from './lineage'
import { indexTasks } from './task-index'
import { indexHolders } from './placement'
import type { JobRun, MasterState, StageRun, TaskRun } from './state'

/** Recomputes of one dataset planned in one job: a partition lost again and again (a worker that
 *  keeps dying) fails the job after this many, as Spark gives up after 4 stage attempts. */
export const MAX_RECOMPUTES = 4

/**
 * Whether a read_dataset task may be launched now: undefined yes (its block is held, or it reads
 * no dataset), 'wait' its stage now waits for recompute stages added to the job, or why the job
 * must fail (the dataset was deleted or replaced, or its lost partitions cannot be recomputed).
 */
export function checkDatasetRead(s: MasterState, job: JobRun, stage: StageRun, task: TaskRun, out: Step): 'wait' | string | undefined {
  const root = stage.plan.root
  if (root.kind !== 'cached' || root.dataset === undefined) return undefined
  const d = s.datasets.get(root.dataset.name)
  if (d === undefined || d.owner !== root.dataset.owner) return `dataset "${root.dataset.name}" was deleted or replaced while this job waited to read it`
  // The task's own block is checked at each launch; the others only once one is found lost.
  const own = d.blocks[task.partition]
  if (own !== undefined && blockHeld(s, own)) return undefined
  // Partitions a recompute is writing now: this job's (the stage waits for it too), or another
  // running job's (its task waits until that block is kept; recomputed once, not per reader).
  const inFlight = new Set<number>()
  for (const other of s.jobs.values()) {
    if (other.state !== 'RUNNING' && other !== job) continue
    for (const st of other.stages) {
      const w = st.lineage?.writes
      if (w === undefined || st.lineage!.owner !== d.owner || st.state === 'SUCCEEDED' || st.state === 'FAILED' || st.state === 'CANCELLED') continue
      for (const p of w.partitions) inFlight.add(p)
      if (other === job && w.partitions.includes(task.partition) && !stage.plan.depends_on.includes(st.plan.stage_id)) stage.plan.depends_on.push(st.plan.stage_id)
    }
  }
  const lost = lostPartitions(s, d).filter(p => !inFlight.has(p))
  if (lost.length === 0) return inFlight.has(task.partition) ? 'wait' : undefined
  if (d.lineage === undefined) {
    const unread = stage.tasks.filter(t => t.state !== 'SUCCEEDED' && lost.includes(t.partition)).map(t => t.partition)
    return lostMessage(d.name, unread.length > 0 ? unread : lost)
  }
  const rounds = (job.recomputes ??= new Map()).get(d.name) ?? 0
  if (rounds >= MAX_RECOMPUTES) return cannotRecompute(d.name, lost, `its partitions were lost ${rounds} times while this job recomputed them`)
  const why = addRecompute(s, job, d, lost)
  if (why !== undefined) return why
  job.recomputes.set(d.name, rounds + 1)
  // Every stage of this job reading the dataset waits for the partitions it reads.
  for (const st of job.stages) {
    const w = st.lineage?.writes
    if (w === undefined || st.state === 'SUCCEEDED' || st.lineage!.owner !== d.owner) continue
    for (const reader of job.stages) {
      const r = reader.plan.root
      if (reader.state === 'SUCCEEDED' || r.kind !== 'cached' || r.dataset?.owner !== d.owner) continue
      if (!reader.plan.depends_on.includes(st.plan.stage_id)) reader.plan.depends_on.push(st.plan.stage_id)
    }
  }
  // Its plan is stored again, with the stages added: a restarted master goes on with them.
  out.changes.push({ kind: 'job-created', job: job.id }, { kind: 'job', job: job.id })
  return 'wait'
}

/** Adds the stages that recompute `lost` partitions of `d` to the job; why not, if it cannot. */
function addRecompute(s: MasterState, job: JobRun, d: DatasetRecord, lost: readonly number[]): string | undefined {
  const lineage = d.lineage!
  const base = job.stages.length
  const plan = planRecompute({
    lineage, name: d.name, owner: d.owner, lost, base, prefix: `${d.name}~${base}~`,
    problems: job.inputProblems ?? new Map(),
    upstream: (name, owner) => {
      const up = s.datasets.get(name)
      return up === undefined || up.owner !== owner ? undefined : datasetRoot(up)
    },
  })
  if ('error' in plan) return plan.error
  for (const r of plan.stages) {
    const tasks = Array.from({ length: r.plan.partitions }, (_, p): TaskRun => ({
      id: `${job.id}:${r.plan.stage_id}:${p}` as TaskId, stage: r.plan.stage_id, partition: p, state: r.skip[p] === true ? 'SUCCEEDED' : 'PENDING',
      attempts: 0, failures: 0, current: null, output: null, sinks: [], committer: null,
    }))
    const stage: StageRun = {
      plan: r.plan, state: 'WAITING', tasks, index: indexTasks(tasks), splits: r.splits, finalCounts: null,
      ...(r.holders === undefined ? {} : { holders: r.holders }),
      lineage: {
        params: lineage.params, dataset: d.name, owner: d.owner, ...(r.bounds === undefined ? {} : { bounds: r.bounds }), ...(r.writes === undefined ? {} : { writes: r.writes }),
        ...(r.skip.some(x => x) ? { skipped: r.skip.flatMap((x, p) => x ? [p] : []) } : {}),
      },
    }
    indexHolders(stage)
    job.stages.push(stage)
  }
  return undefined
}

/**
 * After a task report: a recompute task that wrote a lost partition of its dataset makes that
 * block the dataset's partition again, in the catalog and in every running job that reads it.
 */
export function keepRecomputed(s: MasterState, r: TaskReport, nowMs: number, out: Step): void {
  if (r.state !== 'SUCCEEDED') return
  const a = s.attempts.get(r.attempt_id as AttemptId)
  if (a === undefined || a.state !== 'SUCCEEDED') return
  const stage = s.jobs.get(a.job)?.stages[a.stage]
  const lin = stage?.lineage
  const task = stage?.tasks[a.partition]
  if (lin?.writes === undefined || task === undefined || task.output?.attempt !== a.id) return
  const partition = lin.writes.base + a.partition
  if (!lin.writes.partitions.includes(partition)) return
  const d = s.datasets.get(lin.dataset)
  if (d === undefined || d.owner !== lin.owner || d.blocks[partition] === undefined) return
  const write = stage!.plan.shuffle_writes.find(w => w.persist !== undefined && w.owner === d.owner)
  const sink = task.sinks.find(o => o.op === 'persist' && (write === undefined || o.node_id === write.node.id))
  d.blocks[partition] = {
    partition, attempt: a.id, worker: a.worker, incarnation: a.incarnation, where: sink?.kept ?? 'memory',
    bytes: write === undefined ? 0 : task.output.sizes.get(write.shuffle_id)?.[0] ?? 0, records: sink?.records ?? 0, recomputedMs: nowMs,
  }
  out.changes.push({ kind: 'dataset', name: d.name, dataset: d })
  // Readers planned from the catalog as it was: they read the new block, where it is.
  const b = datasetRoot(d).blocks[partition]!
  for (const job of s.jobs.values()) {
    if (job.state !== 'RUNNING' && job.state !== 'QUEUED') continue
    for (const st of job.stages) {
      const root = st.plan.root
      if (root.kind === 'cached' && root.dataset?.owner === d.owner && root.dataset.blocks[partition] !== undefined) root.dataset.blocks[partition] = b
    }
  }
}

/** A restarted master's readers read the blocks the catalog has now (recomputed ones included). */
export function refreshDatasetRoots(s: MasterState, job: JobRun): void {
  for (const st of job.stages) {
    const root = st.plan.root
    if (root.kind !== 'cached' || root.dataset === undefined) continue
    const d = s.datasets.get(root.dataset.name)
    if (d !== undefined && d.owner === root.dataset.owner && d.blocks.length === root.dataset.blocks.length) root.dataset.blocks = datasetRoot(d).blocks
  }
}

/** A failed report of a recompute task, taken before the report is applied (a job that fails
 *  forgets its attempts): the job, the task, and the dataset and partitions it recomputes. */
export type RecomputeFailure = { job: JobRun; task: TaskId; dataset: string; partitions: number[] }

export function recomputeFailure(s: MasterState, r: TaskReport): RecomputeFailure | undefined {
  if (r.state !== 'FAILED') return undefined
  const a = s.attempts.get(r.attempt_id as AttemptId)
  const job = a === undefined ? undefined : s.jobs.get(a.job)
  const lin = job?.stages[a!.stage]?.lineage
  if (job === undefined || lin === undefined) return undefined
  const partitions = [...new Set(job.stages.flatMap(st => st.lineage?.owner === lin.owner ? st.lineage.writes?.partitions ?? [] : []))].sort((x, y) => x - y)
  return { job, task: a!.task, dataset: lin.dataset, partitions }
}

/** After it: if that task failed its job (an input file changed between the submit and its read,
 *  say: the worker's INPUT_CHANGED), the job's error says which dataset could not be recomputed. */
export function explainRecomputeFailure(f: RecomputeFailure | undefined): void {
  const job = f?.job
  if (f === undefined || job === undefined || job.state !== 'FAILED' || job.error === null || job.error.task_id !== f.task) return
  if (job.error.message.startsWith('DATASET_LOST')) return
  job.error = { ...job.error, message: cannotRecompute(f.dataset, f.partitions, job.error.message) }
}
