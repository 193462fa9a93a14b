// GET /metrics on the master and on workers of a real cluster: valid Prometheus text (checked by a
// strict reader of the format written here), and numbers that agree with the API: jobs and task
// attempts by state, durations, shuffle bytes, workers alive and their heartbeat age. Also the
// OpenAPI documents of both roles, checked by an independent validator (swagger-parser).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import { join } from 'node:path'
import { generateText, killAll, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'

type Series = { name: string; labels: Record<string, string>; value: number }
type Exposition = { types: Map<string, string>; series: Series[] }

/** A strict reader of the text format 0.0.4: every line is a comment, blank, or a valid sample. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>()
  const series: Series[] = []
  const helps = new Set<string>()
  expect(text.endsWith('\n')).toBe(true)
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line))) { expect(helps.has(m[1]!)).toBe(false); helps.add(m[1]!); continue }
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      expect(types.has(m[1]!)).toBe(false)
      types.set(m[1]!, m[2]!)
      continue
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$/.exec(line)
    if (m === null) throw new Error(`not a valid sample line: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    const name = m[1]!
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
    if (!types.has(family)) throw new Error(`sample ${name} has no TYPE line before it`)
    series.push({ name, labels, value: m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]) })
  }
  return { types, series }
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
      expect(value(m, 'minispark_worker_up', { worker: w })).toBe(1)
      expect(value(m, 'minispark_worker_heartbeat_age_seconds', { worker: w })).toBeLessThan(2)
      expect(value(m, 'minispark_worker_memory_bytes', { worker: w })).toBeGreaterThan(1 << 20)
      expect(value(m, 'minispark_worker_slots', { worker: w })).toBe(1)
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
    // every attempt that ended on w1, as the master lists them
    const jobs = await cluster().client.jobs()
    const mine = (await Promise.all(jobs.map(j => cluster().client.tasks(j.job_id)))).flat().filter(a => a.worker_id === 'w1')
    const ended = (st: 'SUCCEEDED' | 'FAILED'): number => mine.filter(a => a.state === st).length
    expect(value(m, 'minispark_worker_task_attempts_total', { state: 'SUCCEEDED' })).toBe(ended('SUCCEEDED'))
    expect(value(m, 'minispark_worker_task_attempts_total', { state: 'FAILED' })).toBe(ended('FAILED'))
    expect(value(m, 'minispark_worker_shuffle_written_bytes_total')).toBe(mine.reduce((n, a) => n + a.shuffle_bytes_written, 0))
  }, 20_000)

  test('a killed worker: alive drops, its lease goes DEAD, its heartbeat age grows', async () => {
    const victim = cluster().workers[1]!
    victim.proc.kill('SIGKILL')
    const m = await waitUntil('the master to declare the worker DEAD', async () => {
      const e = await scrape(cluster().url)
      return value(e, 'minispark_worker_up', { worker: victim.name }) === 0 ? e : undefined
    }, { timeoutMs: 10_000, pollMs: 200 })
    expect(value(m, 'minispark_workers_alive')).toBe(1)
    expect(value(m, 'minispark_workers', { status: 'DEAD' })).toBe(1)
    expect(value(m, 'minispark_worker_heartbeat_age_seconds', { worker: victim.name })).toBeGreaterThan(2)
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
