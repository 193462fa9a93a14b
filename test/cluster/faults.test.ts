// Failure is the normal case: real processes, real SIGKILLs. Workers are killed mid-job and
// replaced, the master is killed and restarted on its state file, jobs are cancelled while their
// tasks loop for ever. Every output is compared with a plain sequential reference.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import type { JobRequest, TaskInfo } from '../../src/api/jobs'
import {
  ROOT, generateText, killAll, partFiles, plainWordcount, readParts, spawnRoleProc, startCluster, tempDir, textFiles, waitUntil,
  type Cluster, type RoleProc,
} from '../support/cluster'

const HB = ['--heartbeat-interval', '300ms']
let dataDir = ''
let reference = new Map<string, number>()
let joinReference = new Map<string, number>()

beforeAll(() => {
  dataDir = tempDir('ms-faults-data-')
  // Many small files: many map tasks, so a job lasts long enough to be hit by kills.
  generateText(join(dataDir, 'books'), 12, 24, 11)
  reference = plainWordcount(textFiles(join(dataDir, 'books')))
  const gen = Bun.spawnSync(['node', join(ROOT, 'bench/gen/gen-join.mjs'), '--out', join(dataDir, 'shop'), '--orders', '200000', '--customers', '5000', '--seed', '42'], { stdout: 'pipe', stderr: 'pipe' })
  if (gen.exitCode !== 0) throw new Error(gen.stderr.toString())
  joinReference = plainCountryTotals(join(dataDir, 'shop'))
})

/** Total order amount (cents) per country, inner join, by a plain loop over the CSV files. */
function plainCountryTotals(dir: string): Map<string, number> {
  const rows = (f: string): string[][] => readFileSync(join(dir, f), 'utf8').split('\n').slice(1).filter(Boolean).map(l => l.split(','))
  const country = new Map(rows('customers.csv').map(r => [r[0]!, r[2]!]))
  const totals = new Map<string, number>()
  for (const [, customer, amount] of rows('orders.csv')) {
    const c = country.get(customer!)
    if (c !== undefined) totals.set(c, (totals.get(c) ?? 0) + Math.round(Number(amount) * 100))
  }
  return totals
}

const joinJob = (out: string): JobRequest => ({
  name: 'join', partitions: 6, split_bytes: 512 * 1024,
  nodes: [
    { id: 'customers', op: 'read_csv', path: 'shop/customers.csv' },
    { id: 'orders', op: 'read_csv', path: 'shop/orders.csv' },
    { id: 'country_of', op: 'map', input: 'customers', fn: 'c => [c.customer_id, c.country]' },
    { id: 'cents_of', op: 'map', input: 'orders', fn: 'o => [o.customer_id, Math.round(Number(o.amount) * 100)]' },
    { id: 'joined', op: 'join', inputs: ['cents_of', 'country_of'] },
    { id: 'by_country', op: 'map', input: 'joined', fn: '([id, [cents, country]]) => [country, cents]' },
    { id: 'totals', op: 'reduce_by_key', input: 'by_country', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_jsonl', input: 'totals', path: out, overwrite: true },
  ],
})
afterAll(() => killAll())

const wordcount = (out: string, partitions = 6): JobRequest => ({
  name: 'wordcount',
  partitions,
  nodes: [
    { id: 'lines', op: 'read_text', path: 'books/*.txt' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_text', input: 'counts', path: out, overwrite: true },
  ],
})

/** The output as a map, failing on a duplicate word (a part written twice would show here). */
function outputCounts(dir: string): Map<string, number> {
  const m = new Map<string, number>()
  for (const line of readParts(dir)) {
    const [w, n] = JSON.parse(line) as [string, number]
    if (m.has(w)) throw new Error(`word ${w} appears twice in ${dir}`)
    m.set(w, n)
  }
  return m
}

function expectExactOutput(dir: string, partitions: number): void {
  expect(readdirSync(dir).sort()).toEqual(['_SUCCESS', ...Array.from({ length: partitions }, (_, i) => `part-${String(i).padStart(5, '0')}`)])
  expect(outputCounts(dir)).toEqual(reference)
}

function workerArgs(c: Cluster, id: string): string[] {
  return ['worker', '--master', c.url, '--port', '0', '--id', id, '--slots', '1', '--data-dir', dataDir,
    '--work-dir', join(c.dir, 'work'), ...HB]
}

describe('workers die and are replaced mid-job', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 3, dataDir, heartbeatTimeout: '2s', heartbeatInterval: '300ms' }) })
  afterAll(() => c?.stop())

  test('a word count and a join, side by side, equal their references exactly in each of 5 runs while workers are SIGKILLed and replaced', async () => {
    const live: RoleProc[] = [...c.workers]
    let lostOrRetried = 0
    let seed = 7
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    for (let run = 0; run < 5; run++) {
      const out = `out/crash-${run}`
      const id = await c.client.submit(wordcount(out))
      const joinId = await c.client.submit(joinJob(`out/crash-join-${run}`))
      let kills = 0
      // The killer: while the job runs, kill a random worker and start a replacement with the same
      // id (it rejoins as a new incarnation), at most 3 times a run.
      for (;;) {
        const s = await c.client.status(id)
        if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(s.state)) break
        if (kills < 3 && s.progress > 0.1 * (kills + 1)) {
          const victim = live.splice(rand(live.length), 1)[0]!
          victim.proc.kill('SIGKILL')
          await victim.proc.exited
          kills++
          live.push(await spawnRoleProc(victim.name, workerArgs(c, victim.name)))
        }
        await Bun.sleep(100)
      }
      const final = await c.client.status(id)
      expect({ run, state: final.state, error: final.error }).toEqual({ run, state: 'SUCCEEDED', error: null })
      expect({ run, kills: kills > 0 }).toEqual({ run, kills: true })
      const attempts = await c.client.tasks(id)
      lostOrRetried += attempts.filter(t => t.attempt > 0).length
      expectExactOutput(join(dataDir, out), 6)
      expect(existsSync(join(dataDir, out, '_temporary'))).toBe(false)
      const j = await c.client.waitDone(joinId, { timeoutMs: 60_000 })
      expect({ run, state: j.state, error: j.error }).toEqual({ run, state: 'SUCCEEDED', error: null })
      const totals = new Map(readParts(join(dataDir, `out/crash-join-${run}`)).map(l => JSON.parse(l) as [string, number]))
      expect(totals).toEqual(joinReference)
    }
    for (const p of live) if (!c.workers.includes(p)) c.procs.push(p)   // stopped with the cluster
    expect(lostOrRetried).toBeGreaterThan(0)                             // the kills did cost work
  }, 150_000)
})

describe('lineage and leases', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 3, dataDir, heartbeatTimeout: '2s', heartbeatInterval: '300ms' }) })
  afterAll(() => c?.stop())

  test('killing a worker holding map outputs before the reduce stage: they are recomputed and the job succeeds', async () => {
    // One input line is slow to map, so the map stage's last task is still running while the other
    // map outputs are done: the worker killed then holds outputs the reduce stage will need.
    const dir = join(dataDir, 'lineage')
    generateText(dir, 2, 8, 5)
    writeFileSync(join(dir, 'zz-slow.txt'), 'SLOW\n')
    const ref = plainWordcount(textFiles(dir))
    const id = await c.client.submit({
      name: 'lineage', partitions: 3,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'lineage/*.txt' },
        { id: 'wait', op: 'map', input: 'lines', fn: "l => { if (l === 'SLOW') { const t = Date.now() + 3000; while (Date.now() < t) {} } return l }" },
        { id: 'words', op: 'flat_map', input: 'wait', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
        { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
        { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
        { id: 'out', op: 'write_text', input: 'counts', path: 'out/lineage', overwrite: true },
      ],
    })
    const tasks = await waitUntil('all map tasks but the slow one to succeed', async () => {
      const s = await c.client.status(id)
      const t = s.stages[0]!.tasks
      return t.total > 0 && t.succeeded === t.total - 1 ? await c.client.tasks(id) : undefined
    }, { timeoutMs: 60_000, pollMs: 20 })
    const slowOn = tasks.find(t => t.stage_id === 0 && t.state === 'RUNNING')?.worker_id
    const holder = tasks.find(t => t.stage_id === 0 && t.state === 'SUCCEEDED' && t.worker_id !== slowOn)!.worker_id!
    c.workers.find(w => w.name === holder)!.proc.kill('SIGKILL')
    const final = await c.client.waitDone(id, { timeoutMs: 60_000 })
    expect(final.state).toBe('SUCCEEDED')
    const after = await c.client.tasks(id)
    // A map task that had succeeded on the dead worker ran again, elsewhere.
    expect(after.some(t => t.stage_id === 0 && t.attempt > 0 && t.state === 'SUCCEEDED' && t.worker_id !== holder)).toBe(true)
    expect(outputCounts(join(dataDir, 'out/lineage'))).toEqual(ref)
  }, 90_000)

  test('a silent worker is DEAD after the timeout (2 s), not before, and within a second after', async () => {
    const victim = c.workers.find(w => w.proc.exitCode === null && w.proc.signalCode === null)!
    const seenBefore = (await c.client.workers()).find(w => w.worker_id === victim.name)!
    expect(seenBefore.status).not.toBe('DEAD')
    victim.proc.kill('SIGKILL')
    const lastBeat = seenBefore.last_heartbeat
    const deadAt = await waitUntil('the worker to be DEAD', async () => {
      const w = (await c.client.workers()).find(x => x.worker_id === victim.name)!
      return w.status === 'DEAD' ? Date.now() : undefined
    }, { timeoutMs: 10_000, pollMs: 25 })
    const w = (await c.client.workers()).find(x => x.worker_id === victim.name)!
    // Measured from the last heartbeat the master received (its clock, unix ms).
    expect(deadAt - w.last_heartbeat).toBeGreaterThanOrEqual(2_000)
    expect(deadAt - w.last_heartbeat).toBeLessThan(3_000 + 300)
    expect(w.last_heartbeat).toBeGreaterThanOrEqual(lastBeat)
  }, 30_000)
})

describe('the master dies', () => {
  test('kill -9 mid-job and restart on the same state file: the job resumes and its output is exact; finished jobs stay listed', async () => {
    const c = await startCluster({ workers: 2, dataDir, heartbeatTimeout: '3s', heartbeatInterval: '300ms' })
    try {
      const small = await c.client.submit({ name: 'before', nodes: [{ id: 'l', op: 'read_text', path: 'books/part-00000.txt' }, { id: 'n', op: 'count', input: 'l' }] })
      expect((await c.client.waitDone(small, { timeoutMs: 30_000 })).state).toBe('SUCCEEDED')
      const before = await c.client.result(small)

      const id = await c.client.submit(wordcount('out/master-restart'))
      await waitUntil('some map tasks to succeed', async () => {
        const s = await c.client.status(id)
        return (s.stages[0]?.tasks.succeeded ?? 0) >= 3 ? true : undefined
      }, { timeoutMs: 60_000, pollMs: 20 })
      const port = new URL(c.url).port
      c.master.proc.kill('SIGKILL')
      await c.master.proc.exited
      const again = await spawnRoleProc('master-2', ['master', '--port', port, '--state-db', join(c.dir, 'm.db'), '--heartbeat-timeout', '3s'])
      c.procs.push(again)
      const client = new MasterClient(again.url)
      const final = await client.waitDone(id, { timeoutMs: 90_000 })
      expect(final.state).toBe('SUCCEEDED')
      expectExactOutput(join(dataDir, 'out/master-restart'), 6)
      const listed = await client.jobs()
      expect(listed.map(j => j.job_id)).toContain(small)
      expect(await client.result(small)).toEqual(before)
      // Work done before the crash was not all thrown away.
      const tasks: TaskInfo[] = await client.tasks(id)
      expect(tasks.filter(t => t.stage_id === 0 && t.state === 'SUCCEEDED' && t.attempt === 0).length).toBeGreaterThanOrEqual(3)
    } finally {
      await c.stop()
    }
  }, 150_000)
})

describe('cancel and runaway code', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 2, dataDir, heartbeatTimeout: '3s', heartbeatInterval: '300ms' }) })
  afterAll(() => c?.stop())

  test('a task that never returns: heartbeats and shuffle service go on, cancel stops it, threads are freed, files removed', async () => {
    const id = await c.client.submit({
      name: 'forever',
      nodes: [
        { id: 'lines', op: 'read_text', path: 'books/*.txt' },
        { id: 'stuck', op: 'map', input: 'lines', fn: 'x => { while (true) {} }' },
        { id: 'out', op: 'write_text', input: 'stuck', path: 'out/forever', overwrite: true },
      ],
    })
    await waitUntil('the stuck tasks to run on every slot', async () => {
      const s = await c.client.status(id)
      return s.stages[0]?.tasks.running === 4 ? true : undefined
    }, { timeoutMs: 20_000 })
    // Heartbeats keep coming while every task thread spins.
    const first = new Map((await c.client.workers()).map(w => [w.worker_id, w.last_heartbeat]))
    await waitUntil('every worker to beat again', async () => {
      const now = await c.client.workers()
      return now.every(w => w.status !== 'DEAD' && w.last_heartbeat > first.get(w.worker_id)!) ? true : undefined
    }, { timeoutMs: 5_000 })
    for (const w of c.workers) expect((await fetch(`${w.url}/health`)).status).toBe(200)

    const cancelled = await c.client.cancel(id)
    expect(cancelled.state).toBe('CANCELLED')
    const tasks = await c.client.tasks(id)
    expect(tasks.filter(t => t.state === 'RUNNING')).toEqual([])
    expect(tasks.filter(t => t.state === 'KILLED').length).toBe(4)
    await waitUntil('the workers to report no active task', async () => {
      const ws = await c.client.workers()
      return ws.every(w => w.active_tasks === 0) ? true : undefined
    }, { timeoutMs: 10_000 })
    await waitUntil('the job\'s temporary output to be removed', () => existsSync(join(dataDir, 'out/forever')) ? undefined : true, { timeoutMs: 5_000 })
    const workDirs = c.workerIds.map(w => join(c.dir, 'work', w))
    for (const d of workDirs) expect(existsSync(d) ? readdirSync(d).filter(f => f.startsWith(id)) : []).toEqual([])

    // The threads were replaced: a normal job runs correctly on the same workers.
    const ok = await c.client.submit(wordcount('out/after-cancel', 4))
    expect((await c.client.waitDone(ok, { timeoutMs: 60_000 })).state).toBe('SUCCEEDED')
    expect(partFiles(join(dataDir, 'out/after-cancel')).length).toBe(4)
    expect(outputCounts(join(dataDir, 'out/after-cancel'))).toEqual(reference)
  }, 120_000)
})
