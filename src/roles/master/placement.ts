// Where the splits of a source stage run: only on a worker whose disk holds the split's file
// (inputs.ts found which), round-robin among the holders with a free slot, never elsewhere: a
// worker that does not hold a file would read it as missing. A split whose holders are all away
// waits for one to return, up to a bound, and then fails its job with INPUT_UNAVAILABLE. Pure;
// part of step().
//
// Each disk has its own queue of the PENDING splits it holds (a min-heap of partitions, checked
// when read, like the stage's own queue in task-index.ts): a free worker takes the next split its
// disk holds without scanning the splits of other disks.
import type { JobError } from '../../api/jobs'
import type { JobRun, MasterState, StageRun, TaskRun, WorkerRun } from './state'
import { liveDisks } from './catalog'
import { heapPop, heapPush } from './task-index'

/** How long a split may wait with no live holder before its job fails: three leases, time enough
 *  for a restarted machine to return. */
export const unavailableAfterMs = (s: MasterState): number => 3 * s.timeoutMs

/** The per-disk queues of a stage's PENDING splits, built once its tasks are known. */
export function indexHolders(stage: StageRun): void {
  if (stage.holders === undefined) return
  stage.byDisk = new Map()
  for (const t of stage.tasks) if (t.state === 'PENDING') queueHeld(stage, t.partition)
}

/** A split back in PENDING joins the queue of each disk that holds it. */
export function queueHeld(stage: StageRun, partition: number): void {
  if (stage.byDisk === undefined) return
  for (const disk of stage.holders?.[partition] ?? []) {
    let h = stage.byDisk.get(disk)
    if (h === undefined) stage.byDisk.set(disk, h = [])
    heapPush(h, partition)
  }
}

/** The next PENDING split this worker's disk holds, taken out of its disk's queue. */
export function takeHeld(stage: StageRun, w: WorkerRun): TaskRun | undefined {
  const h = stage.byDisk?.get(w.disk)
  if (h === undefined) return undefined
  for (;;) {
    const p = h[0]
    if (p === undefined) return undefined
    heapPop(h)
    const t = stage.tasks[p]
    if (t !== undefined && t.state === 'PENDING') return t
  }
}

/** The first PENDING split that no live worker can read, with its file and holders, if any. Its
 *  cost is that of the queues of the disks with no live worker; it runs once per lease check. */
export function unavailableSplit(s: MasterState, stage: StageRun): { partition: number; file: string; disks: string[] } | undefined {
  if (stage.byDisk === undefined || stage.index.pending === 0) return undefined
  const live = liveDisks(s)
  for (const [disk, h] of stage.byDisk) {
    if (live.has(disk)) continue
    for (const p of h) {
      const disks = stage.holders?.[p] ?? []
      if (stage.tasks[p]?.state === 'PENDING' && !disks.some(d => live.has(d))) return { partition: p, file: stage.splits[p]?.path ?? '?', disks }
    }
  }
  return undefined
}

/** The job's error once a split has waited too long for a holder. */
export function unavailableError(s: MasterState, job: JobRun, stage: StageRun, u: { partition: number; file: string; disks: string[] }): JobError {
  const holders = [...s.workers.values()].filter(w => u.disks.includes(w.disk)).map(w => `${w.id} (${w.status})`)
  return {
    message: `INPUT_UNAVAILABLE: input file "${u.file}" is only on the disk of ${holders.length > 0 ? holders.join(', ') : `disk ${u.disks.join(', ')}`}, ` +
      `and no worker of it has been live for ${Math.round(unavailableAfterMs(s) / 1000)} s: bring that worker back and submit again, or copy the file to another worker's --data-dir`,
    node_id: stage.plan.root.node.id, task_id: stage.tasks[u.partition]?.id ?? null, record: null,
  }
}
