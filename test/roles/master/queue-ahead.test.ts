// Tasks queued ahead at workers (src/roles/master/queue-ahead.ts), through the master's pure
// step(): a stage of short tasks gets one more task per slot on each worker, a stage of long ones
// does not; a queued task is lease-bounded like a running one; a cancelled job's queued tasks are
// dropped at their worker.
import { describe, expect, test } from 'bun:test'
import type { AttemptId, JobId, WorkerId } from '../../../src/api/ids'
import type { JobRequest } from '../../../src/api/jobs'
import type { ListAnswer, TaskReport } from '../../../src/api/tasks'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterAction, type MasterEvent, type Step } from '../../../src/roles/master/scheduler'
import { newState, zeroMetrics, type MasterState } from '../../../src/roles/master/state'
import { MAX_AHEAD_PER_SLOT, SHORT_TASK_MS } from '../../../src/roles/master/queue-ahead'

type Launch = Extract<MasterAction, { kind: 'launch' }>
const launches = (out: Step): Launch[] => out.actions.filter((a): a is Launch => a.kind === 'launch')

/** One source stage of `tasks` tasks (one file each), counted. */
function countJob(id: string, tasks: number) {
  const request: JobRequest = { name: id, nodes: [{ id: 'lines', op: 'read_text', path: 'in/*.txt' }, { id: 'n', op: 'count', input: 'lines' }] }
  const listing: ListAnswer = { inputs: [{ node_id: 'lines', files: Array.from({ length: tasks }, (_, i) => ({ path: `in/p-${i}.txt`, size: 10 })) }], errors: [] }
  return buildJobRun({ id: id as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), listing, defaultPartitions: 2, nowMs: 0 })
}

class Master {
  readonly s: MasterState = newState(10_000)
  /** attempts launched, by worker, not yet reported */
  readonly held = new Map<string, string[]>()
  post(e: MasterEvent): Step {
    const out = step(this.s, e)
    for (const l of launches(out)) this.held.set(l.worker, [...this.held.get(l.worker) ?? [], l.spec.attempt_id])
    // Never more than the bound per slot, whatever the stage.
    for (const w of this.s.workers.values()) expect(w.running.size).toBeLessThanOrEqual((1 + MAX_AHEAD_PER_SLOT) * w.slots)
    return out
  }
  beat(id: string, nowMs: number, slots = 1): Step {
    const w = this.s.workers.get(id as WorkerId)
    return this.post({ kind: 'heartbeat-received', nowMs, hb: { worker_id: id, address: `${id}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots, incarnation: w?.incarnation ?? '', running: [...w?.running ?? []] } })
  }
  /** The worker's oldest held attempt succeeds. */
  finish(worker: string, nowMs: number): Step {
    const id = this.held.get(worker)!.shift()!
    const a = this.s.attempts.get(id as AttemptId)!
    const r: TaskReport = { worker_id: worker, incarnation: a.incarnation, attempt_id: id, state: 'SUCCEEDED', metrics: zeroMetrics(), shuffle_outputs: [], sinks: [{ node_id: 'n', op: 'count', records: 1 }] }
    return this.post({ kind: 'task-reported', nowMs, report: r })
  }
  running(worker: string): number { return this.s.workers.get(worker as WorkerId)!.running.size }
}

/** One worker of one slot runs a job of `tasks` tasks, each taking `taskMs`; the most attempts it
 *  held at once after the first two finished. */
function peakHeld(taskMs: number, tasks = 20): { m: Master; peak: number } {
  const m = new Master()
  m.beat('w1', 0)
  m.post({ kind: 'job-submitted', nowMs: 0, job: countJob('j1', tasks) })
  let now = 0
  let peak = 0
  for (let done = 0; done < 6; done++) {
    now += taskMs
    m.finish('w1', now)
    if (done >= 1) peak = Math.max(peak, m.running('w1'))
  }
  return { m, peak }
}

describe('queue ahead', () => {
  test('a stage of short tasks keeps tasks queued at the worker, the more the shorter they are (within bounds); one of long tasks does not', () => {
    const tiny = peakHeld(2).peak
    expect(tiny).toBeGreaterThan(2)
    expect(tiny).toBeLessThanOrEqual(1 + MAX_AHEAD_PER_SLOT)
    expect(peakHeld(60).peak).toBe(2)
    expect(peakHeld(SHORT_TASK_MS + 400).peak).toBe(1)
  })

  test('with two slots, twice as many are queued; no worker gets more than the bound', () => {
    const m = new Master()
    m.beat('w1', 0, 2)
    m.beat('w2', 0, 2)
    m.post({ kind: 'job-submitted', nowMs: 0, job: countJob('j1', 40) })
    expect(m.running('w1') + m.running('w2')).toBe(4)
    m.finish('w1', 3)
    m.finish('w2', 4)
    expect([m.running('w1'), m.running('w2')]).toEqual([2 * (1 + MAX_AHEAD_PER_SLOT), 2 * (1 + MAX_AHEAD_PER_SLOT)])
  })

  test('a worker lost with queued tasks: every one of them is PENDING again within the lease, and runs elsewhere', () => {
    const { m } = peakHeld(5)
    expect(m.running('w1')).toBeGreaterThan(2)
    const queued = [...m.s.workers.get('w1' as WorkerId)!.running]
    const tasks = queued.map(id => m.s.attempts.get(id as AttemptId)!.task)
    const job = m.s.jobs.get('j1' as JobId)!
    // w1 is silent from t=30 (its last report): the lease (10 s) runs out.
    m.post({ kind: 'lease-check-due', nowMs: 10_031 })
    for (const id of queued) expect(m.s.attempts.get(id as AttemptId)?.state).toBe('LOST')
    for (const t of tasks) expect(job.stages[0]!.tasks.find(x => x.id === t)!.state).toBe('PENDING')
    // A new worker takes them first (partition order), and fresh attempts of them.
    const out = m.beat('w2', 11_000)
    expect(launches(out).map(l => l.spec.task_id).slice(0, 1)).toEqual([tasks[0]!])
    expect(launches(out).every(l => l.worker === 'w2' && !queued.includes(l.spec.attempt_id as AttemptId))).toBe(true)
  })

  test('a cancelled job: its worker is told to drop it (queued tasks included), and nothing of it is launched again', () => {
    const { m } = peakHeld(5)
    expect(m.running('w1')).toBeGreaterThan(2)
    const out = m.post({ kind: 'job-cancel-requested', nowMs: 100, job: 'j1' as JobId })
    expect(out.actions.filter(a => a.kind === 'drop-job-data' && a.address === 'w1:1')).toHaveLength(1)
    expect(launches(out)).toEqual([])
    expect(m.running('w1')).toBe(0)
    expect(launches(m.beat('w1', 200))).toEqual([])
  })
})
