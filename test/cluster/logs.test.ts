// The roles' logs on a real cluster: a few jobs (one whose function throws), a cancel, a worker
// SIGKILLed mid-job and started again, a master SIGKILLed mid-job and started again on its state
// file. Each process's stderr is read as JSON lines (it is a pipe, not a terminal), and the events
// a person would look for are there, once, with their ids: jobs submitted, started and ended,
// workers registered, DEAD and back, the master's recovery, retries and the throwing function's
// node and record.
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import type { TaskInfo } from '../../src/api/jobs'
import { killAll, runCli, spawnRoleProc, tempDir, waitUntil, type RoleProc } from '../support/cluster'

/** An attempt's id as the logs name it (the API lists its task and number). */
const attemptId = (a: TaskInfo): string => `${a.task_id}#${a.attempt}`

type Line = { level: string; time: string; role: string; pid: number; msg: string; event?: string; [k: string]: unknown }

/** Every line of a role's stderr is one JSON object with the fields every line has. */
function parseLog(p: RoleProc): Line[] {
  const text = p.stderr()
  const lines = text.split('\n').filter(l => l !== '')
  return lines.map(l => {
    let o: Line
    try { o = JSON.parse(l) as Line } catch { throw new Error(`${p.name}: a log line that is not JSON: ${l}`) }
    expect(['debug', 'info', 'warn', 'error']).toContain(o.level)
    expect(Number.isNaN(Date.parse(o.time))).toBe(false)
    expect(o.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    expect(o.pid).toBe(p.pid)
    expect(typeof o.msg).toBe('string')
    return o
  })
}

const events = (lines: readonly Line[], event: string, where: Record<string, unknown> = {}): Line[] =>
  lines.filter(l => l.event === event && Object.entries(where).every(([k, v]) => l[k] === v))

let dir = ''
let data = ''
const procs: RoleProc[] = []

const SLOW = (ms: number) => `l => { const until = Date.now() + ${ms}; while (Date.now() < until); return l }`

beforeAll(() => {
  dir = tempDir('ms-logs-')
  data = join(dir, 'data')
  mkdirSync(join(data, 'in'), { recursive: true })
  writeFileSync(join(data, 'in', 'a.txt'), 'apple\nbanana\ncherry\n')
  writeFileSync(join(data, 'in', 'b.txt'), 'date\nelder\nfig\n')
  // one file per task: a slow job has a task on each worker
  mkdirSync(join(data, 'slow'))
  for (const f of ['a', 'b', 'c', 'd']) writeFileSync(join(data, 'slow', `${f}.txt`), 'x\ny\nz\n')
})

afterAll(() => killAll())

const startMaster = (port: number): Promise<RoleProc> => spawnRoleProc('master', ['master', '--port', String(port), '--state-db', join(dir, 'm.db'), '--heartbeat-timeout', '2s'])
const startWorker = (url: string, id: string, more: string[] = []): Promise<RoleProc> => spawnRoleProc(id, ['worker', '--master', url, '--port', '0', '--id', id, '--slots', '1',
  '--data-dir', data, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '300ms', ...more])

test('jobs, a failing function, a cancel, a killed worker and a restarted master are in the logs with their ids', async () => {
  const master = await startMaster(0)
  procs.push(master)
  const port = Number(new URL(master.url).port)
  let w1 = await startWorker(master.url, 'w1')
  let w2 = await startWorker(master.url, 'w2')
  procs.push(w1, w2)
  const client = new MasterClient(master.url)
  await waitUntil('2 live workers', async () => (await client.workers()).filter(w => w.status !== 'DEAD').length === 2 ? true : undefined, { timeoutMs: 10_000 })

  // a job that succeeds, one whose function throws on every record, one cancelled while it runs
  const ok = await client.submit({ name: 'logs-ok', nodes: [
    { id: 'lines', op: 'read_text', path: 'in/*.txt' },
    { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l[0], 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 2 },
    { id: 'n', op: 'count', input: 'counts' }] })
  expect((await client.waitDone(ok, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
  const bad = await client.submit({ name: 'logs-bad', max_task_attempts: 2, nodes: [
    { id: 'lines', op: 'read_text', path: 'in/a.txt' },
    { id: 'boom', op: 'map', input: 'lines', fn: 'l => { throw new Error("no " + l) }' },
    { id: 'n', op: 'count', input: 'boom' }] })
  expect((await client.waitDone(bad, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('FAILED')
  const cancelled = await client.submit({ name: 'logs-cancel', nodes: [
    { id: 'lines', op: 'read_text', path: 'slow/*.txt' },
    { id: 'wait', op: 'map', input: 'lines', fn: SLOW(2000) },
    { id: 'n', op: 'count', input: 'wait' }] })
  await waitUntil('the job to run', async () => (await client.status(cancelled)).state === 'RUNNING' ? true : undefined, { timeoutMs: 10_000 })
  await client.cancel(cancelled)
  expect((await client.waitDone(cancelled, { timeoutMs: 10_000, pollMs: 50 })).state).toBe('CANCELLED')

  // w2 SIGKILLed while it runs a task of a job that then goes on without it; then it comes back
  const survivor = await client.submit({ name: 'logs-survivor', nodes: [
    { id: 'lines', op: 'read_text', path: 'slow/*.txt' },
    { id: 'wait', op: 'map', input: 'lines', fn: SLOW(300) },
    { id: 'n', op: 'count', input: 'wait' }] })
  await waitUntil('a task of the job on w2', async () => (await client.tasks(survivor)).some(a => a.worker_id === 'w2' && a.state === 'RUNNING') ? true : undefined, { timeoutMs: 10_000, pollMs: 20 })
  w2.proc.kill('SIGKILL')
  expect((await client.waitDone(survivor, { timeoutMs: 30_000, pollMs: 50 })).state).toBe('SUCCEEDED')
  const lostOn2 = (await client.tasks(survivor)).filter(a => a.worker_id === 'w2' && a.state === 'LOST').map(attemptId)
  expect(lostOn2.length).toBeGreaterThan(0)
  const deadW2 = w2
  w2 = await startWorker(master.url, 'w2')
  procs.push(w2)
  await waitUntil('w2 back', async () => (await client.workers()).find(w => w.worker_id === 'w2')?.status !== 'DEAD' ? true : undefined, { timeoutMs: 10_000 })

  // the master SIGKILLed while a job runs, then started again on its state file and port
  const across = await client.submit({ name: 'logs-across', nodes: [
    { id: 'lines', op: 'read_text', path: 'slow/*.txt' },
    { id: 'wait', op: 'map', input: 'lines', fn: SLOW(400) },
    { id: 'n', op: 'count', input: 'wait' }] })
  await waitUntil('the job to run', async () => (await client.status(across)).state === 'RUNNING' ? true : undefined, { timeoutMs: 10_000 })
  master.proc.kill('SIGKILL')
  await master.proc.exited
  // The outage lasts until a worker has seen it: a master back within one heartbeat interval
  // would leave nothing for the worker to log.
  await waitUntil('w1 to miss a heartbeat', async () => events(parseLog(w1), 'heartbeat-failed').length > 0 ? true : undefined, { timeoutMs: 10_000 })
  const master2 = await startMaster(port)
  procs.push(master2)
  expect((await client.waitDone(across, { timeoutMs: 30_000, pollMs: 50 })).state).toBe('SUCCEEDED')

  // ---- the first master's log ----
  const m = parseLog(master)
  expect(m.every(l => l.role === 'master')).toBe(true)
  expect(events(m, 'listening')).toHaveLength(1)
  for (const w of ['w1', 'w2']) expect(events(m, 'worker-registered', { worker: w })).toHaveLength(1)
  for (const [job, state] of [[ok, 'SUCCEEDED'], [bad, 'FAILED'], [cancelled, 'CANCELLED'], [survivor, 'SUCCEEDED']] as const) {
    expect(events(m, 'job-submitted', { job })).toHaveLength(1)
    expect(events(m, 'job-started', { job })).toHaveLength(1)
    const end = events(m, 'job-finished', { job })
    expect(end).toHaveLength(1)
    expect(end[0]!.state).toBe(state)
    expect(end[0]!.level).toBe('info')
    expect(end[0]!.duration_ms).toBeGreaterThanOrEqual(0)
  }
  expect(events(m, 'job-finished', { job: bad })[0]!.node).toBe('boom')
  // the throwing function: a warning per failed attempt, with its node and record, and a retry (2 attempts)
  const udf = events(m, 'udf-failed', { job: bad })
  const badAttempts = (await client.tasks(bad)).filter(a => a.state === 'FAILED').map(attemptId).sort()
  expect(udf.map(l => l.attempt).sort()).toEqual(badAttempts)
  expect(badAttempts.length).toBe(2)
  for (const l of udf) {
    expect(l.level).toBe('warn')
    expect(l.node).toBe('boom')
    expect(l.record).toBe('"apple"')
    expect(String(l.error)).toContain('no apple')
  }
  expect(udf.map(l => l.retry)).toEqual([true, false])
  // w2 DEAD once, its lost attempts retried, then back as a new incarnation
  const dead = events(m, 'worker-dead', { worker: 'w2' })
  expect(dead).toHaveLength(1)
  expect(String(dead[0]!.reason)).toMatch(/no heartbeat|refuses connections/)
  const retried = events(m, 'task-retry', { job: survivor, worker: 'w2' })
  expect(retried.map(l => l.attempt).sort()).toEqual(lostOn2.sort())
  for (const l of retried) { expect(l.level).toBe('warn'); expect(l.state).toBe('LOST'); expect(l.task).toBeString() }
  const back = events(m, 'worker-rejoined', { worker: 'w2' })
  expect(back).toHaveLength(1)
  expect(back[0]!.incarnation).not.toBe(events(m, 'worker-registered', { worker: 'w2' })[0]!.incarnation)
  expect(events(m, 'job-submitted', { job: across })).toHaveLength(1)
  // nothing at debug by default, and nothing twice
  expect(m.filter(l => l.level === 'debug')).toEqual([])

  // ---- the restarted master: it says what it recovered, and ends the job it inherited ----
  const m2 = parseLog(master2)
  const recovered = events(m2, 'recovered')
  expect(recovered).toHaveLength(1)
  expect(recovered[0]!.jobs).toEqual([across])
  expect(recovered[0]!.workers).toBe(2)
  expect(events(m2, 'job-submitted')).toEqual([])
  expect(events(m2, 'job-finished', { job: across })[0]?.state).toBe('SUCCEEDED')

  // ---- the workers' logs ----
  const l1 = parseLog(w1)
  expect(l1.every(l => l.role === 'worker' && l.worker === 'w1')).toBe(true)
  expect(events(l1, 'registered')).toHaveLength(1)
  // the failed attempts ran on the workers: each warned with node and record where it ran
  const workerUdf = [...l1, ...parseLog(deadW2)].filter(l => l.event === 'udf-failed')
  expect(workerUdf.map(l => l.attempt).sort()).toEqual(badAttempts)
  for (const l of workerUdf) { expect(l.node).toBe('boom'); expect(l.record).toBe('"apple"'); expect(l.job).toBe(bad) }
  // the master's restart, seen from a worker: a failed heartbeat (warn, once per outage), then
  // restored (a slow answer on a busy machine may make another, short outage)
  const failed = events(l1, 'heartbeat-failed')
  expect(failed.length).toBeGreaterThanOrEqual(1)
  expect(failed.every(l => l.level === 'warn')).toBe(true)
  expect(events(l1, 'heartbeat-restored').length).toBeGreaterThanOrEqual(1)
  expect(events(parseLog(w2), 'registered')).toHaveLength(1)
}, 90_000)

test('--log-level: warn keeps info lines out, debug adds task attempts, a wrong level is a usage error', async () => {
  const quiet = await spawnRoleProc('quiet-master', ['master', '--port', '0', '--state-db', join(dir, 'q.db'), '--log-level', 'warn'])
  const loud = await spawnRoleProc('loud-master', ['master', '--port', '0', '--state-db', join(dir, 'l.db'), '--log-level', 'debug'])
  const w = await startWorker(loud.url, 'wd', ['--log-level', 'debug'])
  const client = new MasterClient(loud.url)
  await waitUntil('the worker', async () => (await client.workers()).length === 1 ? true : undefined, { timeoutMs: 10_000 })
  const job = await client.submit({ nodes: [{ id: 'lines', op: 'read_text', path: 'in/a.txt' }, { id: 'n', op: 'count', input: 'lines' }] })
  expect((await client.waitDone(job, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
  const attempts = (await client.tasks(job)).map(attemptId)
  expect(parseLog(quiet)).toEqual([])
  const launched = events(parseLog(loud), 'task-launched')
  expect(launched.map(l => l.attempt).sort()).toEqual(attempts.sort())
  expect(launched.every(l => l.level === 'debug' && l.job === job && l.worker === 'wd')).toBe(true)
  expect(events(parseLog(w), 'task-started').map(l => l.attempt).sort()).toEqual(attempts.sort())
  const wrong = await runCli(['master', '--port', '0', '--log-level', 'verbose'])
  expect(wrong.code).toBe(2)
  expect(wrong.stderr).toContain('--log-level verbose: give one of debug, info, warn, error, silent')
  for (const p of [quiet, loud, w]) p.proc.kill('SIGKILL')
}, 40_000)
