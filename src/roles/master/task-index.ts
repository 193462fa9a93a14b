// Per-stage index of its tasks: how many are in each state, and which are PENDING (lowest partition
// first, the order a scan of the tasks would find them in). Every task state change goes through
// setTaskState, so an event costs the work it causes: without the index, each report walked every
// task of its stage, and a job of T tasks cost O(T²). Pure; part of step().
// It does not decide anything: the scheduler picks from it, task and worker events feed it.
import type { StageCounts, StageRun, TaskRun, TaskRunState } from './state'
import { queueHeld } from './placement'

export type TaskIndex = {
  pending: number
  running: number
  succeeded: number
  failed: number
  /** a binary min-heap of partitions that were PENDING when pushed (checked again when read) */
  heap: number[]
  /** 1 while a partition sits in `heap`: each partition is in it at most once */
  queued: Uint8Array
}

const COUNTED: Record<TaskRunState, 'pending' | 'running' | 'succeeded' | 'failed'> =
  { PENDING: 'pending', RUNNING: 'running', SUCCEEDED: 'succeeded', FAILED: 'failed' }

/** A fresh index of the stage's tasks as they are now (a new job, or one rebuilt by recovery). */
export function indexTasks(tasks: readonly TaskRun[]): TaskIndex {
  const ix: TaskIndex = { pending: 0, running: 0, succeeded: 0, failed: 0, heap: [], queued: new Uint8Array(tasks.length) }
  for (const t of tasks) {
    ix[COUNTED[t.state]]++
    // Partitions come in order, so pushing them one by one keeps the heap sorted without sifting.
    if (t.state === 'PENDING') { ix.heap.push(t.partition); ix.queued[t.partition] = 1 }
  }
  return ix
}

/** The only way a task changes state while its job runs. */
export function setTaskState(stage: StageRun, t: TaskRun, to: TaskRunState): void {
  const ix = stage.index
  if (t.state !== to) {
    ix[COUNTED[t.state]]--
    ix[COUNTED[to]]++
    t.state = to
  }
  if (to === 'PENDING' && stage.byDisk !== undefined) { queueHeld(stage, t.partition); return }
  if (to === 'PENDING' && ix.queued[t.partition] !== 1) {
    ix.queued[t.partition] = 1
    heapPush(ix.heap, t.partition)
  }
}

/** The PENDING task of lowest partition, left in the queue; undefined when none is. */
export function peekPending(stage: StageRun): TaskRun | undefined {
  const ix = stage.index
  for (;;) {
    const p = ix.heap[0]
    if (p === undefined) return undefined
    const t = stage.tasks[p]
    if (t !== undefined && t.state === 'PENDING') return t
    // Left PENDING since it was queued (the job ended, say): drop it.
    heapPop(ix.heap)
    ix.queued[p] = 0
  }
}

/** Takes the task peekPending returned out of the queue. */
export function takePending(stage: StageRun, t: TaskRun): void {
  const ix = stage.index
  if (ix.heap[0] !== t.partition) throw new Error(`takePending: ${t.id} is not the head of its stage's queue`)
  heapPop(ix.heap)
  ix.queued[t.partition] = 0
}

export function countsOf(stage: StageRun): StageCounts {
  if (stage.finalCounts !== null) return stage.finalCounts
  const ix = stage.index
  return { total: stage.tasks.length, pending: ix.pending, running: ix.running, succeeded: ix.succeeded, failed: ix.failed }
}

export const allSucceeded = (stage: StageRun): boolean => stage.index.succeeded === stage.tasks.length

// ---- a min-heap of small integers ------------------------------------------------------------

export function heapPush(h: number[], x: number): void {
  let i = h.length
  h.push(x)
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (h[parent]! <= x) break
    h[i] = h[parent]!
    i = parent
  }
  h[i] = x
}

export function heapPop(h: number[]): number | undefined {
  const top = h[0]
  const last = h.pop()
  if (top === undefined || last === undefined || h.length === 0) return top
  let i = 0
  for (;;) {
    const l = 2 * i + 1
    if (l >= h.length) break
    const r = l + 1
    const c = r < h.length && h[r]! < h[l]! ? r : l
    if (h[c]! >= last) break
    h[i] = h[c]!
    i = c
  }
  h[i] = last
  return top
}
