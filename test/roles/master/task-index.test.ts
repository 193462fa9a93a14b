// Unit tests of the per-stage task index (src/roles/master/task-index.ts): the heap, and the queue
// of PENDING tasks that setTaskState keeps.
import { describe, expect, test } from 'bun:test'
import type { TaskId } from '../../../src/api/ids'
import type { StageRun, TaskRun } from '../../../src/roles/master/state'
import { countsOf, heapPop, heapPush, indexTasks, peekPending, setTaskState, takePending } from '../../../src/roles/master/task-index'
import { prng } from '../../support/prng'

function stageOf(n: number): StageRun {
  const tasks: TaskRun[] = Array.from({ length: n }, (_, p) => ({
    id: `j:0:${p}` as TaskId, stage: 0, partition: p, state: 'PENDING', attempts: 0, failures: 0, current: null, output: null, sinks: [], committer: null,
  }))
  return {
    plan: { stage_id: 0, root: { kind: 'source', node: { id: 'in', op: 'read_text' } }, nodes: [], shuffle_writes: [], sinks: [], depends_on: [], partitions: n },
    state: 'RUNNING', tasks, index: indexTasks(tasks), splits: [], finalCounts: null,
  }
}

/** Takes the next pending task and marks it RUNNING, as a launch does. */
function launchNext(st: StageRun): number | undefined {
  const t = peekPending(st)
  if (t === undefined) return undefined
  takePending(st, t)
  setTaskState(st, t, 'RUNNING')
  return t.partition
}

describe('heap', () => {
  test('pops in ascending order whatever the push order', () => {
    const rand = prng(7)
    const h: number[] = []
    const xs = Array.from({ length: 500 }, () => Math.floor(rand() * 100))
    for (const x of xs) heapPush(h, x)
    const out: number[] = []
    for (let x = heapPop(h); x !== undefined; x = heapPop(h)) out.push(x)
    expect(out).toEqual([...xs].sort((a, b) => a - b))
    expect(heapPop(h)).toBeUndefined()
  })
})

describe('task index', () => {
  test('a fresh stage queues every partition in order and counts them PENDING', () => {
    const st = stageOf(4)
    expect(countsOf(st)).toEqual({ total: 4, pending: 4, running: 0, succeeded: 0, failed: 0 })
    expect([launchNext(st), launchNext(st)]).toEqual([0, 1])
    expect(countsOf(st)).toEqual({ total: 4, pending: 2, running: 2, succeeded: 0, failed: 0 })
  })

  test('a requeued task goes before higher partitions, as a scan of the tasks would find it', () => {
    const st = stageOf(5)
    launchNext(st); launchNext(st); launchNext(st)       // 0, 1, 2 run
    setTaskState(st, st.tasks[1]!, 'PENDING')           // 1 is lost
    setTaskState(st, st.tasks[0]!, 'SUCCEEDED')
    expect([launchNext(st), launchNext(st), launchNext(st), launchNext(st)]).toEqual([1, 3, 4, undefined])
    expect(countsOf(st)).toEqual({ total: 5, pending: 0, running: 4, succeeded: 1, failed: 0 })
  })

  test('a partition is queued once however often it is set PENDING, and skipped once it left PENDING', () => {
    const st = stageOf(2)
    setTaskState(st, st.tasks[0]!, 'PENDING')
    expect(st.index.heap).toEqual([0, 1])
    // Changed without a launch (as the end of a job does): reading the queue drops it.
    setTaskState(st, st.tasks[0]!, 'FAILED')
    expect(peekPending(st)?.partition).toBe(1)
    expect(st.index.heap).toEqual([1])
    expect(countsOf(st)).toMatchObject({ pending: 1, failed: 1 })
  })

  test('takePending refuses a task that is not at the head', () => {
    const st = stageOf(3)
    expect(() => takePending(st, st.tasks[2]!)).toThrow()
  })
})
