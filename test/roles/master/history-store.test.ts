// The master's history in a real SQLite file: GET /jobs and GET /jobs/:id/tasks page through it
// (routes in-process on a master opened on the file), every item exactly once across pages, in the
// contract's order, checked against plain lists; pruning removes exactly what the retention rule
// names (retention.ts, itself checked against a plain loop), attempts included, and never an
// unfinished job; the pruner runs at start and on its clock.
import { afterEach, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { join } from 'node:path'
import { attemptIdOf, taskIdOf, type JobId, type WorkerId } from '../../../src/api/ids'
import type { JobState, JobSummary, TaskInfo } from '../../../src/api/jobs'
import type { Clock } from '../../../src/roles/clock'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { createMaster } from '../../../src/roles/master/index'
import { buildJobRun } from '../../../src/roles/master/planning'
import { startPruner } from '../../../src/roles/master/pruner'
import { prunedBy, pruneCut, type EndedJob } from '../../../src/roles/master/retention'
import { zeroMetrics, type AttemptRun, type JobRun } from '../../../src/roles/master/state'
import { jobStatus } from '../../../src/roles/master/status'
import { Store } from '../../../src/roles/master/store'
import { prng } from '../../support/prng'
import { killAll, removeTempDir, tempDir } from '../../support/cluster'

const FINAL: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED']
const request = { name: 'h', nodes: [{ id: 'in', op: 'read_text', path: 'in/*.txt' }, { id: 'n', op: 'count', input: 'in' }] }
const valid = validateJob(request, SUPPORTED_OPS)

function jobRun(seq: number, state: JobState, finishedMs: number | null, files = 2): JobRun {
  const listing = { inputs: [{ node_id: 'in', files: Array.from({ length: files }, (_, i) => ({ path: `in/${i}.txt`, size: 10 })) }], errors: [] }
  const j = buildJobRun({ id: `job-${String(seq).padStart(5, '0')}` as JobId, seq, request, valid, listing, defaultPartitions: 2, nowMs: seq * 1000 })
  j.state = state
  j.startedMs = seq * 1000
  j.finishedMs = finishedMs
  return j
}

/** `attempts` per partition of stage 0, the last one SUCCEEDED, the others FAILED. */
function attemptsOf(j: JobRun, attempts: number): AttemptRun[] {
  const out: AttemptRun[] = []
  for (const t of j.stages[0]!.tasks) {
    for (let a = 0; a < attempts; a++) {
      out.push({
        id: attemptIdOf(taskIdOf(j.id, 0, t.partition), a), job: j.id, task: t.id, stage: 0, partition: t.partition, attempt: a,
        worker: 'w1' as WorkerId, incarnation: 'i1', state: a === attempts - 1 ? 'SUCCEEDED' : 'FAILED', startedMs: j.submittedMs,
        finishedMs: j.submittedMs + 10, metrics: { ...zeroMetrics(), records_in: a }, error: null,
      })
    }
  }
  return out
}

function store(path: string, jobs: readonly JobRun[], attempts: readonly AttemptRun[]): void {
  const s = new Store(path)
  s.commit(jobs, jobs.map(job => ({ job, status: JSON.stringify(jobStatus(job)) })), attempts, [])
  s.close()
}

let dirs: string[] = []
afterEach(() => { for (const d of dirs) removeTempDir(d); dirs = []; killAll() })
const dbFile = (): string => { const d = tempDir('ms-history-'); dirs.push(d); return join(d, 'm.db') }

type Master = ReturnType<typeof createMaster>
const openMaster = (stateDb: string, keep: { maxJobs: number | null; maxAgeMs: number | null } = { maxJobs: null, maxAgeMs: null }): Master =>
  createMaster({ host: '127.0.0.1', port: 0, stateDb, heartbeatTimeoutMs: 10_000, retention: keep })

async function get(m: Master, path: string): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await m.app.handle(new Request(`http://127.0.0.1${path}`))
  return { status: res.status, body: await res.json(), headers: res.headers }
}

/** Follows X-Next-Cursor from `first` to the end; also checks that Link rel="next" says the same. */
async function walk<T>(m: Master, first: string, param: string): Promise<{ pages: T[][]; totals: string[] }> {
  const pages: T[][] = []
  const totals: string[] = []
  let path: string | null = first
  while (path !== null) {
    const r = await get(m, path)
    expect(r.status).toBe(200)
    pages.push(r.body as T[])
    totals.push(r.headers.get('x-total-count') ?? '')
    const next = r.headers.get('x-next-cursor')
    const link = r.headers.get('link') ?? ''
    if (next === null) { expect(link).not.toContain('rel="next"'); path = null; continue }
    const m2 = /<([^>]+)>; rel="next"/.exec(link)
    expect(m2).not.toBeNull()
    expect(new URL(m2![1]!, 'http://x').searchParams.get(param)).toBe(next)
    path = m2![1]!
    if (pages.length > 1000) throw new Error('paging does not end')
  }
  return { pages, totals }
}

describe('GET /jobs pages', () => {
  test('every job exactly once across pages, newest first, with and without a state filter', async () => {
    const rand = prng(3)
    const states: JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'SUCCEEDED', 'RUNNING']
    const jobs = Array.from({ length: 123 }, (_, i) => jobRun(i + 1, states[Math.floor(rand() * states.length)]!, (i + 1) * 1000 + 500))
    const path = dbFile()
    store(path, jobs, [])
    const m = openMaster(path)
    try {
      const newestFirst = jobs.map(j => j.id).reverse()
      const { pages, totals } = await walk<JobSummary>(m, '/jobs?limit=10', 'before')
      expect(pages.length).toBe(13)
      expect(pages.every(p => p.length <= 10)).toBe(true)
      expect(pages.flat().map(j => j.job_id)).toEqual(newestFirst)
      expect(new Set(totals)).toEqual(new Set(['123']))
      for (const st of ['FAILED', 'RUNNING'] as const) {
        const want = jobs.filter(j => j.state === st).map(j => j.id).reverse()
        const got = (await walk<JobSummary>(m, `/jobs?state=${st}&limit=7`, 'before')).pages.flat()
        expect(got.map(j => j.job_id)).toEqual(want)
        expect(got.every(j => j.state === st)).toBe(true)
      }
      // No limit: the newest 100, and the way on.
      const first = await get(m, '/jobs')
      expect((first.body as JobSummary[]).map(j => j.job_id)).toEqual(newestFirst.slice(0, 100))
      expect(first.headers.get('x-prev-cursor')).toBeNull()
      // Back from the second page: X-Prev-Cursor as `after` gives the first page again.
      const firstTen = await get(m, '/jobs?limit=10')
      const second = await get(m, `/jobs?limit=10&before=${firstTen.headers.get('x-next-cursor')}`)
      expect((second.body as JobSummary[]).map(j => j.job_id)).toEqual(newestFirst.slice(10, 20))
      const prev = second.headers.get('x-prev-cursor')
      expect(prev).not.toBeNull()
      const back = await get(m, `/jobs?limit=10&after=${prev}`)
      expect((back.body as JobSummary[]).map(j => j.job_id)).toEqual(newestFirst.slice(0, 10))
      // Bad queries are 400s that say what to fix.
      expect((await get(m, '/jobs?limit=0')).status).toBe(400)
      expect((await get(m, '/jobs?limit=1001')).status).toBe(400)
      expect((await get(m, '/jobs?before=abc')).status).toBe(400)
      const both = await get(m, '/jobs?before=5&after=2')
      expect(both.status).toBe(400)
      expect(JSON.stringify(both.body)).toContain('not both')
    } finally {
      m.stop()
    }
  })

  test('the OpenAPI document shows the query parameters of both lists', async () => {
    const m = openMaster(dbFile())
    try {
      const doc = (await get(m, '/swagger/json')).body as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> }
      const names = (p: string) => (doc.paths[p]?.get?.parameters ?? []).filter(x => x.in === 'query').map(x => x.name).sort()
      expect(names('/jobs')).toEqual(['after', 'before', 'limit', 'state'])
      expect(names('/jobs/{id}/tasks')).toEqual(['after', 'before', 'limit', 'stage', 'state'])
    } finally {
      m.stop()
    }
  })
})

describe('GET /jobs/:id/tasks pages', () => {
  test('every attempt exactly once, by stage, partition and attempt, forwards and backwards, with filters', async () => {
    const j = jobRun(1, 'SUCCEEDED', 2000, 23)
    const attempts = attemptsOf(j, 3)   // 69 attempts
    const path = dbFile()
    store(path, [j], attempts)
    const m = openMaster(path)
    try {
      const key = (t: { stage_id: number; partition: number; attempt: number }) => `${t.stage_id}.${t.partition}.${t.attempt}`
      const all = attempts.map(a => `${a.stage}.${a.partition}.${a.attempt}`)
      const fwd = await walk<TaskInfo>(m, `/jobs/${j.id}/tasks?limit=8`, 'after')
      expect(fwd.pages.flat().map(key)).toEqual(all)
      expect(new Set(fwd.totals)).toEqual(new Set(['69']))
      // Backwards from past the end (`S.0.0`, S the number of stages), by X-Prev-Cursor.
      const seen: string[] = []
      let before: string | null = `${j.stages.length}.0.0`
      for (let pages = 0; before !== null; pages++) {
        const r = await get(m, `/jobs/${j.id}/tasks?limit=8&before=${before}`)
        seen.unshift(...(r.body as TaskInfo[]).map(key))
        before = r.headers.get('x-prev-cursor')
        expect(pages).toBeLessThan(20)
      }
      expect(seen).toEqual(all)
      const failed = (await walk<TaskInfo>(m, `/jobs/${j.id}/tasks?limit=5&state=FAILED&stage=0`, 'after')).pages.flat()
      expect(failed.map(key)).toEqual(attempts.filter(a => a.state === 'FAILED').map(a => `${a.stage}.${a.partition}.${a.attempt}`))
      expect((await get(m, `/jobs/${j.id}/tasks?stage=1`)).body).toEqual([])
      expect((await get(m, '/jobs/job-none/tasks')).status).toBe(404)
      expect((await get(m, `/jobs/${j.id}/tasks?after=1.2`)).status).toBe(400)
    } finally {
      m.stop()
    }
  })
})

describe('pruning', () => {
  test('removes what the rule names, attempts included, never an unfinished job, in small transactions', () => {
    const rand = prng(11)
    for (let round = 0; round < 12; round++) {
      const states: JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'RUNNING', 'QUEUED']
      const jobs = Array.from({ length: 30 + Math.floor(rand() * 60) }, (_, i) => {
        const st = states[Math.floor(rand() * states.length)]!
        return jobRun(i + 1, st, FINAL.includes(st) ? Math.floor(rand() * 100) * 1000 : null)
      })
      const attempts = jobs.flatMap(j => attemptsOf(j, 1 + Math.floor(rand() * 3)))
      const path = dbFile()
      store(path, jobs, attempts)
      const keep = { maxJobs: rand() < 0.2 ? null : 1 + Math.floor(rand() * 40), maxAgeMs: rand() < 0.3 ? null : Math.floor(rand() * 100) * 1000 }
      const cut = pruneCut(keep, 100_000)
      const ended: EndedJob[] = jobs.filter(j => FINAL.includes(j.state)).map(j => ({ id: j.id, seq: j.seq, finishedMs: j.finishedMs! }))
      const gone = new Set(prunedBy(cut, ended))
      const s = new Store(path)
      let calls = 0
      for (let more = true; more; calls++) more = s.pruneJobs(cut, { maxJobs: 4, maxAttempts: 1_000 }).more
      expect(calls).toBeGreaterThanOrEqual(Math.ceil(gone.size / 4))
      const left = s.jobPage({ limit: 1000 }).map(r => r.job_id).sort()
      expect(left).toEqual(jobs.filter(j => !gone.has(j.id)).map(j => j.id).sort())
      for (const j of jobs) expect(s.attemptsOf(j.id).length).toBe(gone.has(j.id) ? 0 : attempts.filter(a => a.job === j.id).length)
      // Job numbers go on from the highest ever given, even when the newest job went.
      expect(s.maxSeq()).toBe(jobs.length)
      s.close()
      const raw = new Database(path)
      expect((raw.query('SELECT COUNT(*) AS n FROM attempts').get() as { n: number }).n).toBe(attempts.filter(a => !gone.has(a.job)).length)
      raw.close()
    }
  })

  test('the pruner runs at start and again on each tick of its clock, with the time of that tick', async () => {
    let nowMs = 0
    const ticks: (() => void)[] = []
    const clock: Clock = { now: () => nowMs, every: (_ms, fn) => { ticks.push(fn) }, cancelAll: () => {} }
    const path = dbFile()
    const jobs = [jobRun(1, 'SUCCEEDED', 1_000), jobRun(2, 'FAILED', 5_000), jobRun(3, 'RUNNING', null), jobRun(4, 'CANCELLED', 9_000)]
    store(path, jobs, jobs.flatMap(j => attemptsOf(j, 2)))
    const s = new Store(path)
    const ids = () => s.jobPage({ limit: 100 }).map(r => r.job_id)
    nowMs = 4_000
    const p = startPruner({ store: s, clock, retention: { maxJobs: null, maxAgeMs: 2_000 } })
    expect(await p.run()).toEqual({ jobs: 1, attempts: 4 })          // at start: job 1 ended 3 s ago
    expect(ids()).toEqual(['job-00004', 'job-00003', 'job-00002'])
    expect(ticks).toHaveLength(1)
    nowMs = 7_001
    ticks[0]!()
    expect(await p.run()).toEqual({ jobs: 1, attempts: 4 })          // job 2 ended 2.001 s ago
    nowMs = 1e12
    ticks[0]!()
    await p.run()
    expect(ids()).toEqual(['job-00003'])                              // running: kept, however old
    expect(s.attemptsOf('job-00003' as JobId)).toHaveLength(4)
    p.stop()
    s.close()
  })
})
