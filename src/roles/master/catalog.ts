// The master's catalog of where data lives on the workers (DESIGN: "Data that lives on the
// workers"): for every output a job wrote, each part file, its size and records, and the disks that
// hold a committed copy of it. Pure; part of step(). Kept in the store, so a restarted master
// knows it; workers are told what counts on their disks when a job ends and when they return.
//
// A disk is a worker's --data-dir as the workers see it: workers that share a folder share a disk
// (worker/disk-id.ts). A part has one copy that counts per disk: the committed attempt's, and, with
// `replicas`, the copies made on other disks. Any other copy of a part file is a stray (an attempt
// that committed and then lost its worker, and ran again elsewhere) and is removed.
import type { JobId, WorkerId } from '../../api/ids'
import type { OutputSettle } from '../../api/tasks'
import type { CacheLevel, NodeSpec } from '../../api/jobs'
import { datasetOwner } from '../../api/datasets'
import type { HeldFile, TrackedParts } from './inputs'
import { isLive, stagedPath, type JobRun, type MasterState } from './state'
import { lineageOf, type Lineage } from './lineage'
import { rangeBounds } from './range-bounds'

export type PartCopy = { disk: string; worker: WorkerId }
export type OutputPart = { part: number; file: string; bytes: number; records: number; copies: PartCopy[] }
/** An output as its job left it: `parts[n]` is part n. */
export type OutputRecord = { path: string; job: JobId; atMs: number; replicas: number; parts: OutputPart[] }

export const partFile = (path: string, part: number): string => `${path}/part-${String(part).padStart(5, '0')}`

const PART_NAME = /^part-(\d+)$/

/** The disks that have at least one live worker. */
export function liveDisks(s: MasterState): Set<string> {
  const disks = new Set<string>()
  for (const w of s.workers.values()) if (isLive(w)) disks.add(w.disk)
  return disks
}

/** The write nodes of a job and the replicas each asked for, by node id. */
export function writeNodes(job: JobRun): Map<string, { path: string; replicas: number }> {
  const m = new Map<string, { path: string; replicas: number }>()
  for (const n of job.request.nodes) {
    if ((n.op === 'write_text' || n.op === 'write_jsonl') && n.path !== undefined) m.set(n.id, { path: n.path, replicas: (n as { replicas?: number }).replicas ?? 1 })
  }
  return m
}

/** The committed parts of a running job's outputs, from its tasks: where the committing attempt
 *  ran, and the replicas made since. A task not SUCCEEDED contributes nothing yet. */
export function jobParts(s: MasterState, job: JobRun): Map<string, OutputPart[]> {
  const nodes = writeNodes(job)
  const out = new Map<string, OutputPart[]>()
  for (const { path } of nodes.values()) out.set(path, [])
  for (const stage of job.stages) {
    for (const t of stage.tasks) {
      const home = t.home
      if (t.state !== 'SUCCEEDED' || home === undefined) continue
      for (const o of t.sinks) {
        const node = nodes.get(o.node_id)
        if (node === undefined || o.part === undefined) continue
        const copies: PartCopy[] = [{ disk: home.disk, worker: home.worker }]
        for (const r of t.replicas ?? []) if (r.node === o.node_id && !copies.some(c => c.disk === r.disk)) copies.push({ disk: r.disk, worker: r.worker })
        out.get(node.path)![o.part] = { part: o.part, file: partFile(node.path, o.part), bytes: o.bytes ?? 0, records: o.records, copies }
      }
    }
  }
  return out
}

/** The parts each write node must have: one per task of every stage it runs in. A job whose
 *  parts are not all known must not settle: a part missing from the keep lists would be removed. */
export function missingPart(job: JobRun, parts: ReadonlyMap<string, readonly OutputPart[]>): string | undefined {
  for (const [id, { path }] of writeNodes(job)) {
    const want = job.stages.filter(st => st.plan.sinks.includes(id)).reduce((n, st) => n + st.tasks.length, 0)
    const list = parts.get(path) ?? []
    for (let i = 0; i < want; i++) if (list[i] == null) return `part ${i} of "${id}" (${path})`
  }
  return undefined
}

/** What one disk must do for a job's outputs at its end: strays go, and _SUCCESS is written where
 *  the disk holds parts (or, for an output of no part at all, on the disk `emptyOn`). */
export function settleFor(job: JobRun, parts: ReadonlyMap<string, readonly OutputPart[]>, disk: string, emptyOn: string | undefined): OutputSettle[] {
  const settle: OutputSettle[] = []
  for (const [path, list] of parts) {
    const dir = job.overwrites.includes(path) ? stagedPath(path, job.id) : path
    settle.push(settleOf(path, dir, list, disk, list.length === 0 && disk === emptyOn))
  }
  return settle
}

/** The same for an output already recorded, for a worker back from an absence. */
export const settleRecorded = (o: OutputRecord, disk: string): OutputSettle => ({ ...settleOf(o.path, o.path, o.parts, disk, false), job_id: o.job })

/** For an output a job replaced while the worker was away: its staged folder on this disk may
 *  hold copies committed there and then run again elsewhere; those go before the swap moves the
 *  rest in (the copies that count here are kept, as in the output itself). */
export const settleStaged = (o: OutputRecord, disk: string): OutputSettle => {
  const { success: _, ...staged } = settleOf(o.path, stagedPath(o.path, o.job), o.parts, disk, false)
  return { ...staged, job_id: o.job }
}

function settleOf(path: string, dir: string, list: readonly OutputPart[], disk: string, emptyHere: boolean): OutputSettle {
  const here = list.filter(p => p != null && p.copies.some(c => c.disk === disk))
  const keep = here.map(p => `part-${String(p.part).padStart(5, '0')}`)
  const s: OutputSettle = { path, dir, keep }
  if (here.length > 0 || emptyHere) s.success = { parts: here.map(p => p.part), total: list.length }
  return s
}

/** The catalog as input planning reads it (inputs.ts). A part is planned from the catalog when no
 *  live disk that holds it listed it: its disks are away, and its task waits for one. */
export function trackedParts(s: MasterState): TrackedParts {
  const live = liveDisks(s)
  return {
    holders(file) {
      const slash = file.lastIndexOf('/')
      const m = PART_NAME.exec(file.slice(slash + 1))
      if (m === null || slash < 0) return undefined
      const o = s.outputs.get(file.slice(0, slash))
      if (o === undefined) return undefined
      return o.parts[Number(m[1])]?.copies.map(c => c.disk) ?? []
    },
    readBy(inputPath) {
      const found: HeldFile[] = []
      const glob = /[*?[{]/.test(inputPath) ? new Bun.Glob(inputPath) : undefined
      for (const o of s.outputs.values()) {
        for (const p of o.parts) {
          if (p == null || p.copies.some(c => live.has(c.disk))) continue
          const reads = glob !== undefined ? glob.match(p.file) : inputPath === o.path || inputPath === p.file
          if (reads) found.push({ path: p.file, size: p.bytes, disks: p.copies.map(c => c.disk) })
        }
      }
      return found
    },
  }
}

/** Recorded when the job succeeds: the output is what its parts are now. */
export function recordOutputs(s: MasterState, job: JobRun, parts: ReadonlyMap<string, readonly OutputPart[]>, nowMs: number): OutputRecord[] {
  const nodes = [...writeNodes(job).values()]
  const recorded: OutputRecord[] = []
  for (const [path, list] of parts) {
    const o: OutputRecord = { path, job: job.id, atMs: nowMs, replicas: nodes.find(n => n.path === path)?.replicas ?? 1, parts: [...list] }
    s.outputs.set(path, o)
    recorded.push(o)
  }
  return recorded
}

/** Outputs recorded since `sinceMs`, newest last: a worker away since then settles them on return. */
export function outputsSince(s: MasterState, sinceMs: number): OutputRecord[] {
  return [...s.outputs.values()].filter(o => o.atMs >= sinceMs).sort((a, b) => a.atMs - b.atMs).slice(-OUTPUTS_SETTLED_ON_RETURN)
}

/** At most this many outputs are settled on a worker's return (the newest). */
const OUTPUTS_SETTLED_ON_RETURN = 1_000

// Persisted datasets (persist / read_dataset): each partition is one block a persist write kept on
// the worker that ran its task, under an owner of its own (`datasetOwner`) so that the job's end
// does not free it. The catalog says who holds each block; the workers' heartbeats say what they
// still hold, and a block they no longer hold is lost: the next job reading it recomputes it from
// the dataset's lineage, kept here with it (recompute.ts), or fails naming it.

export type DatasetBlock = {
  partition: number; attempt: string; worker: WorkerId; incarnation: string
  where: 'memory' | 'disk'; bytes: number; records: number; lost?: boolean
  /** recomputed from the lineage by a later job, at this time */
  recomputedMs?: number
}
/** `lineage`: how a lost partition is recomputed (lineage.ts); absent for a dataset persisted by
 *  a version that did not record it, whose lost partitions cannot be. */
export type DatasetRecord = { name: string; job: JobId; owner: string; atMs: number; level: CacheLevel; blocks: DatasetBlock[]; lineage?: Lineage }

export { datasetOwner }
/** The job an owner key belongs to. */
const jobOfOwner = (owner: string): string => owner.slice(0, Math.max(0, owner.indexOf('~')))

/** The persist nodes of a job. */
export const persistNodes = (nodes: readonly NodeSpec[]): NodeSpec[] => nodes.filter(n => n.op === 'persist')

/** The blocks of each persist node of a job that just succeeded, from its tasks: map tasks are
 *  numbered across the stages that write it, in stage order, as a cached node's are. */
export function jobDatasets(s: MasterState, job: JobRun, nowMs: number): DatasetRecord[] {
  const out: DatasetRecord[] = []
  for (const node of persistNodes(job.request.nodes)) {
    const name = node.name!
    const blocks: DatasetBlock[] = []
    for (const stage of job.stages) {
      const w = stage.plan.shuffle_writes.find(x => x.persist === name && x.owner === undefined)
      if (w === undefined) continue
      for (const t of stage.tasks) {
        const o = t.output
        const sink = t.sinks.find(x => x.node_id === node.id)
        const worker = o === null ? undefined : s.workers.get(o.worker)
        blocks.push({
          partition: blocks.length, attempt: o?.attempt ?? '', worker: o?.worker ?? ('' as WorkerId), incarnation: worker?.incarnation ?? '',
          where: sink?.kept ?? 'memory', bytes: o?.sizes.get(w.shuffle_id)?.[0] ?? 0, records: sink?.records ?? 0,
          ...(o === null ? { lost: true } : {}),
        })
      }
    }
    const lineage = lineageOf(job.stages.map(st => ({ plan: st.plan, splits: st.splits, ...(st.holders === undefined ? {} : { holders: st.holders }), ...(st.lineage === undefined ? { bounds: rangeBounds(job, st) } : { recompute: true }) })), name, job.params, job.inputMtimes)
    out.push({ name, job: job.id, owner: datasetOwner(job.id, name), atMs: nowMs, level: node.level ?? 'memory_and_disk', blocks, ...(lineage === undefined ? {} : { lineage }) })
  }
  return out
}

/** Whether a block can be read now: not known lost, and its holder is the live incarnation that
 *  kept it (a worker that rejoined as a new incarnation dropped all its work). An empty block
 *  needs no holder. */
export function blockHeld(s: MasterState, b: DatasetBlock): boolean {
  if (b.lost === true) return false
  if (b.bytes === 0) return true
  const w = s.workers.get(b.worker)
  return w !== undefined && isLive(w) && w.incarnation === b.incarnation
}

/** The partitions of a dataset that cannot be read now. */
export const lostPartitions = (s: MasterState, d: DatasetRecord): number[] => d.blocks.filter(b => !blockHeld(s, b)).map(b => b.partition)

/** A block recorded this recently may be missing from a heartbeat that left its worker before the
 *  block was registered there: it is not judged lost by that heartbeat. */
export const HELD_GRACE_MS = 15_000

/**
 * A worker's heartbeat lists the dataset blocks it holds: a recorded block on it that is not listed
 * is lost (marked, never unmarked), a listed one's place (memory or disk) is updated, and an owner
 * the catalog does not know and no running job is producing (a deleted or replaced dataset whose
 * worker was away, a failed job's) is returned, for the worker to drop. Changed datasets are
 * returned to be stored.
 */
export function reconcileHeld(s: MasterState, worker: WorkerId, held: readonly { owner: string; attempt: string; where: 'memory' | 'disk' }[], nowMs: number):
  { changed: DatasetRecord[]; drop: string[] } {
  const here = new Map(held.map(h => [`${h.owner}\u0000${h.attempt}`, h.where]))
  const owners = new Set<string>()
  const changed: DatasetRecord[] = []
  for (const d of s.datasets.values()) {
    owners.add(d.owner)
    if (nowMs - d.atMs < HELD_GRACE_MS) continue
    let touched = false
    for (const b of d.blocks) {
      if (b.worker !== worker || b.lost === true || b.bytes === 0 || nowMs - (b.recomputedMs ?? 0) < HELD_GRACE_MS) continue
      const where = here.get(`${d.owner}\u0000${b.attempt}`)
      if (where === undefined) { b.lost = true; touched = true } else if (where !== b.where) { b.where = where; touched = true }
    }
    if (touched) changed.push(d)
  }
  const drop = new Set<string>()
  for (const h of held) {
    if (owners.has(h.owner)) continue
    const job = s.jobs.get(jobOfOwner(h.owner) as JobId)
    if (job !== undefined && (job.state === 'RUNNING' || job.state === 'QUEUED')) continue
    drop.add(h.owner)
  }
  return { changed, drop: [...drop] }
}

/** A read_dataset stage's root, from the catalog at submit: where each partition's block is. */
export const datasetRoot = (d: DatasetRecord): { name: string; owner: string; blocks: { attempt: string; worker: string; incarnation: string; bytes: number }[] } =>
  ({ name: d.name, owner: d.owner, blocks: d.blocks.map(b => ({ attempt: b.attempt, worker: b.worker, incarnation: b.incarnation, bytes: b.bytes })) })

/** Why a job reading dataset `name` cannot run: the partitions that are gone, named. */
export const lostMessage = (name: string, lost: readonly number[]): string =>
  `dataset "${name}" lost partition${lost.length === 1 ? '' : 's'} ${lost.slice(0, 20).join(', ')}${lost.length > 20 ? ` and ${lost.length - 20} more` : ''} ` +
  '(their worker died, or a memory-level block was dropped under memory pressure): persist it again'
