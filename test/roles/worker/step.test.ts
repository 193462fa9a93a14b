// Unit tests of the worker's pure decisions (src/roles/worker/step.ts): hand-built events, a fake
// time (plain numbers). Each way a task thread ends is here: finish, crash, kill, cancel (job
// dropped), process.exit, task_timeout, the memory watchdog, a new incarnation; and for each, the
// thread's budget lane comes back once the thread is gone, and the slot gets a new thread.
import { describe, expect, test } from 'bun:test'
import type { TaskSpec } from '../../../src/api/tasks'
import { PRESSURE_GRACE_MS, RUNAWAY_GRACE_MS, RUNAWAY_MARGIN_BYTES, SPILL_FRACTION, pauseMarks } from '../../../src/roles/worker/memory'
import { LANES_PER_SLOT, REUSE_MAX_RECORDS, activeTasks, newWorkerState, type WorkerState } from '../../../src/roles/worker/state'
import { runsUserCode } from '../../../src/roles/worker/user-code'
import type { PendingEvent } from '../../../src/roles/worker/driver'
import { step, type WorkerAction, type WorkerEvent } from '../../../src/roles/worker/step'
import type { ThreadResult } from '../../../src/roles/worker/thread-protocol'

const MiB = 1 << 20
const INC = 'inc-1'

function spec(job: string, n: number, extra: Partial<TaskSpec> = {}): TaskSpec {
  return {
    job_id: job, task_id: `${job}:0:${n}`, attempt_id: `${job}:0:${n}:0`, attempt: 0, stage_id: 0, partition: n, params: {},
    // A function of the job's own: its thread is the job's alone (see builtin() for one without).
    stage: { stage_id: 0, root: { kind: 'source', node: { id: 'in', op: 'read_text', path: 'x' } }, nodes: [{ id: 'm', op: 'map', input: 'in', fn: 'x => x' }], shuffle_writes: [], sinks: [], depends_on: [], partitions: 1 },
    split: null, shuffle_inputs: [], incarnation: INC, ...extra,
  }
}

/** A task of built-in operators only (read_text → count): no code of the job's own. */
function builtin(job: string, n: number): TaskSpec {
  return spec(job, n, { stage: { stage_id: 0, root: { kind: 'source', node: { id: 'in', op: 'read_text', path: 'x' } }, nodes: [{ id: 'n', op: 'count', input: 'in' }], shuffle_writes: [], sinks: ['n'], depends_on: [], partitions: 1 } })
}

const ok = (attempt: string): ThreadResult => ({
  attempt_id: attempt, state: 'SUCCEEDED', blocks: [], sinks: [],
  metrics: { records_in: 1, records_out: 1, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
})

/** A worker with its threads spawned and an incarnation, plus a helper that checks invariants. */
function worker(slots: number, maxMem = 1024 * MiB): { s: WorkerState; go(e: PendingEvent, nowMs?: number): WorkerAction[] } {
  const s = newWorkerState(slots, maxMem)
  let clock = 0
  const go = (e: PendingEvent, nowMs?: number): WorkerAction[] => {
    clock = nowMs ?? clock
    const actions = step(s, { ...e, nowMs: clock } as WorkerEvent)
    assertInvariants(s)
    return actions
  }
  go({ kind: 'started' })
  go({ kind: 'incarnation-given', incarnation: INC })
  return { s, go }
}

/** Every lane is free, held by a slot's thread, a spare, a parked thread or a closing thread: exactly once. */
function assertInvariants(s: WorkerState): void {
  const lanes = [...s.freeLanes, ...s.slots.filter(x => x.thread !== null).map(x => x.lane), ...s.spares.map(x => x.lane),
    ...s.parked.map(x => x.lane), ...s.closing.values()].sort((a, b) => a - b)
  expect(lanes).toEqual(Array.from({ length: s.slots.length * LANES_PER_SLOT }, (_, i) => i))
  for (const x of s.slots) if (x.running !== null) expect(x.thread).not.toBeNull()
}

const of = <K extends WorkerAction['kind']>(actions: WorkerAction[], kind: K): Extract<WorkerAction, { kind: K }>[] =>
  actions.filter(a => a.kind === kind) as Extract<WorkerAction, { kind: K }>[]

describe('worker step', () => {
  test('start: one thread per slot, each on its own lane; a spare per slot once a job has ended', () => {
    const s = newWorkerState(2, 1024 * MiB)
    const a = step(s, { kind: 'started', nowMs: 0 })
    expect(of(a, 'spawn-thread')).toEqual([1, 2].map(t => ({ kind: 'spawn-thread', thread: t, lane: t - 1 })))
    expect(s.slots.map(x => x.thread)).toEqual([1, 2])
    expect(s.spares).toEqual([])
    const b = step(s, { kind: 'job-dropped', nowMs: 0, job: 'j0' })
    expect(of(b, 'spawn-thread')).toEqual([3, 4].map(t => ({ kind: 'spawn-thread', thread: t, lane: t - 1 })))
    expect(s.spares.map(x => x.thread)).toEqual([3, 4])
  })

  test('a task runs on an idle thread; its result is reported and the slot takes the next task', () => {
    const { s, go } = worker(1)
    const t1 = spec('j1', 1), t2 = spec('j1', 2)
    expect(of(go({ kind: 'task-received', spec: t1 }), 'run')).toEqual([{ kind: 'run', thread: 1, lane: 0, spec: t1 }])
    expect(of(go({ kind: 'task-received', spec: t2 }), 'run')).toEqual([])
    expect(activeTasks(s)).toBe(2)
    const a = go({ kind: 'thread-finished', thread: 1, result: ok(t1.attempt_id) })
    expect(of(a, 'report').map(r => r.result.state)).toEqual(['SUCCEEDED'])
    // Same job: the same thread, no new one.
    expect(of(a, 'run')).toEqual([{ kind: 'run', thread: 1, lane: 0, spec: t2 }])
    expect(of(a, 'terminate-thread')).toEqual([])
  })

  test('refuses a task of another incarnation, or of a job that ended', () => {
    const { go } = worker(1)
    expect(of(go({ kind: 'task-received', spec: spec('j1', 1, { incarnation: 'old' }) }), 'refuse')[0]?.code).toBe('STALE_INCARNATION')
    go({ kind: 'job-dropped', job: 'j2' })
    expect(of(go({ kind: 'task-received', spec: spec('j2', 1) }), 'refuse')[0]?.code).toBe('UNKNOWN_JOB')
  })

  test('process.exit in a function: the attempt fails (counted, says so), the lane comes back at once, a new thread runs the next task', () => {
    const { s, go } = worker(1)
    const t1 = spec('j1', 1), t2 = spec('j1', 2)
    go({ kind: 'task-received', spec: t1 })
    go({ kind: 'task-received', spec: t2 })
    const a = go({ kind: 'thread-exited', thread: 1, code: 3 })
    const [report] = of(a, 'report')
    expect(report?.spec).toBe(t1)
    expect(report?.result.failure?.reason).toBe('task-error')
    expect(report?.result.failure?.message).toContain('process.exit(3)')
    expect(of(a, 'reclaim-lane')).toEqual([{ kind: 'reclaim-lane', lane: 0 }])
    // A new thread takes the slot and runs the next task.
    expect(of(a, 'run')).toEqual([{ kind: 'run', thread: 2, lane: 1, spec: t2 }])
    expect(of(a, 'spawn-thread')).toHaveLength(1)
    expect(s.slots[0]!.running).toBe(t2)
  })

  test('a crash fails the attempt and terminates the thread; its lane comes back only when the thread is gone', () => {
    const { s, go } = worker(1)
    go({ kind: 'task-received', spec: spec('j1', 1) })
    const a = go({ kind: 'thread-crashed', thread: 1, message: 'boom' })
    expect(of(a, 'report')[0]?.result.failure?.message).toContain('crashed: boom')
    expect(of(a, 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])
    expect(of(a, 'reclaim-lane')).toEqual([])
    expect(s.closing.get(1)).toBe(0)
    expect(of(go({ kind: 'thread-exited', thread: 1, code: 1 }), 'reclaim-lane')).toEqual([{ kind: 'reclaim-lane', lane: 0 }])
    // The close of a thread we ended is no failure of anything.
    expect(s.closing.size).toBe(0)
  })

  test('a kill: no report (the master settled it), scratch removed, lane back after the close, the late result of the old thread ignored', () => {
    const { s, go } = worker(1)
    const t1 = spec('j1', 1)
    go({ kind: 'task-received', spec: t1 })
    const a = go({ kind: 'kill-requested', attempt: t1.attempt_id })
    expect(of(a, 'report')).toEqual([])
    expect(of(a, 'remove-attempt-files')).toEqual([{ kind: 'remove-attempt-files', job: 'j1', attempt: t1.attempt_id }])
    expect(of(a, 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])
    expect(of(go({ kind: 'thread-finished', thread: 1, result: ok(t1.attempt_id) }), 'report')).toEqual([])
    expect(of(go({ kind: 'thread-exited', thread: 1, code: 0 }), 'reclaim-lane')).toEqual([{ kind: 'reclaim-lane', lane: 0 }])
    expect(activeTasks(s)).toBe(0)
  })

  test('a cancel (job dropped) ends its threads, busy or idle, and gives every lane back; then a tiny job runs', () => {
    const { s, go } = worker(2)
    const t1 = spec('j1', 1), t2 = spec('j1', 2)
    go({ kind: 'task-received', spec: t1 })
    go({ kind: 'task-received', spec: t2 })
    go({ kind: 'thread-finished', thread: 2, result: ok(t2.attempt_id) })   // slot 2 idle, its thread ran j1
    // The process's memory is past the pause mark while a task runs: the worker is paused.
    go({ kind: 'memory-sampled', rssBytes: 1400 * MiB, reservedBytes: 700 * MiB, laneBytes: [700 * MiB] })
    expect(s.paused).toBe(true)
    const a = go({ kind: 'job-dropped', job: 'j1' })
    expect(of(a, 'terminate-thread').map(x => x.thread).sort()).toEqual([1, 2])
    expect(of(a, 'drop-job-files')).toEqual([{ kind: 'drop-job-files', job: 'j1' }])
    const back = [...of(go({ kind: 'thread-exited', thread: 1, code: 0 }), 'reclaim-lane'), ...of(go({ kind: 'thread-exited', thread: 2, code: 0 }), 'reclaim-lane')]
    expect(back.map(x => x.lane).sort()).toEqual([0, 1])
    expect(s.closing.size).toBe(0)
    // What the driver reads after reclaiming: nothing held.
    go({ kind: 'memory-sampled', rssBytes: 100 * MiB, reservedBytes: 0, laneBytes: [] })
    expect(s.paused).toBe(false)
    const t3 = spec('j2', 1)
    expect(of(go({ kind: 'task-received', spec: t3 }), 'run').map(r => r.spec)).toEqual([t3])
  })

  test('tasks queued ahead of a cancelled job never run; its later tasks are refused; another job\'s queued task runs', () => {
    const { s, go } = worker(1)
    const run = spec('j1', 1), q1 = spec('j1', 2), q2 = spec('j1', 3), other = spec('j2', 1)
    for (const t of [run, q1, q2, other]) go({ kind: 'task-received', spec: t })
    expect(s.queue.map(q => q.attempt_id)).toEqual([q1, q2, other].map(t => t.attempt_id))
    // The slot's thread (it ran j1) goes; a fresh one runs j2's task at once, and nothing of j1.
    const ran = of(go({ kind: 'job-dropped', job: 'j1' }), 'run').map(r => r.spec.attempt_id)
    expect(of(go({ kind: 'task-received', spec: spec('j1', 4) }), 'refuse').map(r => r.code)).toEqual(['UNKNOWN_JOB'])
    for (const e of [{ kind: 'thread-exited', thread: 1, code: 0 }, { kind: 'tick' }] as const) ran.push(...of(go(e), 'run').map(r => r.spec.attempt_id))
    expect(ran).toEqual([other.attempt_id])
    expect(s.queue).toEqual([])
    expect(activeTasks(s)).toBe(1)
  })

  test('a task of another job never runs on a thread that ran other code: that thread is parked for its job, and goes when the job ends', () => {
    const { s, go } = worker(1)
    const a1 = spec('A', 1), b1 = spec('B', 1), a2 = spec('A', 2), b2 = spec('B', 2)
    go({ kind: 'task-received', spec: a1 })
    go({ kind: 'thread-finished', thread: 1, result: ok(a1.attempt_id) })
    // Job A has not ended yet (no spares so far): a new thread is started for B, A's is kept aside.
    expect(s.spares).toEqual([])
    const a = go({ kind: 'task-received', spec: b1 })
    expect(of(a, 'terminate-thread')).toEqual([])
    expect(s.parked).toEqual([{ thread: 1, lane: 0, job: 'A' }])
    const spawned = of(a, 'spawn-thread')
    expect(spawned).toHaveLength(1)
    const bThread = spawned[0]!.thread
    expect(of(a, 'run')).toEqual([{ kind: 'run', thread: bThread, lane: spawned[0]!.lane, spec: b1 }])
    // Jobs side by side: A's next task gets A's own thread back, B's is parked; no thread starts.
    go({ kind: 'thread-finished', thread: bThread, result: ok(b1.attempt_id) })
    const back = go({ kind: 'task-received', spec: a2 })
    expect(of(back, 'spawn-thread')).toEqual([])
    expect(of(back, 'run')).toEqual([{ kind: 'run', thread: 1, lane: 0, spec: a2 }])
    go({ kind: 'thread-finished', thread: 1, result: ok(a2.attempt_id) })
    expect(of(go({ kind: 'task-received', spec: b2 }), 'run')).toEqual([{ kind: 'run', thread: bThread, lane: spawned[0]!.lane, spec: b2 }])
    go({ kind: 'thread-finished', thread: bThread, result: ok(b2.attempt_id) })
    // A ends: its parked thread goes; a started spare takes the next job's task.
    const dropped = go({ kind: 'job-dropped', job: 'A' })
    expect(of(dropped, 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])
    expect(s.parked).toEqual([])
    const spare = s.spares[0]!
    const c1 = spec('C', 1)
    const c = go({ kind: 'task-received', spec: c1 })
    expect(s.parked.map(p => [p.thread, p.job])).toEqual([[bThread, 'B']])
    expect(of(c, 'run')).toEqual([{ kind: 'run', thread: spare.thread, lane: spare.lane, spec: c1 }])
    // A new incarnation ends every thread that ran code, parked ones included.
    go({ kind: 'thread-finished', thread: spare.thread, result: ok(c1.attempt_id) })
    const inc = go({ kind: 'incarnation-given', incarnation: 'inc-2' })
    expect(of(inc, 'terminate-thread').map(t => t.thread).sort()).toEqual([bThread, spare.thread].sort())
    expect(s.parked).toEqual([])
  })

  test('under a small budget, no spare thread is kept and one parked thread a slot: idle threads cost memory', () => {
    const { s, go } = worker(1, 64 * MiB)
    go({ kind: 'job-dropped', job: 'j0' })
    expect(s.spares).toEqual([])
    for (const [i, job] of ['A', 'B', 'C'].entries()) {
      const t = spec(job, i)
      const run = of(go({ kind: 'task-received', spec: t }), 'run')[0]!
      go({ kind: 'thread-finished', thread: run.thread, result: ok(t.attempt_id) })
    }
    expect(s.parked.map(p => p.job)).toEqual(['B'])
  })

  test('parked threads are bounded: past two a slot, the oldest is terminated', () => {
    const { s, go } = worker(1)
    for (const [i, job] of ['A', 'B', 'C', 'D'].entries()) {
      const t = spec(job, i)
      const acts = go({ kind: 'task-received', spec: t })
      const run = of(acts, 'run')[0]!
      go({ kind: 'thread-finished', thread: run.thread, result: ok(t.attempt_id) })
    }
    expect(s.parked.map(p => p.job)).toEqual(['B', 'C'])
    expect(s.slots[0]!.job).toBe('D')
  })

  test('threads that never close use up the lanes: the slot waits for a thread to be gone, then runs', () => {
    const { s, go } = worker(1)
    // Each kill leaves a thread closing; the spare takes the slot until none is left.
    for (let i = 0; i < LANES_PER_SLOT - 1; i++) {
      const t = spec('j1', i)
      go({ kind: 'task-received', spec: t })
      go({ kind: 'kill-requested', attempt: t.attempt_id })
    }
    const last = spec('j1', 99)
    go({ kind: 'task-received', spec: last })
    const a = go({ kind: 'kill-requested', attempt: last.attempt_id })
    expect(of(a, 'spawn-thread')).toEqual([])
    expect(s.slots[0]!.thread).toBeNull()
    const next = spec('j1', 100)
    expect(of(go({ kind: 'task-received', spec: next }), 'run')).toEqual([])
    const b = go({ kind: 'thread-exited', thread: 1, code: 0 })
    expect(of(b, 'reclaim-lane')).toEqual([{ kind: 'reclaim-lane', lane: 0 }])
    expect(of(b, 'spawn-thread')).toEqual([{ kind: 'spawn-thread', thread: expect.any(Number), lane: 0 }])
    expect(of(b, 'run').map(r => r.spec)).toEqual([next])
  })

  test('task_timeout: nothing before the deadline; at it the attempt fails (counted) and the thread is ended', () => {
    const { go } = worker(1)
    const t = spec('j1', 1, { task_timeout_ms: 30_000 })
    go({ kind: 'task-received', spec: t }, 1_000)
    expect(go({ kind: 'tick' }, 30_999)).toEqual([])
    const a = go({ kind: 'tick' }, 31_000)
    expect(of(a, 'report')[0]?.result.failure).toMatchObject({ reason: 'task-error' })
    expect(of(a, 'report')[0]?.result.failure?.message).toContain('task_timeout (30000 ms)')
    expect(of(a, 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])
    // No limit: never.
    const u = spec('j1', 2)
    go({ kind: 'task-received', spec: u })
    expect(of(go({ kind: 'tick' }, 10_000_000), 'report')).toEqual([])
  })

  test('memory runaway: only the task holding the most is stopped, other jobs\' tasks go on; the next only after the grace period', () => {
    const max = 1024 * MiB
    const { s, go } = worker(3, max)
    const a = spec('A', 1), b = spec('B', 1), c = spec('C', 1)
    go({ kind: 'task-received', spec: a }, 0)
    go({ kind: 'task-received', spec: b }, 10)
    go({ kind: 'task-received', spec: c }, 20)
    const over = max + RUNAWAY_MARGIN_BYTES + 1
    const lanes = [1 * MiB, 300 * MiB, 2 * MiB]
    expect(go({ kind: 'memory-sampled', rssBytes: max + RUNAWAY_MARGIN_BYTES, reservedBytes: 303 * MiB, laneBytes: lanes }, 1_000).filter(x => x.kind !== 'raise-pressure' && x.kind !== 'squeeze')).toEqual([])
    const first = go({ kind: 'memory-sampled', rssBytes: over, reservedBytes: 303 * MiB, laneBytes: lanes }, 1_100)
    expect(of(first, 'report').map(r => r.spec.job_id)).toEqual(['B'])
    expect(of(first, 'report')[0]?.result.failure?.message).toContain('held the most')
    expect(s.slots.filter(x => x.running !== null).map(x => x.running!.job_id).sort()).toEqual(['A', 'C'])
    // Within the grace period the heap may still be coming back: nothing more.
    expect(of(go({ kind: 'memory-sampled', rssBytes: over, reservedBytes: 3 * MiB, laneBytes: [1 * MiB, 0, 2 * MiB] }, 1_100 + RUNAWAY_GRACE_MS - 1), 'report')).toEqual([])
    // Still over after it: the next holder. Among equals, the one running longest.
    const second = go({ kind: 'memory-sampled', rssBytes: over, reservedBytes: 0, laneBytes: [0, 0, 0, 0, 0, 0] }, 1_100 + RUNAWAY_GRACE_MS)
    expect(of(second, 'report').map(r => r.spec.job_id)).toEqual(['A'])
  })

  test('a spare that exits is replaced and its lane comes back', () => {
    const { s, go } = worker(1)
    go({ kind: 'job-dropped', job: 'j0' })
    const spare = s.spares[0]!
    const a = go({ kind: 'thread-exited', thread: spare.thread, code: 1 })
    expect(of(a, 'reclaim-lane')).toEqual([{ kind: 'reclaim-lane', lane: spare.lane }])
    expect(of(a, 'report')).toEqual([])
    expect(s.spares).toHaveLength(1)
    expect(s.spares[0]!.thread).not.toBe(spare.thread)
  })

  test('every new thread warms up once, right after its spawn and before any task: slot threads, spares, replacements', () => {
    const first = newWorkerState(2, 1024 * MiB)
    expect(step(first, { kind: 'started', nowMs: 0 })).toEqual([
      { kind: 'spawn-thread', thread: 1, lane: 0 }, { kind: 'warm-up', thread: 1, lane: 0 },
      { kind: 'spawn-thread', thread: 2, lane: 1 }, { kind: 'warm-up', thread: 2, lane: 1 },
    ])
    const { s, go } = worker(2)
    // A life with job switches (spares taken and made up), a crash, a kill and a spare that exits.
    const life: WorkerAction[] = []
    const t1 = spec('j1', 1), t2 = spec('j2', 1), t3 = spec('j3', 1), t4 = spec('j3', 2)
    life.push(...go({ kind: 'task-received', spec: t1 }), ...go({ kind: 'thread-finished', thread: 1, result: ok(t1.attempt_id) }))
    life.push(...go({ kind: 'job-dropped', job: 'j1' }), ...go({ kind: 'thread-exited', thread: 1, code: 0 }))
    life.push(...go({ kind: 'task-received', spec: t2 }), ...go({ kind: 'thread-crashed', thread: of(life, 'run').at(-1)!.thread, message: 'boom' }))
    life.push(...go({ kind: 'task-received', spec: t3 }), ...go({ kind: 'task-received', spec: t4 }), ...go({ kind: 'kill-requested', attempt: t4.attempt_id }))
    life.push(...go({ kind: 'thread-exited', thread: s.spares[0]!.thread, code: 1 }))
    const spawned = of(life, 'spawn-thread')
    expect(spawned.length).toBeGreaterThanOrEqual(4)
    for (const t of spawned) {
      const at = life.indexOf(t)
      expect(life[at + 1]).toEqual({ kind: 'warm-up', thread: t.thread, lane: t.lane })
    }
    // Once per thread, and only for threads spawned: a spare taken by a slot is not warmed again.
    expect(of(life, 'warm-up').map(w => w.thread)).toEqual(spawned.map(t => t.thread))
    // Every task ran on a thread that was started (and so warmed) before it: threads 1 and 2 at
    // start, the rest in this life, each warm-up action before the thread's first run.
    for (const r of of(life, 'run')) {
      if (r.thread <= 2) continue
      expect(life.findIndex(a => a.kind === 'warm-up' && a.thread === r.thread)).toBeLessThan(life.indexOf(r))
    }
  })

  test('a task that comes while its thread is still warming up is sent at once: it waits in the thread, not in the queue', () => {
    const s = newWorkerState(1, 1024 * MiB)
    step(s, { kind: 'started', nowMs: 0 })
    step(s, { kind: 'incarnation-given', nowMs: 0, incarnation: INC })
    const t1 = spec('j1', 1)
    // No event says the warm-up ended: step does not wait for one.
    expect(step(s, { kind: 'task-received', nowMs: 1, spec: t1 })).toEqual([{ kind: 'run', thread: 1, lane: 0, spec: t1 }])
    expect(s.queue).toEqual([])
  })

  test('a thread that ran only built-in operators stays at its job\'s end and runs the next job\'s task, no thread started or ended', () => {
    const { s, go } = worker(1)
    const a1 = builtin('j1', 1)
    go({ kind: 'task-received', spec: a1 })
    go({ kind: 'thread-finished', thread: 1, result: ok(a1.attempt_id) })
    const end = go({ kind: 'job-dropped', job: 'j1' })
    expect(of(end, 'terminate-thread')).toEqual([])
    expect(s.slots[0]!.thread).toBe(1)
    expect(s.slots[0]!.job).toBeNull()
    // The spare is made up all the same (a job has ended): the next user-code job needs one.
    expect(s.spares).toHaveLength(1)
    const b1 = builtin('j2', 1)
    const next = go({ kind: 'task-received', spec: b1 })
    expect(of(next, 'run')).toEqual([{ kind: 'run', thread: 1, lane: 0, spec: b1 }])
    expect(of(next, 'spawn-thread')).toEqual([])
    // A job with a function of its own runs on it too (nothing of j1's ran there), and after that
    // the thread is that job's alone: it goes at the job's end.
    go({ kind: 'thread-finished', thread: 1, result: ok(b1.attempt_id) })
    go({ kind: 'job-dropped', job: 'j2' })
    const c1 = spec('j3', 1)
    expect(of(go({ kind: 'task-received', spec: c1 }), 'run')).toEqual([{ kind: 'run', thread: 1, lane: 0, spec: c1 }])
    go({ kind: 'thread-finished', thread: 1, result: ok(c1.attempt_id) })
    expect(of(go({ kind: 'job-dropped', job: 'j3' }), 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])
    expect(s.slots[0]!.thread).not.toBe(1)
    expect(s.slots[0]!.reusable).toBe(true)
  })

  test('a built-in job\'s thread still goes at the job\'s end when it was busy (cancelled mid-task), or ran a job\'s function, or much data', () => {
    const busy = worker(1)
    busy.go({ kind: 'task-received', spec: builtin('j1', 1) })
    expect(of(busy.go({ kind: 'job-dropped', job: 'j1' }), 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])

    const mixed = worker(1)
    const m1 = builtin('j1', 1), m2 = spec('j1', 2)
    mixed.go({ kind: 'task-received', spec: m1 })
    mixed.go({ kind: 'task-received', spec: m2 })
    mixed.go({ kind: 'thread-finished', thread: 1, result: ok(m1.attempt_id) })
    mixed.go({ kind: 'thread-finished', thread: 1, result: ok(m2.attempt_id) })
    expect(of(mixed.go({ kind: 'job-dropped', job: 'j1' }), 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])

    const large = worker(1)
    const l1 = builtin('j1', 1)
    large.go({ kind: 'task-received', spec: l1 })
    const r = ok(l1.attempt_id)
    r.metrics.records_in = REUSE_MAX_RECORDS + 1
    large.go({ kind: 'thread-finished', thread: 1, result: r })
    expect(of(large.go({ kind: 'job-dropped', job: 'j1' }), 'terminate-thread')).toEqual([{ kind: 'terminate-thread', thread: 1 }])
  })

  test('an idle built-in thread of a job still running is taken by another job\'s task at once, without parking it', () => {
    const { s, go } = worker(1)
    const a1 = builtin('j1', 1)
    go({ kind: 'task-received', spec: a1 })
    go({ kind: 'thread-finished', thread: 1, result: ok(a1.attempt_id) })
    const b1 = spec('j2', 1)
    const a = go({ kind: 'task-received', spec: b1 })
    expect(of(a, 'run')).toEqual([{ kind: 'run', thread: 1, lane: 0, spec: b1 }])
    expect(s.parked).toEqual([])
    expect(of(a, 'spawn-thread')).toEqual([])
    // j1's late end does not touch the thread now running j2's task.
    expect(of(go({ kind: 'job-dropped', job: 'j1' }), 'terminate-thread')).toEqual([])
    expect(s.slots[0]!.running).toEqual(b1)
  })

  test('code of the job\'s own is found wherever the stage holds it', () => {
    expect(runsUserCode(builtin('j', 1))).toBe(false)
    expect(runsUserCode(spec('j', 1))).toBe(true)
    const stage = builtin('j', 1).stage
    const words = { ...stage, nodes: [{ id: 'w', op: 'words', input: 'in' }], shuffle_writes: [{ shuffle_id: 'c', node: { id: 'c', op: 'count_by_value', input: 'w' }, from: 'w', partitions: 2 }] }
    expect(runsUserCode(spec('j', 1, { stage: words }))).toBe(false)
    const combine = { ...words, shuffle_writes: [{ shuffle_id: 'r', node: { id: 'r', op: 'reduce_by_key', input: 'w', fn: '(a, b) => a + b' }, from: 'w', partitions: 2 }] }
    expect(runsUserCode(spec('j', 1, { stage: combine }))).toBe(true)
    const reduce = { ...stage, root: { kind: 'shuffle' as const, node: { id: 'r', op: 'reduce_by_key', input: 'w', fn: '(a, b) => a + b' }, shuffle_ids: ['r'] }, nodes: [] }
    expect(runsUserCode(spec('j', 1, { stage: reduce }))).toBe(true)
    const sorted = { ...stage, nodes: [{ id: 's', op: 'sort', input: 'in', key: 'r => r.k' }] }
    expect(runsUserCode(spec('j', 1, { stage: sorted }))).toBe(true)
    expect(runsUserCode(spec('j', 1, { stage: { ...stage, sample_of: 's' } }))).toBe(true)
  })

  test('a new incarnation: every attempt stopped without a report, files dropped; the same incarnation again changes nothing', () => {
    const { s, go } = worker(2)
    go({ kind: 'task-received', spec: spec('j1', 1) })
    go({ kind: 'task-received', spec: spec('j1', 2) })
    go({ kind: 'task-received', spec: spec('j1', 3) })
    expect(go({ kind: 'incarnation-given', incarnation: INC })).toEqual([])
    const a = go({ kind: 'incarnation-given', incarnation: 'inc-2' })
    expect(of(a, 'report')).toEqual([])
    expect(of(a, 'terminate-thread')).toHaveLength(2)
    expect(of(a, 'drop-all-files')).toHaveLength(1)
    expect(activeTasks(s)).toBe(0)
    // Tasks of the old incarnation are refused from now on.
    expect(of(go({ kind: 'task-received', spec: spec('j1', 4) }), 'refuse')[0]?.code).toBe('STALE_INCARNATION')
  })
})

describe('worker step: pause from the measured resident size', () => {
  const maxMem = 1024 * MiB
  // What spilling leaves the accounted bytes at, whatever the process holds.
  const capped = SPILL_FRACTION * maxMem

  test('PAUSED past ~80 % of --max-mem resident (beyond the runtime) while the accounted bytes sit at the spill threshold; back under the low mark', () => {
    const { s, go } = worker(1, maxMem)
    const marks = pauseMarks(maxMem, 1)
    expect(marks.pauseAtBytes).toBeGreaterThan(marks.resumeAtBytes)
    go({ kind: 'task-received', spec: spec('j1', 1) })
    go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes - MiB, reservedBytes: capped, laneBytes: [capped] })
    expect(s.paused).toBe(false)
    go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes + MiB, reservedBytes: capped, laneBytes: [capped] })
    expect(s.paused).toBe(true)
    // Between the marks it stays paused (no flapping), and a task sent meanwhile waits.
    go({ kind: 'memory-sampled', rssBytes: marks.resumeAtBytes + MiB, reservedBytes: capped, laneBytes: [capped] })
    expect(s.paused).toBe(true)
    const queued = spec('j1', 2)
    expect(of(go({ kind: 'task-received', spec: queued }), 'run')).toEqual([])
    const back = go({ kind: 'memory-sampled', rssBytes: marks.resumeAtBytes - MiB, reservedBytes: capped, laneBytes: [capped] })
    expect(s.paused).toBe(false)
    // The first task still runs: the queued one waits for a slot, not for the pause.
    expect(of(back, 'run')).toEqual([])
    expect(s.queue.map(q => q.attempt_id)).toEqual([queued.attempt_id])
  })

  test('nothing to relieve (no task running, no cached memory): a high resident size does not stall the worker', () => {
    const { s, go } = worker(1, maxMem)
    const marks = pauseMarks(maxMem, 1)
    go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes * 2, reservedBytes: 0, laneBytes: [0] })
    expect(s.paused).toBe(false)
    // Cached data in memory can be evicted: the worker pauses while it is.
    go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes * 2, reservedBytes: 0, laneBytes: [0], cachedBytes: 10 * MiB })
    expect(s.paused).toBe(true)
    const t = spec('j1', 1)
    expect(of(go({ kind: 'task-received', spec: t }), 'run')).toEqual([])
    // Evicted, memory still high: it resumes and runs the task rather than wait for ever.
    expect(of(go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes * 2, reservedBytes: 0, laneBytes: [0], cachedBytes: 0 }), 'run').map(r => r.spec)).toEqual([t])
    expect(s.paused).toBe(false)
  })
})

describe('worker step: running tasks told to spill from the measured resident size', () => {
  const maxMem = 1024 * MiB

  test('past the pause mark with data held, one raise; none within the grace period, none once the tasks hold little, none under the mark', () => {
    const { s, go } = worker(2, maxMem)
    const marks = pauseMarks(maxMem, 2)
    go({ kind: 'task-received', spec: spec('j1', 1) }, 0)
    go({ kind: 'task-received', spec: spec('j1', 2) }, 0)
    const lanes = (a: number, b: number): number[] => {
      const l = new Array<number>(2 * LANES_PER_SLOT + 1).fill(0)
      l[s.slots[0]!.lane] = a
      l[s.slots[1]!.lane] = b
      return l
    }
    // Under the mark: the estimates alone decide.
    expect(of(go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes, reservedBytes: 400 * MiB, laneBytes: lanes(200 * MiB, 200 * MiB) }, 100), 'raise-pressure')).toEqual([])
    // Past it: the two tasks' held bytes count together (60 + 60 MiB is past an eighth of the spill threshold).
    expect(of(go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes + MiB, reservedBytes: 120 * MiB, laneBytes: lanes(60 * MiB, 60 * MiB) }, 200), 'raise-pressure')).toHaveLength(1)
    expect(s.lastPressureMs).toBe(200)
    // Still high right after: the spill and its collection need time.
    expect(of(go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes + MiB, reservedBytes: 120 * MiB, laneBytes: lanes(60 * MiB, 60 * MiB) }, 200 + PRESSURE_GRACE_MS - 1), 'raise-pressure')).toEqual([])
    // After it, but the tasks spilled and hold little: the resident size is not theirs to give back.
    expect(of(go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes + MiB, reservedBytes: 8 * MiB, laneBytes: lanes(4 * MiB, 4 * MiB) }, 200 + PRESSURE_GRACE_MS), 'raise-pressure')).toEqual([])
    // Held data again: the next raise.
    expect(of(go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes + MiB, reservedBytes: 300 * MiB, laneBytes: lanes(300 * MiB, 0) }, 300 + PRESSURE_GRACE_MS), 'raise-pressure')).toHaveLength(1)
  })

  test('paused for the resident size, the running tasks are squeezed; resumed, they are not; once each way', () => {
    const small = 32 * MiB
    const { s, go } = worker(2, small)
    const marks = pauseMarks(small, 2)
    go({ kind: 'task-received', spec: spec('j1', 1) }, 0)
    const l = new Array<number>(2 * LANES_PER_SLOT + 1).fill(0)
    l[s.slots[0]!.lane] = 10 * MiB
    const sample = (rssBytes: number, at: number): boolean[] =>
      go({ kind: 'memory-sampled', rssBytes, reservedBytes: 10 * MiB, laneBytes: l }, at).flatMap(a => a.kind === 'squeeze' ? [a.on] : [])
    expect(sample(marks.pauseAtBytes, 100)).toEqual([])
    expect(sample(marks.pauseAtBytes + MiB, 200)).toEqual([true])
    expect(sample(marks.pauseAtBytes + 2 * MiB, 300)).toEqual([])          // still paused: said once
    expect(sample(marks.resumeAtBytes + MiB, 400)).toEqual([])             // between the marks: no change
    expect(sample(marks.resumeAtBytes, 500)).toEqual([false])
    expect(sample(marks.resumeAtBytes, 600)).toEqual([])
  })

  test('what an idle lane or the cache lane holds does not count as tasks\' data', () => {
    const { go } = worker(1, maxMem)
    const marks = pauseMarks(maxMem, 1)
    const l = new Array<number>(LANES_PER_SLOT + 1).fill(0)
    l[LANES_PER_SLOT] = 500 * MiB   // cached blocks: evicted by the keeper, not spilled by tasks
    expect(of(go({ kind: 'memory-sampled', rssBytes: marks.pauseAtBytes * 2, reservedBytes: 500 * MiB, laneBytes: l, cachedBytes: 500 * MiB }, 100), 'raise-pressure')).toEqual([])
  })
})
