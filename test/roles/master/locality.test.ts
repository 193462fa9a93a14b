// Locality of cached partitions (src/roles/master/locality.ts) and the scheduler around it: a task
// that reads a cached partition runs on its holder, waits for it up to LOCALITY_WAIT_MS (a fake
// clock: plain numbers), then runs anywhere; a dropped block or a lost holder re-runs only the
// producing tasks it concerns.
import { describe, expect, test } from 'bun:test'
import type { AttemptId, JobId, WorkerId } from '../../../src/api/ids'
import type { Heartbeat } from '../../../src/api/heartbeat'
import type { JobRequest } from '../../../src/api/jobs'
import type { ListAnswer, TaskFailureWire, TaskReport } from '../../../src/api/tasks'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { LOCALITY_WAIT_MS, localityChoice } from '../../../src/roles/master/locality'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterAction, type MasterEvent, type Step } from '../../../src/roles/master/scheduler'
import { newState, zeroMetrics, type JobRun, type MasterState } from '../../../src/roles/master/state'

type Launch = Extract<MasterAction, { kind: 'launch' }>
const placed = (out: Step): string[] => out.actions.filter((a): a is Launch => a.kind === 'launch').map(l => `${l.spec.attempt_id}@${l.worker}`)

function cachedJob(files: number): JobRun {
  const request: JobRequest = {
    nodes: [
      { id: 'lines', op: 'read_text', path: 'in/*.txt' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")', cache: 'memory' },
      { id: 'n', op: 'count', input: 'words' },
    ],
  }
  const listing: ListAnswer = { inputs: [{ node_id: 'lines', files: Array.from({ length: files }, (_, i) => ({ path: `in/${i}.txt`, size: 100 })) }], errors: [] }
  return buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), listing, defaultPartitions: 2, nowMs: 0 })
}

class Master {
  readonly s: MasterState = newState(10_000)
  post(e: MasterEvent): Step { return step(this.s, e) }
  heartbeat(id: string, nowMs: number, slots = 1): Step {
    const known = this.s.workers.get(id as WorkerId)
    const hb: Heartbeat = { worker_id: id, address: `${id}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots, ...(known ? { incarnation: known.incarnation } : {}) }
    return this.post({ kind: 'heartbeat-received', nowMs, hb })
  }
  report(attempt: string, nowMs: number, o: { bytes?: number; failure?: TaskFailureWire } = {}): Step {
    const a = this.s.attempts.get(attempt as AttemptId)!
    const plan = this.s.jobs.get(a.job)!.stages[a.stage]!.plan
    const r: TaskReport = {
      worker_id: a.worker, incarnation: a.incarnation, attempt_id: attempt, state: o.failure ? 'FAILED' : 'SUCCEEDED', metrics: zeroMetrics(),
      shuffle_outputs: o.failure ? [] : plan.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: [o.bytes ?? 5] })), sinks: [],
      ...(o.failure ? { failure: o.failure } : {}),
    }
    return this.post({ kind: 'task-reported', nowMs, report: r })
  }
}

describe('localityChoice', () => {
  test('the holder when it has a free slot; else wait, strictly less than LOCALITY_WAIT_MS; then anywhere', () => {
    expect(localityChoice(true, 0)).toBe('holder')
    expect(localityChoice(true, 10 * LOCALITY_WAIT_MS)).toBe('holder')
    expect(localityChoice(false, 0)).toBe('wait')
    expect(localityChoice(false, LOCALITY_WAIT_MS - 1)).toBe('wait')
    expect(localityChoice(false, LOCALITY_WAIT_MS)).toBe('any')
  })
})

/** w1 and w2 (one slot each); the cache's writers p0, p2 ran on w1 and p1 on w2, all done at 300. */
function writersDone(): { m: Master; out: Step } {
  const m = new Master()
  m.heartbeat('w1', 0)
  m.heartbeat('w2', 0)
  expect(placed(m.post({ kind: 'job-submitted', nowMs: 0, job: cachedJob(3) }))).toEqual(['j1:0:0#0@w1', 'j1:0:1#0@w2'])
  expect(placed(m.report('j1:0:0#0', 100))).toEqual(['j1:0:2#0@w1'])
  m.report('j1:0:1#0', 200)
  return { m, out: m.report('j1:0:2#0', 300, { bytes: 7 }) }
}

describe('delay scheduling of cached partitions', () => {
  test('each reader runs on the holder of its block; one whose holder is busy waits, then runs elsewhere after the bound', () => {
    const { m, out } = writersDone()
    // r0 and r1 on their holders; r2's holder (w1) is busy with r0: r2 waits, w2 stays idle for now.
    expect(placed(out)).toEqual(['j1:1:0#0@w1', 'j1:1:1#0@w2'])
    expect(placed(m.report('j1:1:1#0', 1_000))).toEqual([])
    expect(placed(m.post({ kind: 'lease-check-due', nowMs: 300 + LOCALITY_WAIT_MS - 1 }))).toEqual([])
    const late = m.post({ kind: 'lease-check-due', nowMs: 300 + LOCALITY_WAIT_MS })
    expect(placed(late)).toEqual(['j1:1:2#0@w2'])
    // It reads its one block from the holder, over the network.
    const spec = (late.actions[0] as Launch).spec
    expect(spec.shuffle_inputs).toEqual([{ shuffle_id: 'words#cache', map_outputs: [{ map_partition: 2, attempt_id: 'j1:0:2#0', worker_id: 'w1', address: 'w1:1', bytes: 7 }] }])
  })

  test('while the first pending task waits for its holder, a task behind it whose holder is free runs there', () => {
    const m = new Master()
    m.heartbeat('w1', 0)
    m.heartbeat('w2', 0)
    m.post({ kind: 'job-submitted', nowMs: 0, job: cachedJob(4) })
    // Writers: p0, p2 on w1; p1, p3 on w2.
    m.report('j1:0:0#0', 10)
    m.report('j1:0:1#0', 20)
    m.report('j1:0:2#0', 30)
    expect(placed(m.report('j1:0:3#0', 40))).toEqual(['j1:1:0#0@w1', 'j1:1:1#0@w2'])
    // r1 ends: r2 (holder w1, busy) waits at the head of the queue, r3 (holder w2) goes to w2.
    expect(placed(m.report('j1:1:1#0', 50))).toEqual(['j1:1:3#0@w2'])
    // r2 is still taken from the queue later, on its holder, and r3 is not launched twice.
    expect(placed(m.report('j1:1:0#0', 60))).toEqual(['j1:1:2#0@w1'])
    expect(placed(m.report('j1:1:3#0', 70))).toEqual([])
  })

  test('an empty cached partition has no holder to wait for: its reader runs on any free worker', () => {
    const m = new Master()
    m.heartbeat('w1', 0)
    m.heartbeat('w2', 0)
    m.post({ kind: 'job-submitted', nowMs: 0, job: cachedJob(3) })
    m.report('j1:0:0#0', 100)
    m.report('j1:0:1#0', 200)
    // r2's block (written on w1) is empty: it goes to w2 at once instead of waiting for w1.
    expect(placed(m.report('j1:0:2#0', 300, { bytes: 0 }))).toEqual(['j1:1:0#0@w1', 'j1:1:1#0@w2'])
    expect(placed(m.report('j1:1:1#0', 400))).toEqual(['j1:1:2#0@w2'])
  })

  test('the wait is the stage\'s: once it is over, the tasks after the first do not each wait again', () => {
    const m = new Master()
    m.heartbeat('w1', 0)
    m.post({ kind: 'job-submitted', nowMs: 0, job: cachedJob(3) })
    for (let p = 0; p < 3; p++) m.report(`j1:0:${p}#0`, 10 + p)   // w1 holds every block, runs r0
    expect(m.s.jobs.get('j1' as JobId)!.stages[1]!.state).toBe('RUNNING')
    m.heartbeat('w2', 100, 2)                                         // a worker with two free slots joins
    expect(placed(m.post({ kind: 'lease-check-due', nowMs: 12 + LOCALITY_WAIT_MS - 1 }))).toEqual([])
    // Past the bound: r1 and r2 both go to w2 at once.
    expect(placed(m.post({ kind: 'lease-check-due', nowMs: 12 + LOCALITY_WAIT_MS }))).toEqual(['j1:1:1#0@w2', 'j1:1:2#0@w2'])
  })

  test('a holder that frees up within the bound gets the task', () => {
    const { m } = writersDone()
    expect(placed(m.report('j1:1:0#0', 2_000))).toEqual(['j1:1:2#0@w1'])
  })

  test('a block its holder dropped (missing_attempt): only that producer runs again, then its reader, on the new holder', () => {
    const { m } = writersDone()
    const out = m.report('j1:1:0#0', 1_000, { failure: { reason: 'fetch-failed', message: '404', from_worker: 'w1', missing_attempt: 'j1:0:0#0' } })
    expect(placed(out)).toEqual(['j1:0:0#1@w1'])
    const stage0 = m.s.jobs.get('j1' as JobId)!.stages[0]!
    expect(stage0.tasks.map(t => t.state)).toEqual(['RUNNING', 'SUCCEEDED', 'SUCCEEDED'])
    // Recomputed: its reader goes where the block now is (w1: the only free slot is there anyway).
    expect(placed(m.report('j1:0:0#1', 1_100))).toEqual(['j1:1:0#1@w1'])
  })

  test('readers meeting dropped blocks in a row do not fail the job as a peer in doubt would; each reader is bounded by its own retries', () => {
    const m = new Master()
    m.heartbeat('w1', 0, 8)
    m.post({ kind: 'job-submitted', nowMs: 0, job: cachedJob(6) })
    for (let p = 0; p < 6; p++) m.report(`j1:0:${p}#0`, 10 + p)
    // Six readers in a row find their block dropped: six producers re-run, the job goes on.
    for (let p = 0; p < 6; p++) m.report(`j1:1:${p}#0`, 100 + p, { failure: { reason: 'fetch-failed', message: '404', from_worker: 'w1', missing_attempt: `j1:0:${p}#0` } })
    expect(m.s.jobs.get('j1' as JobId)!.state).toBe('RUNNING')
    expect(m.s.jobs.get('j1' as JobId)!.stages[0]!.tasks.every(t => t.state === 'RUNNING')).toBe(true)
    // One reader whose block is dropped every time fails the job after its bound, saying why.
    let now = 1_000
    for (let round = 1; m.s.jobs.get('j1' as JobId)!.state === 'RUNNING' && round < 20; round++) {
      for (let p = 0; p < 6; p++) { const t = m.s.jobs.get('j1' as JobId)!.stages[0]!.tasks[p]!; if (t.current !== null) m.report(t.current, now++) }
      const r0 = m.s.jobs.get('j1' as JobId)!.stages[1]!.tasks[0]!
      if (r0.current !== null) m.report(r0.current, now++, { failure: { reason: 'fetch-failed', message: '404', from_worker: 'w1', missing_attempt: m.s.jobs.get('j1' as JobId)!.stages[0]!.tasks[0]!.output!.attempt } })
    }
    const job = m.s.jobs.get('j1' as JobId)!
    expect(job.state).toBe('FAILED')
    expect(job.error?.message).toContain('times in a row')
  })

  for (const [what, first] of [
    ['cached', { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")', cache: 'memory' }],
    // The same chain through a plain shuffle had the same gap.
    ['shuffled', { id: 'words', op: 'group_by_key', input: 'lines', partitions: 2 }],
  ] as const) test(`a worker lost after the readers of its ${what} outputs finished, while a later stage runs: the outputs they will read again are recomputed too`, () => {
    const m = new Master()
    m.heartbeat('w1', 0, 2)
    m.heartbeat('w2', 0, 2)
    const request: JobRequest = { nodes: [
      { id: 'lines', op: 'read_text', path: 'in/*.txt' },
      first,
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 2 },
      { id: 'c', op: 'collect', input: 'counts' },
    ] }
    const listing: ListAnswer = { inputs: [{ node_id: 'lines', files: [0, 1].map(i => ({ path: `in/${i}.txt`, size: 100 })) }], errors: [] }
    m.post({ kind: 'job-submitted', nowMs: 0, job: buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), listing, defaultPartitions: 2, nowMs: 0 }) })
    const sized = (attempt: string, nowMs: number): void => {
      const a = m.s.attempts.get(attempt as AttemptId)!
      const plan = m.s.jobs.get(a.job)!.stages[a.stage]!.plan
      m.post({ kind: 'task-reported', nowMs, report: { worker_id: a.worker, incarnation: a.incarnation, attempt_id: attempt, state: 'SUCCEEDED', metrics: zeroMetrics(), shuffle_outputs: plan.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: Array<number>(w.partitions).fill(5) })), sinks: [] } })
    }
    sized('j1:0:0#0', 10); sized('j1:0:1#0', 11)   // outputs: 0 on w1, 1 on w2
    sized('j1:1:0#0', 20); sized('j1:1:1#0', 21)   // their readers: 0 on w1, 1 on w2
    const job = m.s.jobs.get('j1' as JobId)!
    expect(job.stages.map(st => st.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'RUNNING'])
    m.heartbeat('w2', 9_000, 2)
    m.post({ kind: 'lease-check-due', nowMs: 10_001 })
    // Reader 0's shuffle output was on w1: it runs again, so block 0 (on w1 too) must be recomputed
    // first; what w2 holds stays.
    expect(job.stages.map(st => st.tasks.map(t => t.state).join(','))).toEqual(['RUNNING,SUCCEEDED', 'PENDING,SUCCEEDED', 'PENDING,PENDING'])
  })

  test('a lost holder: its blocks are recomputed and the readers it served are stopped; the others are left alone', () => {
    const { m } = writersDone()
    // w1 dies (no heartbeat past the timeout); w2 beats on.
    m.heartbeat('w2', 9_000)
    const out = m.post({ kind: 'lease-check-due', nowMs: 10_001 })
    const stage0 = m.s.jobs.get('j1' as JobId)!.stages[0]!
    // p0 and p2 were on w1: again; p1 (on w2) is kept, and so is its reader, running on w2.
    expect(stage0.tasks.map(t => t.state)).toEqual(['PENDING', 'SUCCEEDED', 'PENDING'])
    expect(m.s.attempts.get('j1:1:0#0' as AttemptId)?.state).toBe('LOST')
    expect(m.s.attempts.get('j1:1:1#0' as AttemptId)?.state).toBe('RUNNING')
    expect(placed(out)).toEqual([])
    // r1 ends: w2's slot recomputes the lost blocks, one after the other.
    expect(placed(m.report('j1:1:1#0', 10_100))).toEqual(['j1:0:0#1@w2'])
    expect(placed(m.report('j1:0:0#1', 10_200))).toEqual(['j1:0:2#1@w2'])
  })
})
