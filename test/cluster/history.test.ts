// The master's history on real processes: after many tiny jobs, its in-memory job map holds only
// the unfinished ones (minispark_jobs_in_memory in /metrics), GET /jobs pages return every job
// exactly once, and GET /jobs/:id/tasks pages every attempt once. `--keep-jobs` prunes the state
// file (jobs and their attempts) when a master starts on it.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import type { JobRequest, JobSummary, TaskInfo } from '../../src/api/jobs'
import { killAll, spawnRoleProc, startCluster, tempDir, waitUntil, type Cluster, type RoleProc } from '../support/cluster'

const tiny = (i: number): JobRequest => ({
  name: `tiny-${i}`,
  nodes: [{ id: 'lines', op: 'read_text', path: 'in/*.txt' }, { id: 'n', op: 'count', input: 'lines' }],
})

/** Holds a task slot for about `ms` (a busy loop in the UDF), so the job stays RUNNING meanwhile. */
const slow = (ms: number): JobRequest => ({
  name: 'slow',
  nodes: [
    { id: 'lines', op: 'read_text', path: 'in/a.txt' },
    { id: 'wait', op: 'map', input: 'lines', fn: `l => { const t = Date.now(); while (Date.now() - t < ${ms}); return l }` },
    { id: 'n', op: 'count', input: 'wait' },
  ],
})

function dataDir(): string {
  const d = tempDir('ms-history-data-')
  mkdirSync(join(d, 'in'))
  writeFileSync(join(d, 'in/a.txt'), 'one\n')
  writeFileSync(join(d, 'in/b.txt'), 'two\nthree\n')
  return d
}

async function inMemory(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = /^minispark_jobs_in_memory (\d+)$/m.exec(text)
  if (m === null) throw new Error('no minispark_jobs_in_memory in /metrics')
  return Number(m[1])
}

async function submitAll(client: MasterClient, jobs: JobRequest[]): Promise<string[]> {
  const ids: string[] = []
  for (const j of jobs) ids.push(await client.submit(j))   // in order: the list is newest first
  return ids
}

let c: Cluster | undefined
const cluster = (): Cluster => { if (c === undefined) throw new Error('the cluster did not start (see beforeAll)'); return c }

beforeAll(async () => {
  c = await startCluster({ workers: 2, slots: 2, dataDir: dataDir(), heartbeatTimeout: '3s', heartbeatInterval: '300ms' })
}, 30_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

describe('history on a real cluster', () => {
  test('after 40 tiny jobs, memory holds only the unfinished job; GET /jobs pages list each job once', async () => {
    const client = cluster().client
    // Long enough to outlast the tiny jobs on a loaded machine; cancelled at the end.
    const slowId = await client.submit(slow(60_000))
    const ids = [slowId, ...await submitAll(client, Array.from({ length: 40 }, (_, i) => tiny(i)))]
    for (const id of ids.slice(1)) expect((await client.waitDone(id, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
    // Their ends are stored once the driver's turn is over: allow a few polls.
    expect(await waitUntil('only the slow job in memory', async () => (await inMemory(cluster().url)) === 1 ? true : undefined, { timeoutMs: 3_000 })).toBe(true)
    expect((await client.status(slowId)).state).toBe('RUNNING')

    // Every job exactly once across pages of 7, newest first, by following X-Next-Cursor.
    const seen: string[] = []
    let url: string | null = `${cluster().url}/jobs?limit=7`
    let pages = 0
    while (url !== null) {
      const res: Response = await fetch(url)
      expect(res.status).toBe(200)
      const page = await res.json() as JobSummary[]
      expect(page.length).toBeLessThanOrEqual(7)
      expect(res.headers.get('x-total-count')).toBe('41')
      seen.push(...page.map(j => j.job_id))
      const next = res.headers.get('x-next-cursor')
      url = next === null ? null : `${cluster().url}/jobs?limit=7&before=${next}`
      expect(++pages).toBeLessThanOrEqual(7)
    }
    expect(seen).toEqual([...ids].reverse())
    // The client follows the pages itself.
    expect((await client.jobs()).map(j => j.job_id)).toEqual([...ids].reverse())
    expect((await client.jobs('RUNNING')).map(j => j.job_id)).toEqual([slowId])

    // A finished job's status, result and attempts come from the store.
    const one = ids[5]!
    expect((await client.result(one)).sinks).toEqual({ n: { op: 'count', value: 3 } })
    const attempts = await client.tasks(one)
    const byOne: TaskInfo[] = []
    for (let after: string | null = ''; after !== null;) {
      const res: Response = await fetch(`${cluster().url}/jobs/${one}/tasks?limit=1${after === '' ? '' : `&after=${after}`}`)
      byOne.push(...await res.json() as TaskInfo[])
      after = res.headers.get('x-next-cursor')
      expect(byOne.length).toBeLessThanOrEqual(attempts.length)
    }
    expect(byOne).toEqual(attempts)
    expect(attempts.filter(a => a.state === 'SUCCEEDED').length).toBe(2)

    // Once the slow job ends (cancelled), nothing is left in memory.
    await client.cancel(slowId)
    expect((await client.waitDone(slowId, { timeoutMs: 20_000, pollMs: 100 })).state).toBe('CANCELLED')
    expect(await waitUntil('no job in memory', async () => (await inMemory(cluster().url)) === 0 ? true : undefined, { timeoutMs: 3_000 })).toBe(true)
  }, 60_000)
})

describe('--keep-jobs', () => {
  test('a master started with --keep-jobs 5 prunes older ended jobs and their attempts; 1s prunes by age', async () => {
    const dir = tempDir('ms-keep-jobs-')
    const db = join(dir, 'm.db')
    const data = dataDir()
    const masterArgs = (keep: string) => ['master', '--port', '0', '--state-db', db, '--heartbeat-timeout', '3s', '--keep-jobs', keep]
    const stop = async (p: RoleProc) => { p.proc.kill('SIGTERM'); await Promise.race([p.proc.exited, Bun.sleep(5_000)]); p.proc.kill('SIGKILL') }

    let master = await spawnRoleProc('master', masterArgs('all'))
    const worker = await spawnRoleProc('w1', ['worker', '--master', master.url, '--port', '0', '--id', 'w1', '--slots', '2',
      '--data-dir', data, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '300ms'])
    let ids: string[]
    try {
      const client = new MasterClient(master.url)
      ids = await submitAll(client, Array.from({ length: 8 }, (_, i) => tiny(i)))
      for (const id of ids) expect((await client.waitDone(id, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
    } finally {
      await stop(worker)
      await stop(master)
    }
    const attemptsOf = (id: string): number => {
      const raw = new Database(db, { readonly: true })
      try { return (raw.query('SELECT COUNT(*) AS n FROM attempts WHERE job_id = ?').get(id) as { n: number }).n } finally { raw.close() }
    }
    expect(attemptsOf(ids[0]!)).toBe(2)

    master = await spawnRoleProc('master', masterArgs('5'))
    try {
      const client = new MasterClient(master.url)
      const left = await waitUntil('the prune at start', async () => {
        const l = (await client.jobs()).map(j => j.job_id)
        return l.length === 5 ? l : undefined
      }, { timeoutMs: 5_000 })
      expect(left).toEqual(ids.slice(3).reverse())
      const gone = await fetch(`${master.url}/jobs/${ids[0]}/result`)
      expect(gone.status).toBe(404)
      expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('UNKNOWN_JOB')
      expect((await client.result(ids[7]!)).sinks).toEqual({ n: { op: 'count', value: 3 } })
      expect(master.log()).toContain('jobs-pruned')
    } finally {
      await stop(master)
    }
    for (const id of ids.slice(0, 3)) expect(attemptsOf(id)).toBe(0)
    expect(attemptsOf(ids[3]!)).toBe(2)

    await Bun.sleep(1_100)
    master = await spawnRoleProc('master', masterArgs('1s'))
    try {
      const client = new MasterClient(master.url)
      expect(await waitUntil('the prune by age', async () => (await client.jobs()).length === 0 ? true : undefined, { timeoutMs: 5_000 })).toBe(true)
    } finally {
      await stop(master)
    }
    for (const id of ids) expect(attemptsOf(id)).toBe(0)
  }, 60_000)
})
