// The ways a task ends on a worker, on a real local cluster: a UDF that calls process.exit, an
// input file that changed after planning, one job's code changing the globals of the next, a
// cancel of tasks that hold memory budget, and a master that is down when a task asks to commit.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import type { JobRequest } from '../../src/api/jobs'
import {
  generateText, killAll, plainWordcount, readParts, spawnRoleProc, startCluster, tempDir, textFiles, waitUntil, type Cluster,
} from '../support/cluster'

let dataDir = ''
let reference = new Map<string, number>()

beforeAll(() => {
  dataDir = tempDir('ms-wfaults-data-')
  generateText(join(dataDir, 'books'), 1, 4, 5)
  reference = plainWordcount(textFiles(join(dataDir, 'books')))
  // Many distinct lines: a reduce over them holds a table (and its budget) of that many keys.
  mkdirSync(join(dataDir, 'keys'), { recursive: true })
  writeFileSync(join(dataDir, 'keys/k.txt'), Array.from({ length: 200_000 }, (_, i) => `key-${i}`).join('\n') + '\n')
})
afterAll(() => killAll())

const wordcount = (out: string): JobRequest => ({
  name: 'wordcount', partitions: 2,
  nodes: [
    { id: 'lines', op: 'read_text', path: 'books/*.txt' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'out', op: 'collect', input: 'counts' },
  ],
})

async function wordcountIsExact(c: Cluster): Promise<void> {
  const id = await c.client.submit(wordcount('unused'))
  const s = await c.client.waitDone(id, { timeoutMs: 60_000 })
  expect(s.state).toBe('SUCCEEDED')
  const out = (await c.client.result(id)).sinks['out']!
  const got = new Map((out as { values: [string, number][] }).values)
  expect(got).toEqual(reference)
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  if (line === undefined) throw new Error(`no metric ${name}`)
  return Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('one worker, one slot', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 1, slots: 1, dataDir, heartbeatTimeout: '3s', heartbeatInterval: '300ms' }) })
  afterAll(() => c?.stop())

  test('a UDF that calls process.exit fails its attempt (counted, with a clear message), the thread is replaced, the next job runs', async () => {
    const id = await c.client.submit({
      name: 'exit', max_task_attempts: 2,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'books/part-00000.txt' },
        // A bare `process` is refused at submit; through globalThis it still reaches the worker.
        { id: 'bye', op: 'map', input: 'lines', fn: 'x => globalThis.process.exit(3)' },
        { id: 'n', op: 'count', input: 'bye' },
      ],
    })
    const s = await c.client.waitDone(id, { timeoutMs: 20_000 })
    expect(s.state).toBe('FAILED')
    expect(s.error?.message ?? '').toContain('process.exit')
    const tasks = await c.client.tasks(id)
    expect(tasks.filter(t => t.state === 'FAILED').length).toBe(2)
    await wordcountIsExact(c)
  }, 60_000)

  test('task_timeout: a function that never returns fails its attempts (counted, saying so) once past the limit; the next job runs', async () => {
    const id = await c.client.submit({
      name: 'forever', max_task_attempts: 2, task_timeout: '1s',
      nodes: [
        { id: 'lines', op: 'read_text', path: 'books/part-00000.txt' },
        { id: 'spin', op: 'map', input: 'lines', fn: 'x => { for (;;) {} }' },
        { id: 'n', op: 'count', input: 'spin' },
      ],
    })
    const s = await c.client.waitDone(id, { timeoutMs: 30_000 })
    expect(s.state).toBe('FAILED')
    expect(s.error?.message ?? '').toContain('task_timeout')
    expect((await c.client.tasks(id)).filter(t => t.state === 'FAILED').length).toBe(2)
    await wordcountIsExact(c)
  }, 60_000)

  test('a job that assigns String.prototype.toLowerCase does not change the next job\'s results', async () => {
    const evil = await c.client.submit({
      name: 'polyfill',
      nodes: [
        { id: 'lines', op: 'read_text', path: 'books/part-00000.txt' },
        { id: 'patch', op: 'map', input: 'lines', fn: 'x => { String.prototype.toLowerCase = function () { return "zzz" }; return x }' },
        { id: 'n', op: 'count', input: 'patch' },
      ],
    })
    expect((await c.client.waitDone(evil, { timeoutMs: 20_000 })).state).toBe('SUCCEEDED')
    await wordcountIsExact(c)
  }, 60_000)

  test('an input file removed after planning fails the job with INPUT_CHANGED naming the file and the worker', async () => {
    const dir = join(dataDir, 'changing')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'a.txt'), 'a\nb\nc\n')
    writeFileSync(join(dir, 'b.txt'), 'd\ne\nf\n')
    // The first split keeps the only slot for a second, while b.txt goes away.
    const id = await c.client.submit({
      name: 'count', max_task_attempts: 4,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'changing/*.txt' },
        { id: 'slow', op: 'map', input: 'lines', fn: 'x => { const t = Date.now(); while (Date.now() - t < 400) {} return x }' },
        { id: 'n', op: 'count', input: 'slow' },
      ],
    })
    rmSync(join(dir, 'b.txt'))
    const s = await c.client.waitDone(id, { timeoutMs: 20_000 })
    expect(s.state).toBe('FAILED')
    expect(s.error?.message ?? '').toContain('INPUT_CHANGED')
    expect(s.error?.message ?? '').toContain('changing/b.txt')
    expect(s.error?.message ?? '').toContain('w1')
    // Not retried: it cannot help.
    expect((await c.client.tasks(id)).filter(t => t.state === 'FAILED').length).toBe(1)

    // A file whose size changed is caught the same way.
    writeFileSync(join(dir, 'b.txt'), 'd\ne\nf\n')
    const id2 = await c.client.submit({
      name: 'count2',
      nodes: [
        { id: 'lines', op: 'read_text', path: 'changing/*.txt' },
        { id: 'slow', op: 'map', input: 'lines', fn: 'x => { const t = Date.now(); while (Date.now() - t < 400) {} return x }' },
        { id: 'n', op: 'count', input: 'slow' },
      ],
    })
    appendFileSync(join(dir, 'b.txt'), 'g\n')
    const s2 = await c.client.waitDone(id2, { timeoutMs: 20_000 })
    expect(s2.state).toBe('FAILED')
    expect(s2.error?.message ?? '').toContain('INPUT_CHANGED')
  }, 60_000)

  test('cancelling tasks that hold memory budget gives it all back', async () => {
    const id = await c.client.submit({
      name: 'hold', partitions: 1,
      nodes: [
        { id: 'keys', op: 'read_text', path: 'keys/k.txt' },
        { id: 'pairs', op: 'map', input: 'keys', fn: 'k => [k, 1]' },
        { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
        { id: 'stuck', op: 'map', input: 'counts', fn: 'x => { for (;;) {} }' },
        { id: 'n', op: 'count', input: 'stuck' },
      ],
    })
    await waitUntil('the reduce task to hold budget', async () => (await metric(c.workers[0]!.url, 'minispark_worker_budget_reserved_bytes')) > 0 ? true : undefined, { timeoutMs: 30_000, pollMs: 100 })
    expect((await c.client.cancel(id)).state).toBe('CANCELLED')
    await waitUntil('the budget to be given back', async () => (await metric(c.workers[0]!.url, 'minispark_worker_budget_reserved_bytes')) === 0 ? true : undefined, { timeoutMs: 5_000, pollMs: 100 })
    await wordcountIsExact(c)
  }, 60_000)
})

describe('the master is down when a task asks to commit', () => {
  test('a one-attempt job whose task commits while the master restarts succeeds', async () => {
    const c = await startCluster({ workers: 1, slots: 1, dataDir, heartbeatTimeout: '5s', heartbeatInterval: '300ms' })
    try {
      const out = join(dataDir, 'out/commit-restart')
      const id = await c.client.submit({
        name: 'commit', max_task_attempts: 1,
        nodes: [
          { id: 'lines', op: 'read_text', path: 'books/part-00000.txt' },
          { id: 'slow', op: 'map', input: 'lines', fn: 'x => { globalThis.t0 ??= Date.now(); while (Date.now() - globalThis.t0 < 2000) {} return x }' },
          { id: 'out', op: 'write_text', input: 'slow', path: 'out/commit-restart', overwrite: true },
        ],
      })
      await waitUntil('the task to run', async () => (await c.client.status(id)).stages[0]?.tasks.running === 1 ? true : undefined, { timeoutMs: 10_000, pollMs: 20 })
      const port = new URL(c.url).port
      c.master.proc.kill('SIGKILL')
      await c.master.proc.exited
      // The task finishes and asks to commit while nobody answers.
      await Bun.sleep(4_000)
      const again = await spawnRoleProc('master-2', ['master', '--port', port, '--state-db', join(c.dir, 'm.db'), '--heartbeat-timeout', '5s'])
      c.procs.push(again)
      const client = new MasterClient(again.url)
      const s = await client.waitDone(id, { timeoutMs: 60_000 })
      expect(s.error ?? null).toBeNull()
      expect(s.state).toBe('SUCCEEDED')
      const lines = readParts(out)
      expect(lines).toEqual(readFileSync(join(dataDir, 'books/part-00000.txt'), 'utf8').split('\n').filter((l, i, a) => i < a.length - 1 || l !== ''))
    } finally {
      await c.stop()
    }
  }, 90_000)
})

describe('reduce tasks of one job side by side on one worker, spilling', () => {
  test('each attempt spills in its own folder, and a node named "spill" is no internal folder: exact, one attempt each', async () => {
    const dir = tempDir('ms-wfaults-spill-')
    const master = await spawnRoleProc('master', ['master', '--port', '0', '--state-db', join(dir, 'm.db'), '--heartbeat-timeout', '5s'])
    try {
      await spawnRoleProc('w1', ['worker', '--master', master.url, '--port', '0', '--id', 'w1', '--slots', '2', '--max-mem', '8MiB',
        '--data-dir', dataDir, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '300ms'])
      const client = new MasterClient(master.url)
      await waitUntil('the worker to join', async () => (await client.workers()).some(w => w.status !== 'DEAD') ? true : undefined, { timeoutMs: 15_000 })
      const id = await client.submit({
        name: 'spill', partitions: 4, max_task_attempts: 1,
        nodes: [
          { id: 'keys', op: 'read_text', path: 'keys/k.txt' },
          { id: 'pairs', op: 'map', input: 'keys', fn: 'k => [k.slice(0, 6), k]' },
          { id: 'spill', op: 'group_by_key', input: 'pairs' },
          { id: 'sizes', op: 'map', input: 'spill', fn: '([k, vs]) => [k, vs.length]' },
          { id: 'out', op: 'collect', input: 'sizes' },
        ],
      })
      const s = await client.waitDone(id, { timeoutMs: 90_000 })
      expect(s.error ?? null).toBeNull()
      expect(s.state).toBe('SUCCEEDED')
      const out = (await client.result(id)).sinks['out'] as { values: [string, number][] }
      const expected = new Map<string, number>()
      for (let i = 0; i < 200_000; i++) { const k = `key-${i}`.slice(0, 6); expected.set(k, (expected.get(k) ?? 0) + 1) }
      expect(new Map(out.values)).toEqual(expected)
      const tasks = await client.tasks(id)
      expect(tasks.filter(t => t.state !== 'SUCCEEDED')).toEqual([])
      // The reduces did spill (else this test shows nothing).
      expect(tasks.filter(t => t.stage_id === 1).reduce((n, t) => n + t.spilled_bytes, 0)).toBeGreaterThan(0)
    } finally {
      killAll()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
