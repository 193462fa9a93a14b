// A real cluster (master + 3 worker processes on free ports) runs jobs over ~32 MiB of generated
// text; results are compared with plain sequential loops over the same files, never with the
// engine's own output.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest } from '../../src/api/jobs'
import { generateText, killAll, partFiles, plainLines, plainWordcount, readParts, startCluster, tempDir, textFiles, waitUntil, type Cluster } from '../support/cluster'

let c: Cluster | undefined
let data = ''
let reference: Map<string, number>
let referenceLines = 0
const SMALL_LINES = ['Alpha beta gamma', 'beta GAMMA delta', '', 'gamma, delta; epsilon!', 'alpha 1999 and 2001']

const cluster = (): Cluster => {
  if (c === undefined) throw new Error('the cluster did not start (see beforeAll)')
  return c
}

beforeAll(async () => {
  data = tempDir('ms-data-')
  generateText(join(data, 'books'), 32, 4, 7)
  mkdirSync(join(data, 'small'))
  writeFileSync(join(data, 'small', 'a.txt'), SMALL_LINES.join('\n') + '\n')
  mkdirSync(join(data, 'out', 'existing'), { recursive: true })
  writeFileSync(join(data, 'out', 'existing', 'part-00000'), 'old\n')
  c = await startCluster({ workers: 3, slots: 1, dataDir: data, heartbeatInterval: '500ms', heartbeatTimeout: '5s' })
  const books = textFiles(join(data, 'books'))
  reference = plainWordcount(books)
  referenceLines = plainLines(books).length
}, 60_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

const wordcountJob = (out: string): JobRequest => ({
  name: 'wordcount-test',
  nodes: [
    { id: 'lines', op: 'read_text', path: 'books/*.txt' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'line => line.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_text', input: 'counts', path: out },
  ],
})

async function runToEnd(job: JobRequest, timeoutMs = 60_000) {
  const id = await cluster().client.submit(job)
  const status = await cluster().client.waitDone(id, { timeoutMs, pollMs: 100 })
  return { id, status }
}

/** POST /jobs without the typed client, to see status and error body of a refused job. */
async function postJob(job: unknown): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const res = await fetch(`${cluster().url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job) })
  return { status: res.status, body: await res.json() as { error?: { code: string; message: string } } }
}

describe('word count on a 3-worker cluster', () => {
  test('output equals the sequential reference; part files without gaps plus _SUCCESS; result matches', async () => {
    const { id, status } = await runToEnd(wordcountJob('out/wc'))
    expect(status.error).toBeNull()
    expect(status.state).toBe('SUCCEEDED')

    const dir = join(data, 'out', 'wc')
    const parts = partFiles(dir)
    expect(parts.length).toBeGreaterThan(0)
    expect(parts).toEqual(parts.map((_, i) => `part-${String(i).padStart(5, '0')}`))
    expect(readdirSync(dir).sort()).toEqual([...parts, '_SUCCESS'].sort())

    const got = new Map<string, number>()
    const duplicates: string[] = []
    for (const line of readParts(dir)) {
      const [w, n] = JSON.parse(line) as [string, number]
      if (got.has(w)) duplicates.push(w)
      got.set(w, n)
    }
    expect(duplicates).toEqual([])
    const wrong: string[] = []
    for (const [w, n] of reference) if (got.get(w) !== n) wrong.push(`${w}: want ${n}, got ${got.get(w)}`)
    for (const w of got.keys()) if (!reference.has(w)) wrong.push(`${w}: not in the input`)
    expect(wrong.slice(0, 20)).toEqual([])
    expect(got.size).toBe(reference.size)

    const result = await cluster().client.result(id)
    expect(result.sinks.out).toEqual({ op: 'write_text', path: 'out/wc', files: parts.length, records: reference.size })
  }, 60_000)

  test('count and collect sinks through the API; tasks are spread over the workers', async () => {
    const years = (w: string): boolean => /^(18|19|20)\d\d$/.test(w)
    const { id, status } = await runToEnd({
      name: 'sinks',
      nodes: [
        { id: 'lines', op: 'read_text', path: 'books' },
        { id: 'n_lines', op: 'count', input: 'lines' },
        { id: 'words', op: 'flat_map', input: 'lines', fn: 'line => line.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
        { id: 'n_words', op: 'count', input: 'words' },
        { id: 'years', op: 'filter', input: 'words', fn: 'w => /^(18|19|20)\\d\\d$/.test(w)' },
        { id: 'distinct_years', op: 'distinct', input: 'years' },
        { id: 'top', op: 'collect', input: 'distinct_years' },
      ],
    })
    expect(status.error).toBeNull()
    expect(status.state).toBe('SUCCEEDED')
    const result = await cluster().client.result(id)
    expect(result.sinks.n_lines).toEqual({ op: 'count', value: referenceLines })
    let words = 0
    for (const n of reference.values()) words += n
    expect(result.sinks.n_words).toEqual({ op: 'count', value: words })
    const top = result.sinks.top
    if (top?.op !== 'collect') throw new Error(`sink top: ${JSON.stringify(top)}`)
    const want = [...reference.keys()].filter(years).sort()
    expect(want.length).toBeGreaterThan(10)
    expect((top.values as string[]).slice().sort()).toEqual(want)

    const tasks = await cluster().client.tasks(id)
    expect(tasks.length).toBeGreaterThan(0)
    const ok = tasks.filter(t => t.state === 'SUCCEEDED')
    // every (stage, partition) has one successful attempt
    const done = new Set(ok.map(t => `${t.stage_id}/${t.partition}`))
    expect(done).toEqual(new Set(tasks.map(t => `${t.stage_id}/${t.partition}`)))
    for (const t of ok) {
      expect(t.worker_id).not.toBeNull()
      expect(t.started_at).not.toBeNull()
      expect(t.finished_at).not.toBeNull()
    }
    const usedWorkers = new Set(ok.map(t => t.worker_id))
    expect([...usedWorkers].sort()).toEqual(cluster().workerIds.slice().sort())
  }, 60_000)

  test('invalid jobs get 400 at submit with the right code', async () => {
    const src = { id: 'src', op: 'read_text', path: 'small/a.txt' }

    const jobsBefore = (await cluster().client.jobs()).length

    const cycle = await postJob({ nodes: [
      { id: 'loop_a', op: 'map', input: 'loop_c', fn: 'x => x' }, { id: 'loop_b', op: 'map', input: 'loop_a', fn: 'x => x' },
      { id: 'loop_c', op: 'map', input: 'loop_b', fn: 'x => x' }, { id: 'n', op: 'count', input: 'loop_c' }] })
    expect(cycle.status).toBe(400)
    expect(cycle.body.error?.code).toBe('DAG_CYCLE')
    for (const node of ['loop_a', 'loop_b', 'loop_c']) expect(cycle.body.error?.message).toContain(node)

    const unknown = await postJob({ nodes: [src, { id: 'x', op: 'frobnicate', input: 'src' }, { id: 'n', op: 'count', input: 'x' }] })
    expect(unknown.status).toBe(400)
    expect(unknown.body.error?.code).toBe('UNKNOWN_OP')
    expect(unknown.body.error?.message).toContain('frobnicate')

    const outside = await postJob({ nodes: [{ id: 'src', op: 'read_text', path: '../x' }, { id: 'n', op: 'count', input: 'src' }] })
    expect(outside.status).toBe(400)
    expect(outside.body.error?.code).toBe('PATH_OUTSIDE_DATA_DIR')

    const outsideOut = await postJob({ nodes: [src, { id: 'w', op: 'write_text', input: 'src', path: 'out/../../x' }] })
    expect(outsideOut.status).toBe(400)
    expect(outsideOut.body.error?.code).toBe('PATH_OUTSIDE_DATA_DIR')

    const missing = await postJob({ nodes: [{ id: 'src', op: 'read_text', path: 'small/missing.txt' }, { id: 'n', op: 'count', input: 'src' }] })
    expect(missing.status).toBe(400)
    expect(missing.body.error?.code).toBe('INPUT_NOT_FOUND')
    expect(missing.body.error?.message).toContain('small/missing.txt')

    const exists = await postJob({ nodes: [src, { id: 'w', op: 'write_text', input: 'src', path: 'out/existing' }] })
    expect(exists.status).toBe(400)
    expect(exists.body.error?.code).toBe('OUTPUT_EXISTS')
    expect(existsSync(join(data, 'out', 'existing', 'part-00000'))).toBe(true)

    const badFn = await postJob({ nodes: [src, { id: 'm', op: 'map', input: 'src', fn: 'x => {' }, { id: 'n', op: 'count', input: 'm' }] })
    expect(badFn.status).toBe(400)
    expect(badFn.body.error?.code).toBe('BAD_FUNCTION')

    // none of the refused jobs was recorded
    expect((await cluster().client.jobs()).length).toBe(jobsBefore)

    // the same output with "overwrite": true is accepted and replaces the old files
    const { status } = await runToEnd({ nodes: [src, { id: 'w', op: 'write_text', input: 'src', path: 'out/existing', overwrite: true }] })
    expect(status.state).toBe('SUCCEEDED')
    expect(readParts(join(data, 'out', 'existing'))).toEqual(SMALL_LINES)
  }, 30_000)

  test('GET /workers: all alive, and last_heartbeat advances for each', async () => {
    const first = await cluster().client.workers()
    expect(first.map(w => w.worker_id).sort()).toEqual(cluster().workerIds.slice().sort())
    for (const w of first) {
      expect(w.status).not.toBe('DEAD')
      expect(w.slots).toBe(1)
      expect(w.address).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(Math.abs(w.last_heartbeat - Date.now())).toBeLessThan(60_000)
    }
    const before = new Map(first.map(w => [w.worker_id, w.last_heartbeat]))
    await waitUntil('every worker to heartbeat again', async () => {
      const now = await cluster().client.workers()
      return now.every(w => w.status !== 'DEAD' && w.last_heartbeat > before.get(w.worker_id)!) ? true : undefined
    }, { timeoutMs: 5_000, pollMs: 100 })
  }, 10_000)

  test('a throwing UDF fails the job with node, message and record; the cluster still works after', async () => {
    const { status } = await runToEnd({
      name: 'boom',
      max_task_attempts: 2,
      nodes: [
        { id: 'src', op: 'read_text', path: 'small/a.txt' },
        { id: 'explode', op: 'map', input: 'src', fn: "x => { throw new Error('boom') }" },
        { id: 'n', op: 'count', input: 'explode' },
      ],
    }, 30_000)
    expect(status.state).toBe('FAILED')
    expect(status.error).not.toBeNull()
    expect(status.error!.node_id).toBe('explode')
    expect(status.error!.message).toContain('boom')
    expect(status.error!.record).not.toBeNull()
    expect(SMALL_LINES.some(l => status.error!.record!.includes(l))).toBe(true)

    const after = await runToEnd({ nodes: [
      { id: 'src', op: 'read_text', path: 'small/a.txt' },
      { id: 'words', op: 'flat_map', input: 'src', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
      { id: 'n', op: 'count', input: 'words' },
    ] }, 30_000)
    expect(after.status.state).toBe('SUCCEEDED')
    const want = [...plainWordcount([join(data, 'small', 'a.txt')]).values()].reduce((a, b) => a + b, 0)
    expect((await cluster().client.result(after.id)).sinks.n).toEqual({ op: 'count', value: want })
  }, 40_000)

  test('GET /swagger/json is OpenAPI 3 with the routes; GET /swagger uses local assets only', async () => {
    const doc = await (await fetch(`${cluster().url}/swagger/json`)).json() as { openapi: string; paths: Record<string, unknown> }
    expect(doc.openapi).toMatch(/^3\./)
    const paths = Object.keys(doc.paths).map(p => p.length > 1 ? p.replace(/\/$/, '') : p)
    for (const p of ['/jobs', '/jobs/{id}', '/jobs/{id}/tasks', '/jobs/{id}/result', '/heartbeat', '/workers', '/health']) expect(paths).toContain(p)

    const res = await fetch(`${cluster().url}/swagger`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type') ?? '').toContain('text/html')
    const html = await res.text()
    const refs = [...html.matchAll(/(?:src|href)\s*=\s*"([^"]+)"/g)].map(m => m[1]!)
    expect(refs.filter(r => /^(https?:)?\/\//.test(r))).toEqual([])
    const scripts = [...html.matchAll(/<script[^>]*\ssrc\s*=\s*"([^"]+)"/g)].map(m => m[1]!)
    expect(scripts.length).toBeGreaterThan(0)
    for (const s of scripts) {
      const asset = await fetch(new URL(s, `${cluster().url}/swagger`))
      expect(asset.status).toBe(200)
      expect(asset.headers.get('content-type') ?? '').toContain('javascript')
      expect((await asset.text()).length).toBeGreaterThan(10_000)
    }
  }, 10_000)

  // CONTRACT section 2 names the route `POST /jobs` / `GET /jobs`, without a trailing slash.
  test('GET /swagger/json spells the job list route /jobs, as the contract does', async () => {
    const doc = await (await fetch(`${cluster().url}/swagger/json`)).json() as { paths: Record<string, unknown> }
    expect(Object.keys(doc.paths)).toContain('/jobs')
  })
})
