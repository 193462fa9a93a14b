// GET /metrics on the master and on workers of a real cluster: valid Prometheus text (checked by a
// strict reader of the format written here), and numbers that agree with the API: jobs and task
// attempts by state, durations, shuffle bytes, workers alive and their heartbeat age. Also the
// OpenAPI documents of both roles, checked by an independent validator (swagger-parser).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateText, killAll, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'

type Series = { name: string; labels: Record<string, string>; value: number }
type Exposition = { types: Map<string, string>; series: Series[] }

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (-?[0-9.]+(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf)$`)

/**
 * A strict reader of the text format 0.0.4, as Prometheus reads it and stricter: every line is a
 * comment, blank, or a valid sample; each family has one HELP and one TYPE line before its samples
 * and its samples form one group; no series twice; a histogram's buckets are cumulative, end in
 * +Inf equal to _count, and come with _sum; a counter's name ends in _total.
 */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>()
  const series: Series[] = []
  const helps = new Set<string>()
  const closed = new Set<string>()
  const seen = new Set<string>()
  let current: string | undefined
  expect(text.endsWith('\n')).toBe(true)
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.trim() === '') continue
    let m: RegExpExecArray | null
    if ((m = new RegExp(`^# HELP (${NAME}) .+$`).exec(line))) {
      if (helps.has(m[1]!)) throw new Error(`a second HELP line for ${m[1]}`)
      helps.add(m[1]!)
      continue
    }
    if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      if (types.has(m[1]!)) throw new Error(`a second TYPE line for ${m[1]}`)
      if (m[2] === 'counter' && !m[1]!.endsWith('_total')) throw new Error(`counter ${m[1]} does not end in _total`)
      types.set(m[1]!, m[2]!)
      continue
    }
    if (line.startsWith('#')) throw new Error(`not a HELP or TYPE comment: ${JSON.stringify(line)}`)
    m = SAMPLE.exec(line)
    if (m === null) throw new Error(`not a valid sample line: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    const name = m[1]!
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
    if (!types.has(family)) throw new Error(`sample ${name} has no TYPE line before it`)
    if (family !== name && types.get(family) !== 'histogram' && types.get(family) !== 'summary') throw new Error(`${name}: only a histogram or summary has _bucket, _sum, _count series`)
    if (family !== current) {
      if (closed.has(family)) throw new Error(`the samples of ${family} are not one group`)
      if (current !== undefined) closed.add(current)
      current = family
    }
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) throw new Error(`series ${key} twice`)
    seen.add(key)
    series.push({ name, labels, value: m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]) })
  }
  for (const [family, type] of types) if (type === 'histogram') checkHistogram(family, series)
  return { types, series }
}

function checkHistogram(family: string, series: readonly Series[]): void {
  const groups = new Map<string, Series[]>()
  for (const s of series.filter(x => x.name === `${family}_bucket`)) {
    const { le, ...rest } = s.labels
    if (le === undefined) throw new Error(`${family}_bucket without le`)
    const k = JSON.stringify(Object.entries(rest).sort())
    groups.set(k, [...(groups.get(k) ?? []), s])
  }
  for (const [k, buckets] of groups) {
    const les = buckets.map(b => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)))
    expect(les).toEqual(les.slice().sort((a, b) => a - b))
    expect(les[les.length - 1]).toBe(Infinity)
    const counts = buckets.map(b => b.value)
    expect(counts).toEqual(counts.slice().sort((a, b) => a - b))
    const same = (s: Series): boolean => JSON.stringify(Object.entries(s.labels).sort()) === k
    const count = series.find(s => s.name === `${family}_count` && same(s))
    expect(count?.value).toBe(counts[counts.length - 1])
    expect(series.some(s => s.name === `${family}_sum` && same(s))).toBe(true)
  }
}

const value = (e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined =>
  e.series.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

async function scrape(url: string): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toStartWith('text/plain; version=0.0.4')
  return parseExposition(await res.text())
}

let c: Cluster | undefined
const cluster = (): Cluster => { if (c === undefined) throw new Error('the cluster did not start (see beforeAll)'); return c }

beforeAll(async () => {
  const data = tempDir('ms-metrics-data-')
  generateText(join(data, 'books'), 1, 2, 4)
  mkdirSync(join(data, 'slow'))
  writeFileSync(join(data, 'slow', 'a.txt'), 'one\ntwo\nthree\nfour\nfive\nsix\n')
  c = await startCluster({ workers: 2, slots: 1, dataDir: data, heartbeatTimeout: '2s', heartbeatInterval: '300ms' })
}, 30_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

describe('GET /metrics', () => {
  test('the master: jobs, tasks, attempts, durations, shuffle bytes and workers agree with the API', async () => {
    const before = await scrape(cluster().url)
    expect(before.types.get('minispark_jobs')).toBe('gauge')
    expect(value(before, 'minispark_jobs', { state: 'SUCCEEDED' })).toBe(0)
    expect(value(before, 'minispark_workers_alive')).toBe(2)

    const ok = await cluster().client.submit({ name: 'metrics-wc', nodes: [
      { id: 'lines', op: 'read_text', path: 'books/*.txt' },
      { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l.length % 7, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 3 },
      { id: 'n', op: 'count', input: 'counts' }] })
    const bad = await cluster().client.submit({ name: 'metrics-bad', max_task_attempts: 1, nodes: [
      { id: 'lines', op: 'read_text', path: 'books/*.txt' },
      { id: 'boom', op: 'map', input: 'lines', fn: 'l => { throw new Error("boom") }' },
      { id: 'n', op: 'count', input: 'boom' }] })
    expect((await cluster().client.waitDone(ok, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
    expect((await cluster().client.waitDone(bad, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('FAILED')
    const attempts = [...await cluster().client.tasks(ok), ...await cluster().client.tasks(bad)]

    const m = await scrape(cluster().url)
    expect(value(m, 'minispark_jobs', { state: 'SUCCEEDED' })).toBe(1)
    expect(value(m, 'minispark_jobs', { state: 'FAILED' })).toBe(1)
    expect(value(m, 'minispark_jobs', { state: 'RUNNING' })).toBe(0)
    for (const st of ['SUCCEEDED', 'FAILED', 'KILLED', 'LOST'] as const) {
      expect(value(m, 'minispark_task_attempts_total', { state: st })).toBe(attempts.filter(a => a.state === st).length)
    }
    expect(m.types.get('minispark_task_attempts_total')).toBe('counter')
    // durations: a histogram of the attempts that ended, cumulative buckets ending in +Inf = count
    expect(m.types.get('minispark_task_duration_seconds')).toBe('histogram')
    const succeeded = attempts.filter(a => a.state === 'SUCCEEDED').length
    expect(value(m, 'minispark_task_duration_seconds_count', { state: 'SUCCEEDED' })).toBe(succeeded)
    expect(value(m, 'minispark_task_duration_seconds_bucket', { state: 'SUCCEEDED', le: '+Inf' })).toBe(succeeded)
    const buckets = m.series.filter(s => s.name === 'minispark_task_duration_seconds_bucket' && s.labels.state === 'SUCCEEDED').map(s => s.value)
    expect(buckets).toEqual(buckets.slice().sort((a, b) => a - b))
    expect(value(m, 'minispark_task_duration_seconds_sum', { state: 'SUCCEEDED' })).toBeGreaterThan(0)
    // bytes equal the sums over the attempts the API lists
    const sum = (k: 'shuffle_bytes_written' | 'shuffle_bytes_read' | 'spilled_bytes'): number => attempts.reduce((n, a) => n + a[k], 0)
    expect(value(m, 'minispark_shuffle_written_bytes_total')).toBe(sum('shuffle_bytes_written'))
    expect(value(m, 'minispark_shuffle_read_bytes_total')).toBe(sum('shuffle_bytes_read'))
    expect(sum('shuffle_bytes_written')).toBeGreaterThan(0)
    expect(value(m, 'minispark_spilled_bytes_total')).toBe(sum('spilled_bytes'))
    // workers: alive, per worker heartbeat age, memory and slots
    expect(value(m, 'minispark_workers', { status: 'DEAD' })).toBe(0)
    for (const w of cluster().workerIds) {
      expect(value(m, 'minispark_master_worker_up', { worker: w })).toBe(1)
      expect(value(m, 'minispark_master_worker_heartbeat_age_seconds', { worker: w })).toBeLessThan(2)
      expect(value(m, 'minispark_master_worker_memory_bytes', { worker: w })).toBeGreaterThan(1 << 20)
      expect(value(m, 'minispark_master_worker_slots', { worker: w })).toBe(1)
    }
    // scraping again changes nothing when nothing ran (finished jobs are read once, then kept)
    const again = await scrape(cluster().url)
    expect(value(again, 'minispark_task_attempts_total', { state: 'SUCCEEDED' })).toBe(value(m, 'minispark_task_attempts_total', { state: 'SUCCEEDED' }))
  }, 45_000)

  test('a worker: its attempts, bytes and heartbeat age', async () => {
    const m = await scrape(cluster().workers[0]!.url)
    expect(m.types.get('minispark_worker_task_attempts_total')).toBe('counter')
    expect(value(m, 'minispark_build_info', { role: 'worker', worker: 'w1' })).toBe(1)
    expect(value(m, 'minispark_worker_slots')).toBe(1)
    expect(value(m, 'minispark_worker_active_tasks')).toBe(0)
    expect(value(m, 'minispark_worker_heartbeat_age_seconds')).toBeLessThan(2)
    expect(value(m, 'process_resident_memory_bytes')).toBeGreaterThan(1 << 20)
    // process metrics as every Prometheus client library names them: a restart shows as a new start time
    expect(value(m, 'process_start_time_seconds')).toBeGreaterThan(Date.now() / 1000 - 600)
    expect(value(m, 'process_start_time_seconds')).toBeLessThanOrEqual(Date.now() / 1000 + 1)
    expect(m.types.get('process_cpu_seconds_total')).toBe('counter')
    expect(value(m, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0)
    // every attempt that ended on w1, as the master lists them
    const jobs = await cluster().client.jobs()
    const mine = (await Promise.all(jobs.map(j => cluster().client.tasks(j.job_id)))).flat().filter(a => a.worker_id === 'w1')
    const ended = (st: 'SUCCEEDED' | 'FAILED' | 'KILLED'): number => mine.filter(a => a.state === st).length
    expect(value(m, 'minispark_worker_task_attempts_total', { state: 'SUCCEEDED' })).toBe(ended('SUCCEEDED'))
    // The failing job's first failure ends it, and the master marks its other running attempts
    // KILLED; one of them may have failed on its worker by then (the same "boom"), and the worker
    // counts what it saw. So: the master's FAILED, plus at most its KILLED.
    const failed = value(m, 'minispark_worker_task_attempts_total', { state: 'FAILED' }) ?? 0
    expect(failed).toBeGreaterThanOrEqual(ended('FAILED'))
    expect(failed).toBeLessThanOrEqual(ended('FAILED') + ended('KILLED'))
    expect(value(m, 'minispark_worker_shuffle_written_bytes_total')).toBe(mine.reduce((n, a) => n + a.shuffle_bytes_written, 0))
  }, 20_000)

  test('counters never go backwards: scraped while a job runs and after it ended', async () => {
    const slow = await cluster().client.submit({ name: 'metrics-slow', nodes: [
      { id: 'lines', op: 'read_text', path: 'slow/*.txt' },
      { id: 'wait', op: 'map', input: 'lines', fn: 'l => { const until = Date.now() + 250; while (Date.now() < until); return l }' },
      { id: 'n', op: 'count', input: 'wait' }] })
    const during = await waitUntil('an attempt of the slow job to run', async () => {
      const e = await scrape(cluster().url)
      return (value(e, 'minispark_tasks', { state: 'RUNNING' }) ?? 0) > 0 ? e : undefined
    }, { timeoutMs: 10_000, pollMs: 20 })
    const duringWorker = await Promise.all(cluster().workers.map(w => scrape(w.url)))
    expect((await cluster().client.waitDone(slow, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
    const after = await scrape(cluster().url)
    const afterWorker = await Promise.all(cluster().workers.map(w => scrape(w.url)))
    // every counter series, and every histogram's buckets, count and sum, is at least what it was
    const cumulative = (e: Exposition): Series[] => e.series.filter(s => {
      const family = e.types.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '')
      return e.types.get(family) === 'counter' || e.types.get(family) === 'histogram'
    })
    const pairs: [Exposition, Exposition][] = [[during, after], ...duringWorker.map((d, i): [Exposition, Exposition] => [d, afterWorker[i]!])]
    let compared = 0
    for (const [before, later] of pairs) {
      for (const s of cumulative(before)) {
        const now = value(later, s.name, s.labels)
        if (now === undefined) throw new Error(`${s.name}${JSON.stringify(s.labels)} was exported and is gone`)
        if (now < s.value) throw new Error(`${s.name}${JSON.stringify(s.labels)} went backwards: ${s.value} then ${now}`)
        compared++
      }
    }
    expect(compared).toBeGreaterThan(20)
    // running attempts are a gauge of their own, not a state of the attempts counter
    expect(during.types.get('minispark_task_attempts_running')).toBe('gauge')
    expect(value(during, 'minispark_task_attempts_running')).toBeGreaterThan(0)
    expect(value(after, 'minispark_task_attempts_running')).toBe(0)
    // a job duration histogram: one observation per ended job, from submit to end
    expect(after.types.get('minispark_job_duration_seconds')).toBe('histogram')
    const ended = (await cluster().client.jobs()).filter(j => j.state === 'SUCCEEDED')
    expect(value(after, 'minispark_job_duration_seconds_count', { state: 'SUCCEEDED' })).toBe(ended.length)
    expect(value(after, 'minispark_job_duration_seconds_sum', { state: 'SUCCEEDED' })).toBeGreaterThan(1)
    expect(value(after, 'minispark_job_duration_seconds_count', { state: 'FAILED' })).toBe(1)
  }, 45_000)

  test('master and workers never export one name with two meanings; process and HTTP metrics on both', async () => {
    const master = await scrape(cluster().url)
    const worker = await scrape(cluster().workers[0]!.url)
    // Names both roles export must mean the same for each process (so a sum over all targets is a
    // sum over processes): the process's own metrics, HTTP requests, the build.
    const shared = [...master.types.keys()].filter(n => worker.types.has(n))
    const sameMeaning = (n: string): boolean => n.startsWith('process_') || n.startsWith('nodejs_') || n.startsWith('minispark_http_') || n === 'minispark_build_info'
    expect(shared.filter(n => !sameMeaning(n))).toEqual([])
    // a worker's own metrics are minispark_worker_*; the master never uses that prefix
    expect([...master.types.keys()].filter(n => n.startsWith('minispark_worker_'))).toEqual([])
    expect([...worker.types.keys()].filter(n => n.startsWith('minispark_') && !sameMeaning(n) && !n.startsWith('minispark_worker_'))).toEqual([])
    // no custom start-time names: process_start_time_seconds is the convention
    for (const e of [master, worker]) {
      expect([...e.types.keys()].filter(n => n.endsWith('start_time_seconds'))).toEqual(['process_start_time_seconds'])
      expect(e.types.get('process_cpu_seconds_total')).toBe('counter')
      expect(value(e, 'process_resident_memory_bytes')).toBeGreaterThan(1 << 20)
      expect(value(e, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0)
      expect(e.types.get('minispark_http_requests_total')).toBe('counter')
      expect(e.types.get('minispark_http_request_duration_seconds')).toBe('histogram')
    }
    // requests by route pattern (not by path: ids would make a series per job), method and code
    expect(value(master, 'minispark_http_requests_total', { method: 'GET', route: '/metrics', code: '200' })).toBeGreaterThan(0)
    expect(value(master, 'minispark_http_requests_total', { method: 'POST', route: '/heartbeat', code: '200' })).toBeGreaterThan(0)
    expect(value(master, 'minispark_http_requests_total', { method: 'GET', route: '/jobs/:id', code: '200' })).toBeGreaterThan(0)
    expect(master.series.filter(s => s.name === 'minispark_http_requests_total' && /job-|[0-9a-f]{8}/.test(s.labels.route ?? ''))).toEqual([])
    expect((value(worker, 'minispark_http_request_duration_seconds_count', { method: 'POST', route: '/tasks' }) ?? 0)
      + (value(worker, 'minispark_http_request_duration_seconds_count', { method: 'POST', route: '/tasks/batch' }) ?? 0)).toBeGreaterThan(0)
    // an unknown route and a refused request are counted, under no route
    await fetch(`${cluster().url}/no-such-route`)
    const again = await scrape(cluster().url)
    expect(value(again, 'minispark_http_requests_total', { method: 'GET', route: 'none', code: '404' })).toBeGreaterThan(0)
  }, 30_000)

  test('a killed worker: alive drops, its lease goes DEAD, its heartbeat age grows', async () => {
    const victim = cluster().workers[1]!
    victim.proc.kill('SIGKILL')
    const m = await waitUntil('the master to declare the worker DEAD', async () => {
      const e = await scrape(cluster().url)
      return value(e, 'minispark_master_worker_up', { worker: victim.name }) === 0 ? e : undefined
    }, { timeoutMs: 10_000, pollMs: 200 })
    expect(value(m, 'minispark_workers_alive')).toBe(1)
    expect(value(m, 'minispark_workers', { status: 'DEAD' })).toBe(1)
    expect(value(m, 'minispark_master_worker_heartbeat_age_seconds', { worker: victim.name })).toBeGreaterThan(2)
  }, 20_000)
})

describe('the OpenAPI documents', () => {
  test('master and worker documents pass swagger-parser\'s validation and list every route', async () => {
    const doc = async (url: string): Promise<{ openapi: string; paths: Record<string, Record<string, unknown>> }> =>
      (await (await fetch(`${url}/swagger/json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>> }
    const master = await doc(cluster().url)
    const worker = await doc(cluster().workers[0]!.url)
    // the validator refuses a broken document, so a pass means something
    await expect(SwaggerParser.validate({ ...structuredClone(master), paths: { '/x': { get: { responses: { 200: { $ref: '#/nope' } } } } } } as never)).rejects.toThrow()
    await SwaggerParser.validate(structuredClone(master) as never)
    await SwaggerParser.validate(structuredClone(worker) as never)
    expect(master.openapi).toStartWith('3.')
    const routes = Object.entries(master.paths).flatMap(([p, ops]) => Object.keys(ops).map(m => `${m.toUpperCase()} ${p}`))
    for (const r of ['POST /jobs', 'GET /jobs', 'GET /jobs/{id}', 'DELETE /jobs/{id}', 'GET /jobs/{id}/tasks', 'GET /jobs/{id}/result',
      'GET /jobs/{id}/dag', 'POST /heartbeat', 'GET /workers', 'GET /health', 'GET /metrics']) expect(routes).toContain(r)
    // the UI's own files are served but not API routes
    expect(routes.filter(r => r.includes('/ui') || r === 'GET /')).toEqual([])
    expect(Object.keys(worker.paths)).toContain('/shuffle_data/fetch')
  }, 20_000)
})
