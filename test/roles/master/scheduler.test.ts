// Unit tests of the master's pure decisions (src/roles/master/scheduler.ts): hand-built events,
// a fake time (plain numbers), JobRuns built by planning.ts from a made-up listing.
// Every step goes through Cluster.post, which checks assertInvariants on the state afterwards.
import { describe, expect, test } from 'bun:test'
import type { AttemptId, JobId, TaskId, WorkerId } from '../../../src/api/ids'
import type { Heartbeat } from '../../../src/api/heartbeat'
import type { JobRequest, NodeSpec } from '../../../src/api/jobs'
import type { ListAnswer, OutputSettle, SinkOutput, StagePlan, TaskFailureWire, TaskReport, TaskSpec } from '../../../src/api/tasks'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterAction, type MasterEvent, type Step } from '../../../src/roles/master/scheduler'
import { commitAllowed } from '../../../src/roles/master/task-events'
import { recoverState } from '../../../src/roles/master/recovery'
import { Store } from '../../../src/roles/master/store'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isLive, newState, zeroMetrics, type JobRun, type MasterState, type StageRun, type TaskRun, type WorkerRun } from '../../../src/roles/master/state'
import { countsOf } from '../../../src/roles/master/task-index'
import { LAUNCH_GRACE_MS, LAUNCH_TIMEOUT_MS } from '../../../src/roles/master/events'
import { MAX_AHEAD_PER_SLOT } from '../../../src/roles/master/queue-ahead'

// ---- ids and fixtures -------------------------------------------------------------------------

const W = (s: string) => s as WorkerId
const A = (s: string) => s as AttemptId
const J = (s: string) => s as JobId
const T = (s: string) => s as TaskId
const addr = (w: string) => `${w}.test:8081`

type Launch = Extract<MasterAction, { kind: 'launch' }>
const launches = (out: Step): Launch[] => out.actions.filter((a): a is Launch => a.kind === 'launch')
const ofKind = <K extends MasterAction['kind']>(out: Step, kind: K) =>
  out.actions.filter((a): a is Extract<MasterAction, { kind: K }> => a.kind === kind)
/** "task on worker" for each launch, in order: compact to compare. */
const placed = (out: Step): string[] => launches(out).map(l => `${l.spec.attempt_id}@${l.worker}`)

/**
 * lines (read_text) → pairs (map) → counts (reduce_by_key, `partitions`) → sinks (default: collect "all").
 * One map task per input file (files are far below the split size).
 */
function makeJob(o: { id?: string; seq?: number; files?: number[]; partitions?: number; maxAttempts?: number; sinks?: NodeSpec[]; mapSinks?: NodeSpec[] } = {}): JobRun {
  const nodes: NodeSpec[] = [
    { id: 'lines', op: 'read_text', path: 'in/*.txt' },
    { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: o.partitions ?? 2 },
    ...(o.sinks ?? [{ id: 'all', op: 'collect', input: 'counts' }]),
    ...(o.mapSinks ?? []),
  ]
  const request: JobRequest = {
    name: 'wc', nodes, params: { min: 2 },
    ...(o.maxAttempts === undefined ? {} : { max_task_attempts: o.maxAttempts }),
  }
  const listing: ListAnswer = {
    inputs: [{ node_id: 'lines', files: (o.files ?? [100, 200]).map((size, i) => ({ path: `in/part-${i}.txt`, size })) }],
    errors: [],
  }
  return buildJobRun({
    id: J(o.id ?? 'j1'), seq: o.seq ?? 1, request, valid: validateJob(request, SUPPORTED_OPS), listing, defaultPartitions: 4, nowMs: 0,
  })
}

// ---- invariants -------------------------------------------------------------------------------

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(`invariant broken: ${message}`)
}

/** Attempts and workers agree: a RUNNING attempt sits on a live worker of its incarnation, in its
 *  running set, and is its task's current attempt; a worker runs at most `slots` attempts. */
function assertAttemptsAndWorkers(s: MasterState): void {
  for (const a of s.attempts.values()) {
    if (a.state !== 'RUNNING') continue
    const w = s.workers.get(a.worker)
    check(w !== undefined, `${a.id} runs on unknown worker ${a.worker}`)
    check(isLive(w!), `${a.id} is RUNNING on DEAD worker ${a.worker}`)
    check(w!.incarnation === a.incarnation, `${a.id} belongs to an old incarnation of ${a.worker}`)
    check(w!.running.has(a.id), `${a.id} is missing from ${a.worker}'s running set`)
    const job = s.jobs.get(a.job)
    check(job?.state === 'RUNNING', `${a.id} is RUNNING but its job is ${job?.state}`)
    const task = job!.stages[a.stage]?.tasks[a.partition]
    check(task?.current === a.id && task.state === 'RUNNING', `${a.id} is RUNNING but not its task's current attempt`)
  }
  for (const w of s.workers.values()) {
    check(w.running.size <= (1 + MAX_AHEAD_PER_SLOT) * w.slots, `${w.id} holds ${w.running.size} attempts on ${w.slots} slots`)
    if (!isLive(w)) check(w.running.size === 0, `DEAD ${w.id} still runs ${[...w.running].join(', ')}`)
    for (const id of w.running) {
      const a = s.attempts.get(id)
      check(a?.state === 'RUNNING' && a.worker === w.id, `${w.id}'s running set holds ${id}, which is ${a?.state ?? 'unknown'}`)
    }
  }
}

/** Tasks agree with their attempts: a task is RUNNING exactly when its current attempt is. */
function assertTasks(s: MasterState): void {
  for (const job of s.jobs.values()) {
    const finished = job.state === 'SUCCEEDED' || job.state === 'FAILED' || job.state === 'CANCELLED'
    if (finished) {
      check(job.finishedMs !== null, `${job.id} is ${job.state} without finishedMs`)
      for (const st of job.stages) check(st.tasks.length === 0 && st.finalCounts !== null, `finished ${job.id} keeps tasks in memory`)
      for (const a of s.attempts.values()) check(a.job !== job.id, `finished ${job.id} keeps attempt ${a.id} in memory`)
      continue
    }
    for (const st of job.stages) {
      check(st.tasks.length === st.plan.partitions, `stage ${st.plan.stage_id} has ${st.tasks.length} tasks for ${st.plan.partitions} partitions`)
      if (st.state === 'SUCCEEDED') check(st.tasks.every(t => t.state === 'SUCCEEDED'), `stage ${st.plan.stage_id} SUCCEEDED with unfinished tasks`)
      st.tasks.forEach((t, p) => {
        check(t.partition === p && t.stage === st.plan.stage_id, `${t.id} is filed at the wrong place`)
        check((t.state === 'RUNNING') === (t.current !== null), `${t.id} is ${t.state} with current ${t.current}`)
        if (t.current !== null) check(s.attempts.get(t.current)?.state === 'RUNNING', `${t.id} is RUNNING but its attempt ${t.current} is ${s.attempts.get(t.current)?.state}`)
        check(t.failures < job.maxAttempts, `${t.id} failed ${t.failures} times in a job still ${job.state}`)
      })
      assertIndex(st)
    }
  }
}

/** A stage's task index agrees with its tasks: counts by state, and every PENDING task queued once
 *  in a heap that keeps its order (what it holds beyond those is dropped when read). */
function assertIndex(st: StageRun): void {
  const ix = st.index
  const n = { PENDING: 0, RUNNING: 0, SUCCEEDED: 0, FAILED: 0 }
  for (const t of st.tasks) n[t.state]++
  const where = `stage ${st.plan.stage_id}`
  check(ix.pending === n.PENDING && ix.running === n.RUNNING && ix.succeeded === n.SUCCEEDED && ix.failed === n.FAILED,
    `${where} counts ${JSON.stringify(countsOf(st))}, its tasks ${JSON.stringify(n)}`)
  const inHeap = new Set(ix.heap)
  check(inHeap.size === ix.heap.length, `${where} queues a partition twice: ${ix.heap.join(',')}`)
  check(ix.queued.reduce((k, q) => k + q, 0) === ix.heap.length && ix.heap.every(p => ix.queued[p] === 1), `${where}'s queued flags disagree with its heap`)
  for (const t of st.tasks) if (t.state === 'PENDING') check(inHeap.has(t.partition), `PENDING ${t.id} is not queued`)
  ix.heap.forEach((p, i) => check(i === 0 || ix.heap[(i - 1) >> 1]! <= p, `${where}'s heap is out of order: ${ix.heap.join(',')}`))
}

/** The cached ring of workers that may get tasks is what it would be if built now. */
function assertRing(s: MasterState): void {
  if (s.ring === null) return
  const now = [...s.workers.values()].filter(w => isLive(w) && w.status !== 'PAUSED' && w.staleOutputs === undefined)
  check(s.ring.length === now.length && s.ring.every((w, i) => w === now[i]), `stale ring: ${s.ring.map(w => w.id).join(',')} instead of ${now.map(w => w.id).join(',')}`)
}

function assertInvariants(s: MasterState): void {
  assertRing(s)
  assertAttemptsAndWorkers(s)
  assertTasks(s)
}

// ---- a tiny harness over step() ----------------------------------------------------------------

class Cluster {
  readonly s: MasterState
  constructor(timeoutMs = 10_000) { this.s = newState(timeoutMs) }

  post(e: MasterEvent): Step {
    const out = step(this.s, e)
    expect(out.state).toBe(this.s)
    assertInvariants(this.s)
    return out
  }

  /** By default the heartbeat echoes the incarnation the master gave (a DEAD worker's old one
   *  too); `incarnation: null` sends none, as a process that just started. */
  heartbeat(id: string, nowMs: number, o: { slots?: number; status?: Heartbeat['status']; incarnation?: string | null } = {}): Step {
    const known = this.s.workers.get(W(id))
    const inc = o.incarnation === undefined ? known?.incarnation : o.incarnation ?? undefined
    const hb: Heartbeat = {
      worker_id: id, address: addr(id), status: o.status ?? 'IDLE', active_tasks: known?.running.size ?? 0,
      mem_usage_mb: 64, last_heartbeat: Math.floor(nowMs / 1000),
      ...(o.slots === undefined ? {} : { slots: o.slots }),
      ...(inc === undefined ? {} : { incarnation: inc }),
    }
    return this.post({ kind: 'heartbeat-received', nowMs, hb })
  }

  submit(job: JobRun, nowMs = 0): Step { return this.post({ kind: 'job-submitted', nowMs, job }) }
  leaseCheck(nowMs: number): Step { return this.post({ kind: 'lease-check-due', nowMs }) }

  /** A report as the attempt's worker would send it; map tasks report `sizes` for their shuffle. */
  report(attempt: string, nowMs: number, o: { sizes?: number[]; sinks?: SinkOutput[]; failure?: TaskFailureWire; incarnation?: string } = {}): Step {
    return this.post({ kind: 'task-reported', nowMs, report: this.reportOf(attempt, o) })
  }

  reportOf(attempt: string, o: { sizes?: number[]; sinks?: SinkOutput[]; failure?: TaskFailureWire; incarnation?: string } = {}): TaskReport {
    const a = this.s.attempts.get(A(attempt))
    if (a === undefined) throw new Error(`test bug: no attempt ${attempt}`)
    const plan = this.s.jobs.get(a.job)!.stages[a.stage]!.plan
    return {
      worker_id: a.worker, incarnation: o.incarnation ?? a.incarnation, attempt_id: attempt,
      state: o.failure === undefined ? 'SUCCEEDED' : 'FAILED',
      metrics: { ...zeroMetrics(), records_in: 10 },
      shuffle_outputs: o.failure !== undefined ? [] : plan.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: o.sizes ?? Array<number>(w.partitions).fill(1) })),
      sinks: o.failure !== undefined ? (o.sinks ?? []) : withParts(plan, a.partition, o.sinks ?? []),
      ...(o.failure === undefined ? {} : { failure: o.failure }),
    }
  }

  commit(attempt: string, nowMs: number): boolean {
    this.post({ kind: 'commit-requested', nowMs, attempt: A(attempt) })
    return commitAllowed(this.s, A(attempt))
  }

  worker(id: string): WorkerRun { return this.s.workers.get(W(id))! }
  job(id = 'j1'): JobRun { return this.s.jobs.get(J(id))! }
  task(stage: number, partition: number, job = 'j1'): TaskRun { return this.job(job).stages[stage]!.tasks[partition]! }
}

/** A worker reports each write sink's part number and size: added where a test leaves them out. */
function withParts(plan: StagePlan, partition: number, given: SinkOutput[]): SinkOutput[] {
  const out = [...given]
  for (const n of plan.nodes) {
    if (n.op !== 'write_text' && n.op !== 'write_jsonl') continue
    const part = (plan.sink_parts?.[n.id] ?? 0) + partition
    const i = out.findIndex(o => o.node_id === n.id)
    if (i < 0) out.push({ node_id: n.id, op: n.op, records: 0, part, bytes: 0 })
    else out[i] = { part, bytes: 0, ...out[i]! }
  }
  return out
}

const udfError = (message = 'boom'): TaskFailureWire =>
  ({ reason: 'udf-error', message, node_id: 'pairs', record: '"bad line"' })
const fetchFailed = (from: string): TaskFailureWire =>
  ({ reason: 'fetch-failed', message: `could not fetch from ${from}`, from_worker: from })

/** Two workers (w1, w2) registered at t=0 and a job submitted: map p0 on w1, p1 on w2. */
function twoWorkersRunningJob(o: Parameters<typeof makeJob>[0] & { slots?: number } = {}): { c: Cluster; out: Step } {
  const c = new Cluster()
  c.heartbeat('w1', 0, { slots: o.slots ?? 2 })
  c.heartbeat('w2', 0, { slots: o.slots ?? 2 })
  const out = c.submit(makeJob(o), 0)
  return { c, out }
}

/** Map stage done (p0 on w1 with sizes [3, 4], p1 on w2 with sizes [5, 0]); reduce r0 on w1, r1 on w2. */
function reduceRunning(o: Parameters<typeof makeJob>[0] & { slots?: number } = {}): { c: Cluster; out: Step } {
  const { c } = twoWorkersRunningJob(o)
  c.report('j1:0:0#0', 100, { sizes: [3, 4] })
  const out = c.report('j1:0:1#0', 200, { sizes: [5, 0] })
  return { c, out }
}

// ---- tests ------------------------------------------------------------------------------------

describe('heartbeats', () => {
  test('the first heartbeat registers a worker with an incarnation; later ones keep it', () => {
    const c = new Cluster()
    const first = c.heartbeat('w1', 1_000, { slots: 3 })
    const w1 = c.worker('w1')
    expect(w1).toMatchObject({ id: 'w1', address: addr('w1'), status: 'IDLE', slots: 3, lastSeenMs: 1_000 })
    expect(w1.incarnation).toBeString()
    expect(first.changes).toContainEqual({ kind: 'worker', worker: W('w1') })
    expect(first.actions).toEqual([])

    const inc = w1.incarnation
    c.heartbeat('w1', 2_000, { status: 'BUSY' })
    expect(c.worker('w1')).toMatchObject({ incarnation: inc, status: 'BUSY', slots: 3, lastSeenMs: 2_000 })

    c.heartbeat('w2', 2_500)
    expect(c.worker('w2').incarnation).not.toBe(inc)
    expect(c.worker('w2').slots).toBe(1)   // a seed heartbeat without slots: one task at a time
  })

  test('a process that restarted (first beat, incarnation "") joins as a new incarnation', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0)
    const old = c.worker('w1').incarnation
    c.heartbeat('w1', 500, { incarnation: null })          // seed format, no field: the same process
    expect(c.worker('w1').incarnation).toBe(old)
    c.heartbeat('w1', 1_000, { incarnation: '' })
    expect(c.worker('w1').incarnation).not.toBe(old)
    expect(isLive(c.worker('w1'))).toBe(true)
  })

  test('a DEAD worker that heartbeats again rejoins as a new incarnation', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0)
    const old = c.worker('w1').incarnation
    c.leaseCheck(10_001)
    expect(c.worker('w1').status).toBe('DEAD')
    c.heartbeat('w1', 12_000)           // still echoing the old incarnation
    expect(c.worker('w1').status).toBe('IDLE')
    expect(c.worker('w1').incarnation).not.toBe(old)
    expect(c.worker('w1').lastSeenMs).toBe(12_000)
  })

  test('a worker away when an overwrite was swapped in swaps it on its return, before it gets a task', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 2 })
    c.heartbeat('w2', 0, { slots: 2 })
    const overwriting = (id: string, seq: number, path: string, submittedMs: number): JobRun =>
      ({ ...makeJob({ id, seq, files: [5], partitions: 1, sinks: [{ id: 'out', op: 'write_text', input: 'counts', path, overwrite: true }] }), submittedMs })
    const finish = (id: string, nowMs: number): void => {
      c.report(`${id}:0:0#0`, nowMs)
      let asks = ofKind(c.report(`${id}:1:0#0`, nowMs + 1), 'finalize-output')
      while (asks.length > 0) asks = ofKind(c.post({ kind: 'output-finalized', nowMs: nowMs + 2, job: J(id), worker: asks[0]!.worker, incarnation: asks[0]!.incarnation }), 'finalize-output')
      expect(c.job(id).state).toBe('SUCCEEDED')
    }
    c.submit(overwriting('j0', 1, 'out/early', 100), 100)
    finish('j0', 500)                                          // w2 was live: it swapped then
    c.heartbeat('w1', 9_000)
    c.leaseCheck(10_001)                                       // w2 is DEAD
    expect(c.worker('w2').status).toBe('DEAD')
    c.submit(overwriting('ja', 2, 'out/wc', 10_500), 10_500)
    finish('ja', 10_600)
    c.submit(overwriting('jb', 3, 'out/wc', 11_000), 11_000)           // the last of out/wc is the one to swap
    finish('jb', 11_100)
    expect(c.s.overwrites.map(o => `${o.path}<-${o.job}`)).toEqual(['out/early<-j0', 'out/wc<-ja', 'out/wc<-jb'])
    c.submit(makeJob({ id: 'j9', seq: 9, files: [1, 2, 3, 4, 5, 6] }), 11_600)
    const back = c.heartbeat('w2', 12_000, { incarnation: null })
    const clears = ofKind(back, 'clear-stale-outputs')
    expect(clears).toEqual([{ kind: 'clear-stale-outputs', address: addr('w2'), worker: W('w2'), incarnation: c.worker('w2').incarnation,
      swaps: [{ path: 'out/wc', staged: 'out/wc/_temporary/jb', olderThanMs: 2_000 }],   // since jb's submission, and a second
      // and the output as the catalog has it: no part of it counts on w2's disk
      // (and its staged folder here, where copies run again elsewhere may lie, before the swap)
      settle: [{ path: 'out/wc', dir: 'out/wc', keep: [], job_id: 'jb' }, { path: 'out/wc', dir: 'out/wc/_temporary/jb', keep: [], job_id: 'jb' }] }])
    expect(launches(back).map(l => String(l.worker))).not.toContain('w2')
    // Not asked twice while the request is on its way; asked again after a failure.
    expect(ofKind(c.heartbeat('w2', 12_100), 'clear-stale-outputs')).toEqual([])
    c.post({ kind: 'stale-outputs-cleared', nowMs: 12_200, worker: W('w2'), incarnation: c.worker('w2').incarnation, ok: false })
    expect(ofKind(c.heartbeat('w2', 12_300), 'clear-stale-outputs')).toHaveLength(1)
    const cleared = c.post({ kind: 'stale-outputs-cleared', nowMs: 12_400, worker: W('w2'), incarnation: c.worker('w2').incarnation, ok: true })
    expect(launches(cleared).map(l => String(l.worker))).toContain('w2')
    // A worker that was never away has nothing to clear.
    expect(ofKind(c.heartbeat('w3', 13_000), 'clear-stale-outputs')).toEqual([])
  })
})

describe('launching', () => {
  test('map tasks go round-robin over live workers, up to their slots', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 2 })
    c.heartbeat('w2', 0, { slots: 1 })
    const out = c.submit(makeJob({ files: [10, 20, 30, 40, 50] }), 5)
    expect(placed(out)).toEqual(['j1:0:0#0@w1', 'j1:0:1#0@w2', 'j1:0:2#0@w1'])
    expect(c.job().state).toBe('RUNNING')
    expect(c.job().startedMs).toBe(5)
    expect([3, 4].map(p => c.task(0, p).state)).toEqual(['PENDING', 'PENDING'])

    // A slot frees on w2: the next pending task goes there, since w1 is full.
    const next = c.report('j1:0:1#0', 10)
    expect(placed(next)).toEqual(['j1:0:3#0@w2'])
  })

  test('a map launch carries its split, params and the worker\'s incarnation', () => {
    const { c, out } = twoWorkersRunningJob()
    const [l0, l1] = launches(out) as [Launch, Launch]
    expect(l0.address).toBe(addr('w1'))
    expect(l0.spec).toMatchObject({
      job_id: 'j1', task_id: 'j1:0:0', attempt_id: 'j1:0:0#0', attempt: 0, stage_id: 0, partition: 0,
      params: { min: 2 }, split: { path: 'in/part-0.txt', start: 0, end: 100, file_size: 100 },
      shuffle_inputs: [], incarnation: c.worker('w1').incarnation,
    } satisfies Partial<TaskSpec>)
    expect(l0.spec.stage).toBe(c.job().stages[0]!.plan)
    expect(l1.spec.split).toEqual({ path: 'in/part-1.txt', start: 0, end: 200, file_size: 200 })
    expect(c.worker('w1').running).toEqual(new Set([A('j1:0:0#0')]))
    expect(c.s.attempts.get(A('j1:0:0#0'))).toMatchObject({ state: 'RUNNING', worker: 'w1', startedMs: 0 })
  })

  test('a PAUSED worker gets no new task', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 4 })
    c.heartbeat('w2', 0, { slots: 4, status: 'PAUSED' })
    const out = c.submit(makeJob({ files: [1, 2, 3] }))
    expect(launches(out).map(l => l.worker)).toEqual([W('w1'), W('w1'), W('w1')])
  })

  test('with no live worker nothing is launched; the first heartbeat starts the work', () => {
    const c = new Cluster()
    expect(launches(c.submit(makeJob()))).toEqual([])
    expect(placed(c.heartbeat('w1', 50, { slots: 4 }))).toEqual(['j1:0:0#0@w1', 'j1:0:1#0@w1'])
  })

  test('nothing is launched for a stage whose shuffle dependency is not done', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 8 })
    c.submit(makeJob({ files: [1, 2, 3] }))
    expect(launches(c.report('j1:0:0#0', 10))).toEqual([])
    expect(launches(c.report('j1:0:1#0', 20))).toEqual([])
    expect(c.job().stages[1]!.state).toBe('WAITING')
    expect(c.job().stages[1]!.tasks.every(t => t.state === 'PENDING')).toBe(true)
    // The last map task finishing releases the reduce stage, in the same step.
    expect(placed(c.report('j1:0:2#0', 30))).toEqual(['j1:1:0#0@w1', 'j1:1:1#0@w1'])
    expect(c.job().stages.map(s => s.state)).toEqual(['SUCCEEDED', 'RUNNING'])
  })

  test('an empty input gives a map stage with no task; the reduce stage runs on no map output', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 4 })
    const out = c.submit(makeJob({ files: [0] }))
    expect(c.job().stages[0]!.tasks).toEqual([])
    expect(c.job().stages[0]!.state).toBe('SUCCEEDED')
    expect(launches(out).map(l => l.spec.shuffle_inputs)).toEqual([
      [{ shuffle_id: 'counts', map_outputs: [] }], [{ shuffle_id: 'counts', map_outputs: [] }],
    ])
  })
})

describe('task reports', () => {
  test('SUCCEEDED moves the task on and records where its map output is', () => {
    const { c } = twoWorkersRunningJob()
    const out = c.report('j1:0:0#0', 100, { sizes: [3, 4] })
    expect(c.task(0, 0)).toMatchObject({ state: 'SUCCEEDED', current: null })
    expect(c.task(0, 0).output).toEqual({
      worker: W('w1'), address: addr('w1'), attempt: A('j1:0:0#0'), sizes: new Map([['counts', [3, 4]]]), atMs: 100,
    })
    expect(c.s.attempts.get(A('j1:0:0#0'))).toMatchObject({ state: 'SUCCEEDED', finishedMs: 100, metrics: { records_in: 10 } })
    expect(c.worker('w1').running.size).toBe(0)
    expect(out.changes).toContainEqual(expect.objectContaining({ kind: 'attempt' }))
    expect(c.job().stages[0]!.state).toBe('RUNNING')   // p1 still runs
  })

  test('the reduce launch lists map outputs, skipping those with nothing for its partition', () => {
    const { c, out } = reduceRunning()
    expect(placed(out)).toEqual(['j1:1:0#0@w1', 'j1:1:1#0@w2'])
    const [r0, r1] = launches(out) as [Launch, Launch]
    expect(r0.spec.split).toBeNull()
    expect(r0.spec.shuffle_inputs).toEqual([{
      shuffle_id: 'counts',
      map_outputs: [
        { map_partition: 0, attempt_id: 'j1:0:0#0', worker_id: 'w1', address: addr('w1'), bytes: 3 },
        { map_partition: 1, attempt_id: 'j1:0:1#0', worker_id: 'w2', address: addr('w2'), bytes: 5 },
      ],
    }])
    // p1 wrote 0 bytes for reduce partition 1: the reduce task does not ask w2 for it.
    expect(r1.spec.shuffle_inputs).toEqual([{
      shuffle_id: 'counts',
      map_outputs: [{ map_partition: 0, attempt_id: 'j1:0:0#0', worker_id: 'w1', address: addr('w1'), bytes: 4 }],
    }])
    expect(c.job().stages[0]!.state).toBe('SUCCEEDED')
  })

  test('stale reports change nothing: a duplicate, a superseded attempt, a wrong incarnation', () => {
    const { c } = twoWorkersRunningJob()
    // duplicate delivery of a success
    c.report('j1:0:0#0', 100)
    const late = c.reportOf('j1:0:0#0', { failure: udfError() })
    const dup = c.post({ kind: 'task-reported', nowMs: 110, report: late })
    expect(dup.actions).toEqual([])
    expect(dup.changes).toEqual([])
    expect(c.task(0, 0)).toMatchObject({ state: 'SUCCEEDED', failures: 0 })

    // the launch of p1#0 was reported as failed, so p1 was relaunched as #1 ...
    const relaunch = c.post({ kind: 'launch-failed', nowMs: 120, attempt: A('j1:0:1#0'), message: 'timeout', unreachable: false })
    expect(placed(relaunch)).toEqual(['j1:0:1#1@w1'])
    expect(c.s.attempts.get(A('j1:0:1#0'))?.state).toBe('LOST')
    // ... but the worker did run #0: its late success must not move p1 on.
    const stale = c.post({ kind: 'task-reported', nowMs: 130, report: { ...c.reportOf('j1:0:1#1'), attempt_id: 'j1:0:1#0', worker_id: 'w2', incarnation: c.worker('w2').incarnation } })
    expect(stale.actions).toEqual([])
    expect(stale.changes).toEqual([])
    expect(c.task(0, 1)).toMatchObject({ state: 'RUNNING', current: 'j1:0:1#1', output: null })
    expect(c.s.attempts.get(A('j1:0:1#0'))?.state).toBe('LOST')

    // a report claiming another incarnation of the worker is not believed
    const wrong = c.report('j1:0:1#1', 140, { incarnation: 'not-the-current-one' })
    expect(wrong.actions).toEqual([])
    expect(wrong.changes).toEqual([])
    expect(c.task(0, 1).state).toBe('RUNNING')
    expect(c.s.attempts.get(A('j1:0:1#1'))?.state).toBe('RUNNING')

    // an attempt the master never heard of
    const unknown = c.post({ kind: 'task-reported', nowMs: 150, report: { ...c.reportOf('j1:0:1#1'), attempt_id: 'j1:0:1#9' } })
    expect(unknown).toMatchObject({ actions: [], changes: [] })
  })

  test('a udf-error counts toward max_task_attempts; at the limit the job FAILS naming node, message and record', () => {
    const { c } = twoWorkersRunningJob({ maxAttempts: 2 })
    const retry = c.report('j1:0:0#0', 100, { failure: udfError('x is not defined') })
    expect(c.task(0, 0).failures).toBe(1)
    expect(c.s.attempts.get(A('j1:0:0#0'))).toMatchObject({ state: 'FAILED', error: 'x is not defined' })
    expect(placed(retry)).toEqual(['j1:0:0#1@w2'])   // retried at once, on another worker than the one it failed on

    const end = c.report('j1:0:0#1', 200, { failure: udfError('x is not defined') })
    const job = c.job()
    expect(job.state).toBe('FAILED')
    expect(job.finishedMs).toBe(200)
    expect(job.error).toEqual({ message: 'x is not defined', node_id: 'pairs', task_id: 'j1:0:0', record: '"bad line"' })
    // p1 still ran on w2: it is stopped; both workers drop the job's blocks.
    expect(ofKind(end, 'kill')).toEqual([{ kind: 'kill', address: addr('w2'), attempt: A('j1:0:1#0') }])
    expect(ofKind(end, 'drop-job-data').map(a => a.address).sort()).toEqual([addr('w1'), addr('w2')])
    expect(launches(end)).toEqual([])
    expect(job.stages.map(s => s.state)).toEqual(['FAILED', 'FAILED'])
    expect(job.stages[0]!.finalCounts).toEqual({ total: 2, pending: 1, running: 0, succeeded: 0, failed: 1 })   // the killed task ran to no end
  })

  test('other task errors count too; max_task_attempts defaults to 4', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 1 })
    c.submit(makeJob({ files: [10] }))
    for (let i = 0; i < 3; i++) {
      const out = c.report(`j1:0:0#${i}`, 10 * (i + 1), { failure: { reason: 'task-error', message: 'disk full' } })
      expect(placed(out)).toEqual([`j1:0:0#${i + 1}@w1`])
    }
    c.report('j1:0:0#3', 40, { failure: { reason: 'task-error', message: 'disk full' } })
    expect(c.job().state).toBe('FAILED')
    expect(c.job().error).toEqual({ message: 'disk full', node_id: null, task_id: 'j1:0:0', record: null })
  })

  test('fetch-failed does not count; the map outputs on that worker are recomputed first', () => {
    const { c } = reduceRunning({ maxAttempts: 1 })
    // r1 (on w2) could not fetch p0's block from w1.
    const out = c.report('j1:1:1#0', 300, { failure: fetchFailed('w1') })
    expect(c.job().state).toBe('RUNNING')
    expect(c.task(1, 1)).toMatchObject({ state: 'PENDING', failures: 0 })
    expect(c.s.attempts.get(A('j1:1:1#0'))?.state).toBe('FAILED')
    // p0's output on w1 is forgotten and recomputed; r1 waits for it.
    expect(c.task(0, 0).output).toBeNull()
    expect(c.task(0, 1).state).toBe('SUCCEEDED')      // p1's output is on w2, still good
    expect(c.job().stages[0]!.state).toBe('RUNNING')
    expect(launches(out).map(l => l.spec.task_id)).toEqual([T('j1:0:0')])

    const p0 = launches(out)[0]!
    const again = c.report(p0.spec.attempt_id, 400, { sizes: [3, 4] })
    const r1 = launches(again)
    expect(r1.map(l => l.spec.attempt_id)).toEqual(['j1:1:1#1'])
    expect(r1[0]!.spec.shuffle_inputs[0]!.map_outputs).toEqual([
      { map_partition: 0, attempt_id: p0.spec.attempt_id, worker_id: p0.worker, address: p0.address, bytes: 4 },
    ])
    // a second fetch failure still does not fail a job allowed one attempt per task
    c.report('j1:1:1#1', 500, { failure: fetchFailed('w2') })
    expect(c.job().state).toBe('RUNNING')
  })
})

describe('leases', () => {
  test('alive up to the timeout, DEAD strictly after it', () => {
    const c = new Cluster(10_000)
    c.heartbeat('w1', 0)
    c.heartbeat('w2', 5_000)
    expect(c.leaseCheck(9_900)).toEqual({ state: c.s, actions: [], changes: [] })
    expect(c.leaseCheck(10_000).changes).toEqual([])      // exactly the timeout: still alive
    expect(c.worker('w1').status).toBe('IDLE')
    const out = c.leaseCheck(10_100)
    expect(c.worker('w1').status).toBe('DEAD')
    expect(c.worker('w2').status).toBe('IDLE')
    expect(out.changes).toEqual([{ kind: 'worker', worker: W('w1') }])
    c.leaseCheck(20_000)                                   // a DEAD worker is not lost twice
    expect(c.worker('w1').status).toBe('DEAD')
  })

  test('a DEAD worker\'s running attempts become LOST and leave its running set', () => {
    const { c } = twoWorkersRunningJob()
    c.heartbeat('w2', 9_000)
    const out = c.leaseCheck(10_100)
    expect(c.worker('w1').status).toBe('DEAD')
    expect(c.worker('w1').running.size).toBe(0)
    expect(c.s.attempts.get(A('j1:0:0#0'))).toMatchObject({ state: 'LOST', finishedMs: 10_100, error: 'worker w1 lost (no heartbeat for 10000 ms)' })
    expect(ofKind(out, 'kill')).toEqual([])                // nobody to tell
    expect(c.s.attempts.get(A('j1:0:1#0'))?.state).toBe('RUNNING')
  })

  test('a DEAD worker\'s tasks are relaunched on another live worker in the same step', () => {
    const { c } = twoWorkersRunningJob()
    c.heartbeat('w2', 9_000)
    expect(launches(c.leaseCheck(9_900))).toEqual([])
    const out = c.leaseCheck(10_100)                       // assertInvariants runs here
    expect(c.s.attempts.get(A('j1:0:0#0'))?.state).toBe('LOST')
    expect(placed(out)).toEqual(['j1:0:0#1@w2'])
    expect(c.task(0, 0)).toMatchObject({ state: 'RUNNING', current: 'j1:0:0#1', failures: 0 })
  })

  test('a restarted worker\'s old tasks are relaunched', () => {
    const { c } = twoWorkersRunningJob({ slots: 1 })
    const out = c.heartbeat('w1', 1_000, { incarnation: '' })
    expect(c.s.attempts.get(A('j1:0:0#0'))?.state).toBe('LOST')
    expect(placed(out)).toEqual(['j1:0:0#1@w1'])
  })

  test('map outputs a DEAD worker held that a running stage still needs are recomputed', () => {
    const { c } = reduceRunning({ slots: 4 })
    c.report('j1:1:0#0', 300)                              // r0 done on w1: w1 runs nothing now
    c.heartbeat('w2', 9_000)
    const out = c.leaseCheck(10_100)
    expect(c.worker('w1').status).toBe('DEAD')
    // p0's output was on w1 and r1 (still running) needs it: p0 runs again, on w2, at once.
    expect(placed(out)).toEqual(['j1:0:0#1@w2'])
    expect(c.task(0, 1)).toMatchObject({ state: 'SUCCEEDED', output: { worker: 'w2' } })
    expect(c.job().stages.map(s => s.state)).toEqual(['RUNNING', 'RUNNING'])
    expect(c.task(1, 0).state).toBe('SUCCEEDED')           // a reduce output is not re-run
  })

  test('map outputs no unfinished stage needs are left alone', () => {
    const { c } = reduceRunning({ slots: 4 })
    c.report('j1:1:0#0', 300)
    c.report('j1:1:1#0', 310)                              // job done (collect only)
    expect(c.job().state).toBe('SUCCEEDED')
    c.heartbeat('w2', 9_000)
    const out = c.leaseCheck(10_100)
    expect(launches(out)).toEqual([])
  })
})

describe('output commit', () => {
  const writeJob = { sinks: [{ id: 'out', op: 'write_text', input: 'counts', path: 'out/wc' }] satisfies NodeSpec[], maxAttempts: 3 }

  test('the first attempt to ask commits; a stale attempt is refused; after a failure the next may', () => {
    const { c } = reduceRunning(writeJob)
    expect(c.commit('j1:1:0#0', 300)).toBe(true)
    expect(c.commit('j1:1:0#0', 301)).toBe(true)            // asking twice is harmless
    expect(c.task(1, 0).committer).toBe(A('j1:1:0#0'))

    // r0#0 fails after winning the commit (say, the rename failed): r0#1 runs and may commit.
    const retry = c.report('j1:1:0#0', 310, { failure: { reason: 'task-error', message: 'rename failed' } })
    expect(placed(retry)).toEqual(['j1:1:0#1@w2'])     // a re-run prefers another worker
    expect(c.commit('j1:1:0#1', 320)).toBe(true)
    // The old attempt, now FAILED, asking (again) is refused and does not take the commit back.
    expect(c.commit('j1:1:0#0', 330)).toBe(false)
    expect(c.task(1, 0).committer).toBe(A('j1:1:0#1'))
    // Nor may any attempt the master does not know.
    expect(c.commit('j1:1:0#7', 340)).toBe(false)
  })

  test('a LOST committer lets the next attempt commit (launch-failed path)', () => {
    const { c } = reduceRunning(writeJob)
    expect(c.commit('j1:1:1#0', 300)).toBe(true)
    const out = c.post({ kind: 'launch-failed', nowMs: 310, attempt: A('j1:1:1#0'), message: 'connection reset', unreachable: false })
    expect(launches(out).map(l => l.spec.attempt_id)).toEqual(['j1:1:1#1'])
    expect(c.commit('j1:1:1#1', 320)).toBe(true)
    expect(c.commit('j1:1:1#0', 330)).toBe(false)
  })

  // A stage with a write sink and a shuffle write: when its map output is lost, the re-run must be
  // allowed to commit its part again (the rename replaces the same part).
  test('a map task re-run after its output was lost may commit its write sink again', () => {
    const { c } = twoWorkersRunningJob({
      mapSinks: [{ id: 'raw', op: 'write_text', input: 'pairs', path: 'out/raw' }], slots: 4,
    })
    expect(c.commit('j1:0:0#0', 50)).toBe(true)
    c.report('j1:0:0#0', 100, { sizes: [3, 4] })
    c.report('j1:0:1#0', 200, { sizes: [5, 0] })           // reduce r0 on w1, r1 on w2
    c.report('j1:1:0#0', 300)
    const out = c.report('j1:1:1#0', 310, { failure: fetchFailed('w1') })
    expect(placed(out).some(p => p.startsWith('j1:0:0#1@'))).toBe(true)
    expect(c.commit('j1:0:0#1', 320)).toBe(true)
  })
})

describe('job end', () => {
  test('cancel kills running attempts and drops the job\'s data on every live worker', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 2 })
    c.heartbeat('w2', 0, { slots: 2 })
    c.heartbeat('w3', 0, { slots: 1, status: 'PAUSED' })
    c.submit(makeJob({ files: [1, 2, 3] }))
    c.report('j1:0:1#0', 10)
    const out = c.post({ kind: 'job-cancel-requested', nowMs: 20, job: J('j1') })
    expect(ofKind(out, 'kill')).toEqual([
      { kind: 'kill', address: addr('w1'), attempt: A('j1:0:0#0') },
      { kind: 'kill', address: addr('w1'), attempt: A('j1:0:2#0') },
    ])
    expect(ofKind(out, 'drop-job-data')).toEqual(['w1', 'w2', 'w3'].map(w => ({ kind: 'drop-job-data', address: addr(w), job: J('j1'), outputs: [], keepOutputs: false })))
    expect(launches(out)).toEqual([])
    expect(c.job()).toMatchObject({ state: 'CANCELLED', finishedMs: 20, error: null })
    expect(c.job().stages.map(s => s.state)).toEqual(['CANCELLED', 'CANCELLED'])
    expect(c.job().stages[0]!.finalCounts).toEqual({ total: 3, pending: 2, running: 0, succeeded: 1, failed: 0 })
    expect(c.worker('w1').running.size).toBe(0)
    expect([...c.s.attempts.keys()]).toEqual([])

    // The killed attempt's late report, and a second cancel, change nothing.
    const late = c.post({ kind: 'task-reported', nowMs: 30, report: {
      worker_id: 'w1', incarnation: c.worker('w1').incarnation, attempt_id: 'j1:0:0#0', state: 'SUCCEEDED',
      metrics: zeroMetrics(), shuffle_outputs: [], sinks: [],
    } })
    expect(late).toMatchObject({ actions: [], changes: [] })
    expect(c.post({ kind: 'job-cancel-requested', nowMs: 40, job: J('j1') })).toMatchObject({ actions: [], changes: [] })
    expect(c.job().finishedMs).toBe(20)
  })

  test('a DEAD worker gets no kill nor drop-job-data', () => {
    const { c } = twoWorkersRunningJob()
    c.report('j1:0:0#0', 100)                               // w1 runs nothing
    c.heartbeat('w2', 9_000)
    // p0's output was on w1 and stage 1 needs it: it is rerun on w2.
    expect(placed(c.leaseCheck(10_100))).toEqual(['j1:0:0#1@w2'])
    const out = c.post({ kind: 'job-cancel-requested', nowMs: 10_200, job: J('j1') })
    expect(out.actions).toEqual([
      { kind: 'kill', address: addr('w2'), attempt: A('j1:0:0#1') },
      { kind: 'kill', address: addr('w2'), attempt: A('j1:0:1#0') },
      { kind: 'drop-job-data', address: addr('w2'), job: J('j1'), outputs: [], keepOutputs: false },
    ])
  })

  test('cancelling a queued job with no worker', () => {
    const c = new Cluster()
    c.submit(makeJob())
    const out = c.post({ kind: 'job-cancel-requested', nowMs: 5, job: J('j1') })
    expect(out.actions).toEqual([])
    expect(c.job().state).toBe('CANCELLED')
  })

  test('with write outputs: finalize-output once, then output-finalized makes it SUCCEEDED with a result', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 2 })
    c.heartbeat('w2', 0, { slots: 2 })
    c.submit(makeJob({
      partitions: 3,
      sinks: [
        { id: 'out', op: 'write_text', input: 'counts', path: 'out/wc' },
        { id: 'all', op: 'collect', input: 'counts' },
        { id: 'n', op: 'count', input: 'counts' },
      ],
      mapSinks: [{ id: 'lines_n', op: 'count', input: 'lines' }],
    }))
    c.report('j1:0:0#0', 10, { sinks: [{ node_id: 'lines_n', op: 'count', records: 7 }] })
    const reduce = c.report('j1:0:1#0', 20, { sinks: [{ node_id: 'lines_n', op: 'count', records: 5 }] })
    expect(launches(reduce)).toHaveLength(3)
    const sinks = (values: unknown[]): SinkOutput[] => [
      { node_id: 'out', op: 'write_text', records: values.length },
      { node_id: 'all', op: 'collect', records: values.length, values },
      { node_id: 'n', op: 'count', records: values.length },
    ]
    // Reports arrive out of partition order.
    expect(c.report('j1:1:2#0', 30, { sinks: sinks([['z', 1]]) }).actions).toEqual([])
    expect(c.report('j1:1:0#0', 40, { sinks: sinks([['a', 2], ['b', 3]]) }).actions).toEqual([])
    const last = c.report('j1:1:1#0', 50, { sinks: sinks([]) })
    // Every live worker finalizes what its own disk holds, one after the other: its strays go,
    // and _SUCCESS names the parts it holds and the total.
    const on = (w: string): number[] => launches(reduce).filter(l => l.worker === W(w)).map(l => l.spec.partition).sort()
    const settle = (w: string): OutputSettle[] => [{ path: 'out/wc', dir: 'out/wc', keep: on(w).map(p => `part-0000${p}`), success: { parts: on(w), total: 3 } }]
    const ask = (w: string): MasterAction => ({ kind: 'finalize-output', address: addr(w), job: J('j1'), paths: [], swaps: [], settle: settle(w), worker: W(w), incarnation: c.worker(w).incarnation })
    expect(on('w1').length + on('w2').length).toBe(3)
    expect(on('w1').length).toBeGreaterThan(0)
    expect(last.actions).toEqual([ask('w1')])
    expect(c.job().state).toBe('RUNNING')

    // Another event before the answer does not ask twice.
    expect(c.heartbeat('w2', 60).actions).toEqual([])
    expect(c.post({ kind: 'output-finalized', nowMs: 65, job: J('j1'), worker: W('w1'), incarnation: c.worker('w1').incarnation }).actions).toEqual([ask('w2')])
    expect(c.job().state).toBe('RUNNING')

    const done = c.post({ kind: 'output-finalized', nowMs: 70, job: J('j1'), worker: W('w2'), incarnation: c.worker('w2').incarnation })
    expect(c.job()).toMatchObject({ state: 'SUCCEEDED', finishedMs: 70, error: null })
    expect(c.job().result).toEqual({
      sinks: {
        lines_n: { op: 'count', value: 12 },
        out: { op: 'write_text', path: 'out/wc', files: 3, records: 3 },
        all: { op: 'collect', values: [['a', 2], ['b', 3], ['z', 1]] },
        n: { op: 'count', value: 3 },
      },
    })
    expect(ofKind(done, 'drop-job-data')).toHaveLength(2)
    expect(c.job().stages.map(s => s.state)).toEqual(['SUCCEEDED', 'SUCCEEDED'])
    // A late finalize answer changes nothing.
    expect(c.post({ kind: 'output-finalized', nowMs: 80, job: J('j1'), worker: W('w1'), incarnation: c.worker('w1').incarnation })).toMatchObject({ actions: [], changes: [] })
  })

  test('without write outputs the job succeeds with the last task, collect values in partition order', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 4 })
    c.submit(makeJob({ sinks: [{ id: 'top', op: 'collect', input: 'counts', limit: 2 }] }))
    c.report('j1:0:0#0', 10)
    c.report('j1:0:1#0', 20)
    c.report('j1:1:1#0', 30, { sinks: [{ node_id: 'top', op: 'collect', records: 1, values: ['p1'] }] })
    const out = c.report('j1:1:0#0', 40, { sinks: [{ node_id: 'top', op: 'collect', records: 2, values: ['p0a', 'p0b'] }] })
    expect(ofKind(out, 'finalize-output')).toEqual([])
    expect(c.job().state).toBe('SUCCEEDED')
    expect(c.job().result).toEqual({ sinks: { top: { op: 'collect', values: ['p0a', 'p0b'] } } })   // limit 2
  })

  test('a finalize that fails with an answer is asked again of the same worker, and fails the job the third time', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 4 })
    c.heartbeat('w2', 0, { slots: 4 })
    c.submit(makeJob({ files: [5], partitions: 1, sinks: [{ id: 'out', op: 'write_jsonl', input: 'counts', path: 'o' }] }))
    c.report('j1:0:0#0', 10)
    const asks = ofKind(c.report('j1:1:0#0', 20), 'finalize-output')
    expect(asks.map(a => a.worker)).toEqual([W('w1')])
    expect(ofKind(c.post({ kind: 'output-finalized', nowMs: 25, job: J('j1'), worker: W('w1'), incarnation: c.worker('w1').incarnation }), 'finalize-output').map(a => a.worker)).toEqual([W('w2')])
    const inc = c.worker('w2').incarnation
    const again = ofKind(c.post({ kind: 'finalize-failed', nowMs: 30, job: J('j1'), message: 'EACCES', worker: W('w2'), incarnation: inc }), 'finalize-output')
    expect(again.map(a => a.worker)).toEqual([W('w2')])
    expect(c.job().state).toBe('RUNNING')
    c.post({ kind: 'finalize-failed', nowMs: 31, job: J('j1'), message: 'EACCES', worker: W('w2'), incarnation: inc })
    c.post({ kind: 'finalize-failed', nowMs: 32, job: J('j1'), message: 'EACCES', worker: W('w2'), incarnation: inc })
    expect(c.job().state).toBe('FAILED')
    expect(c.job().error?.message).toContain('EACCES')
  })

  test('a worker that refuses the finalize is lost at once and no longer holds the job up; not counted', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 4 })
    c.heartbeat('w2', 0, { slots: 4 })
    c.heartbeat('w3', 0, { slots: 4 })
    c.submit(makeJob({ files: [5], partitions: 1, sinks: [{ id: 'out', op: 'write_jsonl', input: 'counts', path: 'o' }] }))
    c.report('j1:0:0#0', 10)
    let asks = ofKind(c.report('j1:1:0#0', 20), 'finalize-output')
    // Two refuse (they died): the next is asked at once, and the job waits only for the third.
    for (const w of ['w1', 'w2']) {
      expect(asks.map(a => a.worker)).toEqual([W(w)])
      asks = ofKind(c.post({ kind: 'finalize-failed', nowMs: 30, job: J('j1'), message: 'ECONNREFUSED', worker: asks[0]!.worker, incarnation: asks[0]!.incarnation, unreachable: true }), 'finalize-output')
      expect(c.worker(w).status).toBe('DEAD')
    }
    expect(asks.map(a => a.worker)).toEqual([W('w3')])
    expect(c.job().state).toBe('RUNNING')
    c.post({ kind: 'output-finalized', nowMs: 50, job: J('j1'), worker: asks[0]!.worker, incarnation: asks[0]!.incarnation })
    expect(c.job().state).toBe('SUCCEEDED')
  })

  test('when every worker asked to finalize is lost, the live ones are asked once they are back', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 4 })
    c.submit(makeJob({ files: [5], partitions: 1, sinks: [{ id: 'out', op: 'write_jsonl', input: 'counts', path: 'o' }] }))
    c.report('j1:0:0#0', 10)
    const [ask] = ofKind(c.report('j1:1:0#0', 20), 'finalize-output')
    expect(ofKind(c.post({ kind: 'finalize-failed', nowMs: 30, job: J('j1'), message: 'ECONNREFUSED', worker: ask!.worker, incarnation: ask!.incarnation, unreachable: true }), 'finalize-output')).toEqual([])
    const back = ofKind(c.heartbeat('w1', 40, { incarnation: null }), 'finalize-output')
    expect(back).toHaveLength(1)
    c.post({ kind: 'output-finalized', nowMs: 50, job: J('j1'), worker: back[0]!.worker, incarnation: back[0]!.incarnation })
    expect(c.job().state).toBe('SUCCEEDED')
  })

  test('jobs are served in submission order', () => {
    const c = new Cluster()
    c.submit(makeJob({ id: 'j1', files: [1, 2] }))
    c.submit(makeJob({ id: 'j2', seq: 2, files: [1, 2] }))
    const out = c.heartbeat('w1', 10, { slots: 3 })
    expect(placed(out)).toEqual(['j1:0:0#0@w1', 'j1:0:1#0@w1', 'j2:0:0#0@w1'])
  })
})

describe('fault tolerance', () => {
  test('a launch the worker refuses (connection refused) makes it DEAD at once and the task runs elsewhere', () => {
    const { c } = twoWorkersRunningJob({ slots: 1 })
    const out = c.post({ kind: 'launch-failed', nowMs: 50, attempt: A('j1:0:0#0'), message: 'ECONNREFUSED', unreachable: true })
    expect(c.worker('w1').status).toBe('DEAD')
    expect(c.s.attempts.get(A('j1:0:0#0'))?.state).toBe('LOST')
    // w2 is busy with p1 (one slot): p0 waits for it, and runs there once p1 is done.
    expect(launches(out)).toEqual([])
    expect(placed(c.report('j1:0:1#0', 60))).toEqual(['j1:0:0#1@w2'])
  })

  test('a fetch from a peer that refuses connections declares it DEAD without waiting for the lease', () => {
    const { c } = reduceRunning({ slots: 4 })
    const out = c.report('j1:1:1#0', 300, { failure: { ...fetchFailed('w1'), unreachable: true } })
    expect(c.worker('w1').status).toBe('DEAD')
    expect(c.s.attempts.get(A('j1:1:0#0'))?.state).toBe('LOST')    // r0 ran on w1
    expect(c.task(1, 1).failures).toBe(0)
    expect(placed(out)).toEqual(['j1:0:0#1@w2'])                    // p0's output was on w1
  })

  test('a heartbeat that no longer lists an attempt (after the launch grace) loses it; a recent launch is spared', () => {
    const { c } = twoWorkersRunningJob({ slots: 2 })
    c.post({ kind: 'heartbeat-received', nowMs: 1_000, hb: { ...hbOf(c, 'w1'), running: [] } })
    expect(c.s.attempts.get(A('j1:0:0#0'))?.state).toBe('RUNNING')   // launched at 0: may still be on its way
    c.post({ kind: 'heartbeat-received', nowMs: LAUNCH_GRACE_MS - 1, hb: { ...hbOf(c, 'w1'), running: [] } })
    expect(c.s.attempts.get(A('j1:0:0#0'))?.state).toBe('RUNNING')   // a launch may take up to two request timeouts
    const out = c.post({ kind: 'heartbeat-received', nowMs: LAUNCH_GRACE_MS, hb: { ...hbOf(c, 'w1'), running: [] } })
    expect(c.s.attempts.get(A('j1:0:0#0'))?.state).toBe('LOST')
    expect(c.task(0, 0).failures).toBe(0)
    expect(placed(out)).toEqual(['j1:0:0#1@w1'])
    // listed attempts are left alone
    c.post({ kind: 'heartbeat-received', nowMs: 20_000, hb: { ...hbOf(c, 'w2'), running: ['j1:0:1#0'] } })
    expect(c.s.attempts.get(A('j1:0:1#0'))?.state).toBe('RUNNING')
  })

  test('a failed or cancelled job asks workers to remove its outputs; a successful one keeps them', () => {
    const { c } = twoWorkersRunningJob({ sinks: [{ id: 'out', op: 'write_text', input: 'counts', path: 'out/wc' }] })
    const out = c.post({ kind: 'job-cancel-requested', nowMs: 10, job: J('j1') })
    expect(ofKind(out, 'drop-job-data').map(a => [a.outputs, a.keepOutputs])).toEqual([[['out/wc'], false], [['out/wc'], false]])
  })
})

describe('recovery from the store', () => {
  test('a restarted master resumes: succeeded tasks keep their outputs, running attempts stay running, lost ones run again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-recovery-'))
    try {
      const store = new Store(join(dir, 'm.db'))
      const c = new Cluster()
      const persist = (out: Step): void => {
        const attempts = out.changes.flatMap(ch => ch.kind === 'attempt' ? [ch.attempt] : [])
        const created = out.changes.flatMap(ch => ch.kind === 'job-created' ? [c.s.jobs.get(ch.job)!] : [])
        const jobs = out.changes.flatMap(ch => ch.kind === 'job' && c.s.jobs.has(ch.job) ? [{ job: c.s.jobs.get(ch.job)!, status: '{}' }] : [])
        store.commit(created, jobs, attempts, [...c.s.workers.values()])
      }
      persist(c.heartbeat('w1', 0, { slots: 2 }))
      persist(c.heartbeat('w2', 0, { slots: 2 }))
      persist(c.submit(makeJob(), 0))
      persist(c.report('j1:0:0#0', 100, { sizes: [3, 4] }))       // p0 done on w1; p1 still running on w2
      expect(c.commit('j1:0:1#0', 150)).toBe(true)
      persist(c.post({ kind: 'lease-check-due', nowMs: 160 }))
      store.close()

      const again = new Store(join(dir, 'm.db'))
      const s = recoverState(again, 50_000, 10_000)
      const job = s.jobs.get(J('j1'))!
      expect(job.state).toBe('RUNNING')
      expect(job.stages[0]!.tasks[0]).toMatchObject({ state: 'SUCCEEDED', output: { worker: 'w1', attempt: 'j1:0:0#0' } })
      expect(job.stages[0]!.tasks[0]!.output!.sizes.get('counts')).toEqual([3, 4])
      expect(job.stages[0]!.tasks[1]).toMatchObject({ state: 'RUNNING', current: 'j1:0:1#0', attempts: 1 })
      expect(s.workers.get(W('w2'))!.running.has(A('j1:0:1#0'))).toBe(true)
      expect(s.workers.get(W('w2'))!.lastSeenMs).toBe(50_000)            // a full timeout to come back
      // The running attempt's report, arriving after the restart, is taken.
      const out = step(s, { kind: 'task-reported', nowMs: 50_100, report: { ...c.reportOf('j1:0:1#0'), incarnation: s.workers.get(W('w2'))!.incarnation } })
      expect(job.stages[0]!.state).toBe('SUCCEEDED')
      expect(launches(out).map(l => l.spec.stage_id)).toEqual([1, 1])
      // A worker that never comes back is declared DEAD after the timeout, and its outputs recomputed.
      const w2 = s.workers.get(W('w2'))!
      step(s, { kind: 'heartbeat-received', nowMs: 59_000, hb: { worker_id: 'w2', address: w2.address, status: 'BUSY', active_tasks: w2.running.size, mem_usage_mb: 1, last_heartbeat: 59, slots: 2, incarnation: w2.incarnation } })
      const later = step(s, { kind: 'lease-check-due', nowMs: 60_001 })
      expect(s.workers.get(W('w1'))!.status).toBe('DEAD')
      expect(launches(later).some(l => l.spec.task_id === 'j1:0:0')).toBe(true)
      again.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

function hbOf(c: Cluster, id: string): Heartbeat {
  const w = c.worker(id)
  return { worker_id: id, address: addr(id), status: 'BUSY', active_tasks: w.running.size, mem_usage_mb: 64, last_heartbeat: 0, slots: w.slots, incarnation: w.incarnation }
}

// ---- bounds: every retry ends ------------------------------------------------------------------

describe('bounds on retries that are not the task\'s fault', () => {
  const refusedLaunch = (c: Cluster, attempt: string, nowMs: number, o: { permanent?: boolean } = {}): Step =>
    c.post({ kind: 'launch-failed', nowMs, attempt: A(attempt), message: 'worker answered 503', unreachable: false, ...o })

  test('a launch that keeps failing is retried uncounted, then fails the job saying why', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 1 })
    c.submit(makeJob({ files: [5], partitions: 1 }))
    for (let i = 0; i < 7; i++) {
      const out = refusedLaunch(c, `j1:0:0#${i}`, 10 + i)
      expect(c.job().state).toBe('RUNNING')
      expect(c.task(0, 0).failures).toBe(0)
      expect(placed(out)).toEqual([`j1:0:0#${i + 1}@w1`])
    }
    refusedLaunch(c, 'j1:0:0#7', 20)
    expect(c.job().state).toBe('FAILED')
    expect(c.job().error?.message).toContain('8 times in a row')
    expect(c.job().error?.message).toContain('worker answered 503')
    expect(c.job().error?.task_id).toBe('j1:0:0')
  })

  test('a worker that refuses every launch and rejoins each time: each loss costs one retry, and the job fails after the bound', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 1 })
    c.submit(makeJob({ files: [5], partitions: 1 }))
    for (let i = 0; i < 7; i++) {
      // Refused connection: the worker is lost at once (one loss), the task runs again when it is back.
      c.post({ kind: 'launch-failed', nowMs: 10 + 2 * i, attempt: A(`j1:0:0#${i}`), message: 'ECONNREFUSED', unreachable: true })
      expect(c.job().state).toBe('RUNNING')
      expect(c.task(0, 0).lostRuns).toBe(i + 1)
      c.heartbeat('w1', 11 + 2 * i, { slots: 1 })
    }
    c.post({ kind: 'launch-failed', nowMs: 30, attempt: A('j1:0:0#7'), message: 'ECONNREFUSED', unreachable: true })
    expect(c.job().state).toBe('FAILED')
    expect(c.job().error?.message).toContain('8 times in a row')
  })

  test('a success in between starts the count again', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 1 })
    c.submit(makeJob({ files: [5, 5], partitions: 1 }))
    for (let i = 0; i < 7; i++) refusedLaunch(c, `j1:0:0#${i}`, 10 + i)
    c.report('j1:0:0#7', 20)
    // p1 is a different task: its own count; then the reduce task.
    for (let i = 0; i < 7; i++) refusedLaunch(c, `j1:0:1#${i}`, 30 + i)
    c.report('j1:0:1#7', 40)
    expect(c.job().state).toBe('RUNNING')
  })

  test('a launch refused with 400/413/422 fails the job at once: every worker would refuse that spec', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 1 })
    c.heartbeat('w2', 0, { slots: 1 })
    c.submit(makeJob({ files: [5], partitions: 1 }))
    const out = c.post({ kind: 'launch-failed', nowMs: 10, attempt: A('j1:0:0#0'), message: 'worker w1 answered 413: body too large', unreachable: false, permanent: true })
    expect(launches(out)).toEqual([])
    expect(c.job().state).toBe('FAILED')
    expect(c.job().error?.message).toContain('413')
    expect(c.job().error?.message).toContain('j1:0:0')
  })

  test('an attempt the worker keeps not running (reconcile) is LOST a bounded number of times', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 1 })
    c.submit(makeJob({ files: [5], partitions: 1 }))
    let now = 0
    for (let i = 0; i < 8; i++) {
      now += LAUNCH_GRACE_MS
      c.post({ kind: 'heartbeat-received', nowMs: now, hb: { ...hbOf(c, 'w1'), running: [] } })
    }
    expect(c.job().state).toBe('FAILED')
    expect(c.job().error?.message).toContain('no longer runs it')
  })

  test('a launch may take two request timeouts: reconcile spares it that long (no zombie re-run)', () => {
    const { c } = twoWorkersRunningJob({ slots: 2 })
    c.post({ kind: 'heartbeat-received', nowMs: 2 * LAUNCH_TIMEOUT_MS, hb: { ...hbOf(c, 'w1'), running: [] } })
    expect(c.s.attempts.get(A('j1:0:0#0'))?.state).toBe('RUNNING')
    expect(LAUNCH_GRACE_MS).toBeGreaterThan(2 * LAUNCH_TIMEOUT_MS)
  })

  test('"interrupted" (could not reach the master to commit) and "killed" are not counted, and are bounded', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 1 })
    c.submit(makeJob({ files: [5], partitions: 1, maxAttempts: 1 }))
    const out = c.report('j1:0:0#0', 10, { failure: { reason: 'interrupted', message: 'master unreachable at commit' } })
    expect(c.task(0, 0).failures).toBe(0)
    expect(c.job().state).toBe('RUNNING')
    expect(placed(out)).toEqual(['j1:0:0#1@w1'])
    for (let i = 1; i < 8; i++) c.report(`j1:0:0#${i}`, 10 + i, { failure: { reason: i % 2 ? 'killed' : 'interrupted', message: 'again' } })
    expect(c.job().state).toBe('FAILED')
  })

  test('fetch failures: 4 rounds in a row that re-plan map outputs fail the job; a success of the stage resets it', () => {
    const { c } = reduceRunning({ slots: 4 })
    const round = (i: number, r: 0 | 1, from: string): void => {
      const attempt = c.task(1, r).current!
      c.report(attempt, 1_000 * i, { failure: fetchFailed(from) })
      if (c.job().state !== 'RUNNING') return
      // The map output that was on `from` runs again; report it there again.
      for (const p of [0, 1]) {
        const cur = c.task(0, p).current
        if (cur !== null) c.report(cur, 1_000 * i + 10, { sizes: p === 0 ? [3, 4] : [5, 0] })
      }
    }
    round(1, 0, 'w1')
    round(2, 0, 'w1')
    round(3, 0, 'w1')
    expect(c.job().state).toBe('RUNNING')
    expect(c.task(1, 0).failures).toBe(0)
    // r1 succeeds: the stage made progress.
    c.report(c.task(1, 1).current!, 3_500)
    round(4, 0, 'w1')
    round(5, 0, 'w1')
    round(6, 0, 'w1')
    expect(c.job().state).toBe('RUNNING')
    round(7, 0, 'w1')
    expect(c.job().state).toBe('FAILED')
    expect(c.job().error?.message).toContain('4 times in a row')
    expect(c.job().error?.message).toContain('fetching from worker w1')
  })

  test('a late fetch failure about an old incarnation does not kill the worker that rejoined, nor its new outputs', () => {
    const { c } = reduceRunning({ slots: 4 })       // r0 on w1, r1 on w2; map p0 on w1, p1 on w2
    // w1 restarts: a new incarnation; p0 (its output) runs again and succeeds on w1's new incarnation.
    c.heartbeat('w1', 1_000, { incarnation: '' })
    const inc = c.worker('w1').incarnation
    const p0 = c.task(0, 0).current!
    c.report(p0, 1_100, { sizes: [3, 4] })
    expect(c.task(0, 0).output?.worker).toBe(W('w1'))
    // r1 on w2 was told of w1's old incarnation: its failure to fetch arrives late.
    c.report('j1:1:1#0', 1_200, { failure: { ...fetchFailed('w1'), unreachable: true } })
    expect(c.worker('w1')).toMatchObject({ status: 'IDLE', incarnation: inc })
    expect(c.task(0, 0).state).toBe('SUCCEEDED')
    expect(c.task(1, 1).failures).toBe(0)
  })

  test('a worker lost: attempts elsewhere that read its map outputs stop (uncounted) and wait for the re-run maps', () => {
    const { c } = reduceRunning({ slots: 4 })       // r0 on w1, r1 on w2; p0's output on w1 has data for r0 and r1
    c.heartbeat('w2', 9_000)
    const out = c.leaseCheck(10_001)                // w1 DEAD
    expect(c.worker('w1').status).toBe('DEAD')
    // r1 ran on w2 and read p0's block from w1: stopped, its slot freed, not counted.
    expect(c.s.attempts.get(A('j1:1:1#0'))?.state).toBe('LOST')
    expect(ofKind(out, 'kill')).toEqual([{ kind: 'kill', address: addr('w2'), attempt: A('j1:1:1#0') }])
    expect(c.worker('w2').running.has(A('j1:1:1#0'))).toBe(false)
    expect(c.task(1, 1)).toMatchObject({ state: 'PENDING', failures: 0 })
    // p0 runs again first (on w2); no reduce is launched before it is done.
    expect(placed(out)).toEqual(['j1:0:0#1@w2'])
  })

  test('a reduce attempt that reads nothing from the lost worker keeps running', () => {
    const { c } = twoWorkersRunningJob({ slots: 4 })
    c.report('j1:0:0#0', 100, { sizes: [3, 0] })   // p0 on w1: nothing for r1
    c.report('j1:0:1#0', 200, { sizes: [5, 6] })
    const r1 = c.task(1, 1).current!
    expect(c.s.attempts.get(r1)?.worker).toBe(W('w2'))
    c.heartbeat('w2', 9_000)
    c.leaseCheck(10_001)
    expect(c.s.attempts.get(r1)?.state).toBe('RUNNING')
  })

  test('collect is counted as reports arrive: past 64 MiB the job fails at that report, not at the end', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 4 })
    c.submit(makeJob({ files: [5], partitions: 3, sinks: [{ id: 'all', op: 'collect', input: 'counts' }] }))
    c.report('j1:0:0#0', 10)
    const big = 'é'.repeat(17 * 1024 * 1024)       // 17 Mi characters, 34 MiB of UTF-8
    c.report('j1:1:0#0', 20, { sinks: [{ node_id: 'all', op: 'collect', records: 1, values: [big] }] })
    expect(c.job().state).toBe('RUNNING')
    c.report('j1:1:1#0', 30, { sinks: [{ node_id: 'all', op: 'collect', records: 1, values: [big] }] })
    expect(c.job().state).toBe('FAILED')            // r2 has not reported
    expect(c.job().error).toMatchObject({ node_id: 'all' })
    expect(c.job().error?.message).toContain('64 MiB')
  })
})

describe('limits at submit', () => {
  const request = (o: { splitBytes?: number; partitions?: number; nodePartitions?: number; params?: Record<string, unknown> }): JobRequest => ({
    nodes: [
      { id: 'lines', op: 'read_text', path: 'in.txt' },
      { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', ...(o.nodePartitions === undefined ? {} : { partitions: o.nodePartitions }) },
      { id: 'all', op: 'collect', input: 'counts' },
    ],
    ...(o.splitBytes === undefined ? {} : { split_bytes: o.splitBytes }),
    ...(o.partitions === undefined ? {} : { partitions: o.partitions }),
    ...(o.params === undefined ? {} : { params: o.params }),
  })
  const build = (req: JobRequest, size = 800_000): JobRun => buildJobRun({
    id: J('j1'), seq: 1, request: req, valid: validateJob(req, SUPPORTED_OPS),
    listing: { inputs: [{ node_id: 'lines', files: [{ path: 'in.txt', size }] }] }, defaultPartitions: 4, nowMs: 0,
  })
  const refusal = (f: () => unknown): { code: string; message: string } => {
    try { f() } catch (e) { return { code: (e as { code: string }).code, message: (e as Error).message } }
    throw new Error('not refused')
  }

  test('split_bytes: 1 on 800 KB is refused at once, saying which setting to raise', () => {
    const t0 = performance.now()
    const r = refusal(() => build(request({ splitBytes: 1 })))
    expect(performance.now() - t0).toBeLessThan(200)
    expect(r.code).toBe('INVALID_JOB')
    expect(r.message).toContain('800000 splits')
    expect(r.message).toContain('split_bytes')
    expect(build(request({ splitBytes: 16 })).stages[0]!.tasks).toHaveLength(50_000)
  })

  test('more than 10 000 partitions for a wide op, or as the job default, are refused', () => {
    expect(refusal(() => build(request({ nodePartitions: 10_001 }))).message).toContain('node "counts"')
    expect(refusal(() => build(request({ partitions: 100_000 }))).message).toContain('"partitions": 100000')
    expect(build(request({ nodePartitions: 10_000 })).stages[1]!.tasks).toHaveLength(10_000)
  })

  test('a job whose task specs would pass the worker\'s 16 MiB body limit is refused, naming why', () => {
    const r = refusal(() => build(request({ params: { blob: 'x'.repeat(16 * 1024 * 1024 - 1000) } })))
    expect(r.code).toBe('INVALID_JOB')
    expect(r.message).toContain('"params"')
    // Many map outputs in every reduce task's spec: 100 000 splits, one reduce stage.
    const many = refusal(() => build(request({ splitBytes: 100 }), 10_000_000))
    expect(many.message).toContain('map outputs')
  })
})

describe('overwrite: the previous output stays whole until the new one is complete', () => {
  const overwriting = (o: { id?: string; files?: number[] } = {}): JobRun =>
    makeJob({ id: o.id ?? 'j1', files: o.files ?? [5], partitions: 1, sinks: [{ id: 'out', op: 'write_text', input: 'counts', path: 'out/wc', overwrite: true }] })

  test('parts are committed aside; a FAILED or cancelled job drops only those, never the previous output', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 2 })
    c.heartbeat('w2', 0, { slots: 2 })
    c.submit(overwriting())
    const reduce = c.report('j1:0:0#0', 10)
    const sink = launches(reduce)[0]!.spec.stage.nodes.find(n => n.id === 'out')!
    expect(sink.path).toBe('out/wc/_temporary/j1')
    c.report('j1:1:0#0', 20, { failure: { reason: 'fatal', message: 'disk full' } })
    expect(c.job().state).toBe('FAILED')
    const drops = ofKind(c.post({ kind: 'lease-check-due', nowMs: 21 }), 'drop-job-data')
    expect(drops).toEqual([])   // sent with the failure, above
  })

  test('the drop of a failed overwrite names only the staged parts', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 2 })
    c.submit(overwriting())
    const out = c.report('j1:0:0#0', 10, { failure: { reason: 'fatal', message: 'bad' } })
    expect(ofKind(out, 'drop-job-data').map(d => [d.outputs, d.keepOutputs])).toEqual([[['out/wc/_temporary/j1'], false]])
  })

  test('finalize asks every live worker to swap, with the age of the job; the result names the real path', () => {
    const c = new Cluster()
    c.heartbeat('w1', 0, { slots: 2 })
    c.heartbeat('w2', 0, { slots: 2 })
    const job = overwriting()
    job.submittedMs = 100
    c.submit(job, 100)
    c.report('j1:0:0#0', 200)
    // One worker at a time: on a shared data dir, two must not move the same files at once.
    const first = ofKind(c.report('j1:1:0#0', 300, { sinks: [{ node_id: 'out', op: 'write_text', records: 4 }] }), 'finalize-output')
    expect(first.map(a => [a.worker, a.swaps])).toEqual([[W('w1'), [{ path: 'out/wc', staged: 'out/wc/_temporary/j1', olderThanMs: 1_200 }]]])
    // Its strays are looked for where the job committed (the staged folder), before the swap.
    const home = c.task(1, 0).home!.worker
    expect(first[0]!.settle).toEqual([{ path: 'out/wc', dir: 'out/wc/_temporary/j1', keep: home === W('w1') ? ['part-00000'] : [], ...(home === W('w1') ? { success: { parts: [0], total: 1 } } : {}) }])
    // A cancel once the swap is under way would leave the output half old, half new: it waits.
    c.post({ kind: 'job-cancel-requested', nowMs: 310, job: J('j1') })
    expect(c.job().state).toBe('RUNNING')
    // A worker joining meanwhile was not asked: it will swap before it gets a task.
    c.heartbeat('w3', 320)
    const second = ofKind(c.post({ kind: 'output-finalized', nowMs: 330, job: J('j1'), worker: W('w1'), incarnation: first[0]!.incarnation }), 'finalize-output')
    expect(second.map(a => a.worker)).toEqual([W('w2')])
    expect(c.job().state).toBe('RUNNING')
    c.post({ kind: 'output-finalized', nowMs: 340, job: J('j1'), worker: W('w2'), incarnation: second[0]!.incarnation })
    expect(c.job().state).toBe('SUCCEEDED')
    expect(c.job().result?.sinks.out).toEqual({ op: 'write_text', path: 'out/wc', files: 1, records: 4 })
    expect(c.worker('w3').staleOutputs?.map(o => o.job)).toEqual([J('j1')])
    expect(c.worker('w3').staleSettle).toEqual(['out/wc'])
    expect(c.s.overwrites).toEqual([{ path: 'out/wc', job: J('j1'), submittedMs: 100, atMs: 340 }])
  })

  test('the record of overwrites survives a master restart; a worker DEAD before it swaps on its return', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-overwrites-'))
    try {
      const store = new Store(join(dir, 'm.db'))
      const c = new Cluster()
      const persist = (out: Step): void => {
        const created = out.changes.flatMap(ch => ch.kind === 'job-created' ? [c.s.jobs.get(ch.job)!] : [])
        const overwrites = out.changes.flatMap(ch => ch.kind === 'overwrite' ? [ch.overwrite] : [])
        store.commit(created, [], [], [...c.s.workers.values()], overwrites, { sinceMs: 0, count: 1000 })
      }
      persist(c.heartbeat('w1', 0, { slots: 2 }))
      persist(c.heartbeat('w2', 0, { slots: 2 }))
      c.heartbeat('w1', 9_000)
      persist(c.leaseCheck(10_001))                  // w2 DEAD
      const job = overwriting()
      job.submittedMs = 11_000
      persist(c.submit(job, 11_000))
      persist(c.report('j1:0:0#0', 11_100))
      const [ask] = ofKind(c.report('j1:1:0#0', 11_200), 'finalize-output')
      persist(c.post({ kind: 'output-finalized', nowMs: 11_300, job: J('j1'), worker: ask!.worker, incarnation: ask!.incarnation }))
      expect(c.job().state).toBe('SUCCEEDED')
      store.close()

      const again = new Store(join(dir, 'm.db'))
      const s = recoverState(again, 50_000, 10_000)
      expect(s.overwrites).toEqual([{ path: 'out/wc', job: J('j1'), submittedMs: 11_000, atMs: 11_300 }])
      const back = step(s, { kind: 'heartbeat-received', nowMs: 51_000, hb: { worker_id: 'w2', address: addr('w2'), status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 51, slots: 2, incarnation: '' } })
      expect(ofKind(back, 'clear-stale-outputs').map(a => a.swaps)).toEqual([[{ path: 'out/wc', staged: 'out/wc/_temporary/j1', olderThanMs: 41_000 }]])
      again.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
