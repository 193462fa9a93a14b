// The master's log lines, derived from step() (src/roles/master/step-log.ts): hand-built events at
// fake times through the real step, and the lines read back. One line per transition however many
// changes a step records; the ids a reader searches for; nothing from steps that change nothing.
import { expect, test } from 'bun:test'
import type { AttemptId, JobId } from '../../../src/api/ids'
import type { Heartbeat } from '../../../src/api/heartbeat'
import type { JobRequest } from '../../../src/api/jobs'
import type { ListAnswer } from '../../../src/api/tasks'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterEvent } from '../../../src/roles/master/scheduler'
import { newState, zeroMetrics, type MasterState } from '../../../src/roles/master/state'
import { StepLog, recoveryLine, type LogLine } from '../../../src/roles/master/step-log'

const hb = (id: string, incarnation: string, nowSec = 0): Heartbeat => ({
  worker_id: id, address: `${id}.test:8081`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 100, last_heartbeat: nowSec, slots: 1, running: [], incarnation,
})

function job(id: string, maxAttempts = 2) {
  const request: JobRequest = { name: 'wc', max_task_attempts: maxAttempts, nodes: [
    { id: 'lines', op: 'read_text', path: 'in/*.txt' },
    { id: 'boom', op: 'map', input: 'lines', fn: 'l => l' },
    { id: 'n', op: 'count', input: 'boom' }] }
  const listing: ListAnswer = { inputs: [{ node_id: 'lines', files: [{ path: 'in/a.txt', size: 10 }] }], errors: [] }
  return buildJobRun({ id: id as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), listing, defaultPartitions: 2, nowMs: 0 })
}

/** Steps events through the real step() and collects the lines, as the driver does. */
function cluster(s: MasterState = newState(1000)) {
  const log = new StepLog(s)
  const lines: LogLine[] = []
  return {
    s, lines,
    post(e: MasterEvent): LogLine[] {
      const out = step(s, e)
      const got = log.linesOf(e, out, s)
      lines.push(...got)
      return got
    },
  }
}

/** The lines at info and above (debug adds every launch and end), as "level event". */
const names = (ls: readonly LogLine[]) => ls.filter(l => l.level !== 'debug').map(l => `${l.level} ${l.event}`)

test('a worker: registered once, DEAD once with why and what it lost, back as a new incarnation', () => {
  const c = cluster()
  expect(names(c.post({ kind: 'heartbeat-received', nowMs: 0, hb: hb('w1', '') }))).toEqual(['info worker-registered'])
  const incarnation = c.s.workers.get('w1' as never)!.incarnation
  expect(c.post({ kind: 'heartbeat-received', nowMs: 500, hb: hb('w1', incarnation) })).toEqual([])
  c.post({ kind: 'job-submitted', nowMs: 600, job: job('j1') })
  const dead = c.post({ kind: 'lease-check-due', nowMs: 1501 })
  expect(names(dead)).toEqual(['info worker-dead', 'warn task-retry'])
  const d = dead.find(l => l.event === 'worker-dead')!
  expect(d.fields).toMatchObject({ worker: 'w1', reason: 'no heartbeat for 1000 ms', lost_attempts: 1 })
  // its attempt was LOST and its task is queued again (no live worker now): a retry warning
  const retry = dead.find(l => l.event === 'task-retry')!
  expect(retry.level).toBe('warn')
  expect(retry.fields).toMatchObject({ job: 'j1', worker: 'w1', state: 'LOST', counted: false, attempt: 'j1:0:0#0' })
  expect(names(c.post({ kind: 'lease-check-due', nowMs: 1600 }))).toEqual([])
  const back = c.post({ kind: 'heartbeat-received', nowMs: 2000, hb: hb('w1', incarnation) })
  expect(names(back)).toContain('info worker-rejoined')
  expect(back.find(l => l.event === 'worker-rejoined')!.fields).toMatchObject({ worker: 'w1', was: 'DEAD' })
  expect(c.lines.filter(l => l.event === 'worker-registered')).toHaveLength(1)
})

test('a live worker that restarted rejoins as such', () => {
  const c = cluster()
  c.post({ kind: 'heartbeat-received', nowMs: 0, hb: hb('w1', '') })
  const again = c.post({ kind: 'heartbeat-received', nowMs: 100, hb: hb('w1', '') })
  expect(names(again)).toEqual(['info worker-rejoined'])
  expect(again[0]!.fields).toMatchObject({ was: 'restarted' })
})

test('a job: submitted, started, a throwing function with node and record, then finished once', () => {
  const c = cluster()
  c.post({ kind: 'heartbeat-received', nowMs: 0, hb: hb('w1', '') })
  const inc = c.s.workers.get('w1' as never)!.incarnation
  const sub = c.post({ kind: 'job-submitted', nowMs: 10, job: job('j1', 2) })
  expect(names(sub)).toEqual(['info job-submitted', 'info job-started'])
  expect(sub[0]!.fields).toMatchObject({ job: 'j1', name: 'wc', stages: 1, tasks: 1 })
  const fail = (attempt: string, nowMs: number) => c.post({ kind: 'task-reported', nowMs, report: {
    worker_id: 'w1', incarnation: inc, attempt_id: attempt, state: 'FAILED', metrics: zeroMetrics(), shuffle_outputs: [], sinks: [],
    failure: { reason: 'udf-error', message: 'Error: no apple', node_id: 'boom', record: '"apple"' } } })
  const first = fail('j1:0:0#0', 20)
  expect(names(first)).toEqual(['warn udf-failed'])
  expect(first[0]!.fields).toMatchObject({ job: 'j1', stage: 0, attempt: 'j1:0:0#0' as AttemptId, worker: 'w1', node: 'boom', record: '"apple"', retry: true, failures: 1, max_attempts: 2 })
  // a late report of the same attempt changes nothing, and says nothing
  expect(fail('j1:0:0#0', 25)).toEqual([])
  expect(c.lines.filter(l => l.event === 'task-launched').map(l => l.fields.attempt)).toEqual(['j1:0:0#0', 'j1:0:0#1'])
  const second = fail('j1:0:0#1', 30)
  expect(names(second)).toEqual(['warn udf-failed', 'info job-finished'])
  expect(second.find(l => l.event === 'udf-failed')!.fields.retry).toBe(false)
  // from submit (the job was built at 0) to its end
  expect(second.find(l => l.event === 'job-finished')!.fields).toMatchObject({ job: 'j1', state: 'FAILED', node: 'boom', error: 'Error: no apple', duration_ms: 30 })
  expect(c.post({ kind: 'job-cancel-requested', nowMs: 40, job: 'j1' as JobId })).toEqual([])
})

test('a cancelled job ends once; a restarted master says what it recovered and does not start it again', () => {
  const c = cluster()
  c.post({ kind: 'heartbeat-received', nowMs: 0, hb: hb('w1', '') })
  c.post({ kind: 'job-submitted', nowMs: 10, job: job('j1') })
  const s2 = newState(1000)
  // what a restart finds: the same workers and the unfinished job, already RUNNING
  for (const [id, w] of c.s.workers) s2.workers.set(id, { ...w, running: new Set() })
  for (const [id, j] of c.s.jobs) s2.jobs.set(id, j)
  const r = recoveryLine(s2)!
  expect(r.fields).toMatchObject({ jobs: ['j1'], unfinished_jobs: 1, workers: 1, dead_workers: 0 })
  expect(recoveryLine(newState(1000))).toBeNull()
  const after = cluster(s2)
  expect(names(after.post({ kind: 'heartbeat-received', nowMs: 100, hb: hb('w1', s2.workers.get('w1' as never)!.incarnation) }))).toEqual([])
  const end = c.post({ kind: 'job-cancel-requested', nowMs: 50, job: 'j1' as JobId })
  expect(names(end)).toEqual(['info job-finished'])
  expect(end.find(l => l.event === 'job-finished')!.fields).toMatchObject({ job: 'j1', state: 'CANCELLED', duration_ms: 50 })
})

test('user text in a message stays on one line and is cut; debug lines are built only when asked for', () => {
  const c = cluster()
  c.post({ kind: 'heartbeat-received', nowMs: 0, hb: hb('w1', '') })
  const inc = c.s.workers.get('w1' as never)!.incarnation
  c.post({ kind: 'job-submitted', nowMs: 10, job: job('j1', 1) })
  const forged = 'bad\n{"level":"info","event":"job-finished"}' + 'x'.repeat(5000)
  const lines = c.post({ kind: 'task-reported', nowMs: 20, report: {
    worker_id: 'w1', incarnation: inc, attempt_id: 'j1:0:0#0', state: 'FAILED', metrics: zeroMetrics(), shuffle_outputs: [], sinks: [],
    failure: { reason: 'udf-error', message: forged, node_id: 'boom', record: 'r'.repeat(5000) } } })
  for (const l of lines) { expect(l.msg).not.toContain('\n'); expect(l.msg.length).toBeLessThan(500) }
  const udf = lines.find(l => l.event === 'udf-failed')!
  expect(String(udf.fields.record)).toHaveLength(200)
  expect(String(udf.fields.error).length).toBeLessThanOrEqual(1000)
  const s = newState(1000)
  const q = new StepLog(s, false)
  const out1 = step(s, { kind: 'heartbeat-received', nowMs: 0, hb: hb('w1', '') })
  q.linesOf({ kind: 'heartbeat-received', nowMs: 0, hb: hb('w1', '') }, out1, s)
  const e: MasterEvent = { kind: 'job-submitted', nowMs: 10, job: job('j2') }
  const got = q.linesOf(e, step(s, e), s)
  expect(got.map(l => l.event)).toEqual(['job-submitted', 'job-started'])
})
