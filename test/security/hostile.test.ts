// Bad input never takes a process down: every bad request below gets its status and the contract's
// error shape, seeded random bodies never get a 5xx, paths that leave the data dir are refused
// before any task runs, hostile functions fail their task, and the cluster still computes a
// correct job afterwards.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest } from '../../src/api/jobs'
import { killAll, startCluster, tempDir, type Cluster } from '../support/cluster'

let c: Cluster
let dataDir = ''
let outside = ''

beforeAll(async () => {
  dataDir = tempDir('ms-hostile-data-')
  outside = tempDir('ms-hostile-outside-')
  writeFileSync(join(dataDir, 'in.txt'), 'one two\nthree\n')
  writeFileSync(join(outside, 'secret.txt'), 'not yours\n')
  symlinkSync(outside, join(dataDir, 'escape'))
  symlinkSync(join(outside, 'secret.txt'), join(dataDir, 'secret-link.txt'))
  mkdirSync(join(dataDir, 'ok'))
  c = await startCluster({ workers: 1, slots: 2, dataDir })
}, 60_000)
afterAll(async () => { await c?.stop(); killAll() })

const countJob = (path = 'in.txt'): JobRequest => ({ nodes: [{ id: 'l', op: 'read_text', path }, { id: 'n', op: 'count', input: 'l' }] })

async function send(base: string, method: string, path: string, body?: string | Uint8Array, contentType = 'application/json'): Promise<{ status: number; json: unknown }> {
  const res = await fetch(base + path, { method, ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }) })
  const text = await res.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json }
}

function expectErrorShape(json: unknown, code?: string): void {
  const e = (json as { error?: { code?: unknown; message?: unknown } }).error
  expect(typeof e?.code).toBe('string')
  expect(typeof e?.message).toBe('string')
  expect((e?.message as string).length).toBeGreaterThan(10)
  if (code !== undefined) expect(e?.code).toBe(code)
}

/** After each hostile request: the master and the worker still serve a job correctly. */
async function stillServes(): Promise<void> {
  const id = await c.client.submit(countJob())
  const s = await c.client.waitDone(id, { timeoutMs: 20_000 })
  expect(s.state).toBe('SUCCEEDED')
  expect(await c.client.result(id)).toEqual({ sinks: { n: { op: 'count', value: 2 } } })
}

const deep = '['.repeat(100_000) + ']'.repeat(100_000)
const hb = { worker_id: 'w9', address: '127.0.0.1:1', status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 1 }

// [what, target, method, path, body, expected status, expected code]
const cases: [string, 'master' | 'worker', string, string, string | Uint8Array, number, string?][] = [
  ['malformed JSON', 'master', 'POST', '/jobs', '{"nodes": [', 400, 'INVALID_REQUEST'],
  ['a body that is not an object', 'master', 'POST', '/jobs', '"hello"', 400, 'INVALID_REQUEST'],
  ['wrong types', 'master', 'POST', '/jobs', JSON.stringify({ nodes: 'lines' }), 400, 'INVALID_REQUEST'],
  ['a huge number', 'master', 'POST', '/jobs', '{"nodes":[{"id":"l","op":"read_text","path":"in.txt"},{"id":"n","op":"count","input":"l"}],"max_task_attempts":1e400}', 400, 'INVALID_REQUEST'],
  ['partitions beyond the cap', 'master', 'POST', '/jobs', JSON.stringify({ ...countJob(), partitions: 10_000_000 }), 400, 'INVALID_REQUEST'],
  ['too many nodes', 'master', 'POST', '/jobs', JSON.stringify({ nodes: Array.from({ length: 10_001 }, (_, i) => ({ id: `n${i}`, op: 'count', input: 'x' })) }), 400, 'INVALID_REQUEST'],
  ['deep nesting', 'master', 'POST', '/jobs', deep, 400, 'INVALID_REQUEST'],
  ['an unknown field', 'master', 'POST', '/jobs', JSON.stringify({ ...countJob(), partition: 3 }), 400, 'INVALID_REQUEST'],
  ['a typo in a node field', 'master', 'POST', '/jobs', JSON.stringify({ nodes: [{ id: 'l', op: 'read_text', path: 'in.txt', fnn: 'x' }, { id: 'n', op: 'count', input: 'l' }] }), 400, 'INVALID_REQUEST'],
  ['duplicate node ids', 'master', 'POST', '/jobs', JSON.stringify({ nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'l', op: 'count', input: 'l' }] }), 400, 'INVALID_JOB'],
  ['a body over 16 MiB', 'master', 'POST', '/jobs', new Uint8Array(17 * 1024 * 1024).fill(32), 413, 'BODY_TOO_LARGE'],
  ['a malformed heartbeat', 'master', 'POST', '/heartbeat', JSON.stringify({ ...hb, status: 'SLEEPING' }), 400, 'INVALID_REQUEST'],
  ['a heartbeat with a negative count', 'master', 'POST', '/heartbeat', JSON.stringify({ ...hb, active_tasks: -1 }), 400, 'INVALID_REQUEST'],
  ['a forged task report', 'master', 'POST', '/tasks/report', JSON.stringify({ worker_id: 'w1', incarnation: 'x', attempt_id: 'job-x:0:0#0', state: 'SUCCEEDED', metrics: { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 }, shuffle_outputs: [], sinks: [] }), 200],
  ['a forged commit question', 'master', 'POST', '/tasks/commit', JSON.stringify({ attempt_id: 'job-x:0:0#0', worker_id: 'w1' }), 200],
  ['an unknown job', 'master', 'GET', '/jobs/job-nope', '', 404, 'UNKNOWN_JOB'],
  ['an unknown route', 'master', 'GET', '/nope', '', 404, 'NOT_FOUND'],
  ['a task spec of the wrong shape', 'worker', 'POST', '/tasks', JSON.stringify({ job_id: 'x' }), 400, 'INVALID_REQUEST'],
  ['a shuffle fetch for blocks the worker never issued', 'worker', 'POST', '/shuffle_data/fetch', JSON.stringify({ job_id: '../../etc', shuffle_id: '../passwd', reduce_partition: 0, attempts: ['../../x'] }), 404, 'NOT_FOUND'],
  ['a shuffle fetch with a negative partition', 'worker', 'POST', '/shuffle_data/fetch', JSON.stringify({ job_id: 'j', shuffle_id: 's', reduce_partition: -1, attempts: [] }), 400, 'INVALID_REQUEST'],
  ['a listing of a path outside the data dir', 'worker', 'POST', '/inputs/list', JSON.stringify({ inputs: [{ node_id: 'a', path: '../../../etc/passwd' }], outputs: [] }), 200],
  ['deep nesting to a worker', 'worker', 'POST', '/tasks', deep, 400, 'INVALID_REQUEST'],
  ['a body over 16 MiB to a worker', 'worker', 'POST', '/shuffle_data/fetch', new Uint8Array(17 * 1024 * 1024).fill(32), 413, 'BODY_TOO_LARGE'],
]

describe('bad requests get a clear answer and break nothing', () => {
  for (const [what, target, method, path, body, status, code] of cases) {
    test(`${what} → ${status}`, async () => {
      const base = target === 'master' ? c.url : c.workers[0]!.url
      const r = await send(base, method, path, body === '' ? undefined : body)
      expect(r.status).toBe(status)
      if (status >= 400) expectErrorShape(r.json, code)
      if (what === 'a listing of a path outside the data dir') {
        expect((r.json as { errors: { code: string }[] }).errors[0]?.code).toBe('PATH_OUTSIDE_DATA_DIR')
      }
      await stillServes()
    }, 30_000)
  }
})

describe('paths that leave the data dir are refused at submit', () => {
  const refused: [string, JobRequest][] = [
    ['an input with ..', countJob('../x.txt')],
    ['an absolute input', countJob('/etc/passwd')],
    ['an input through a symlinked folder', countJob('escape/secret.txt')],
    ['an input that is a symlink out', countJob('secret-link.txt')],
    ['an output with ..', { nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'o', op: 'write_text', input: 'l', path: 'ok/../../out' }] }],
    ['an output through a symlinked folder', { nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'o', op: 'write_text', input: 'l', path: 'escape/out' }] }],
  ]
  for (const [what, job] of refused) {
    test(what, async () => {
      const before = (await c.client.jobs()).length
      const r = await send(c.url, 'POST', '/jobs', JSON.stringify(job))
      expect(r.status).toBe(400)
      expectErrorShape(r.json, 'PATH_OUTSIDE_DATA_DIR')
      expect((await c.client.jobs()).length).toBe(before)       // no job, so no task ran
    })
  }
})

describe('hostile functions fail their task, not the worker', () => {
  const hostile: [string, string, string][] = [
    ['a function that throws', 'map', 'x => { throw new Error("nope") }'],
    ['a flat_map that returns a number', 'flat_map', 'x => 42'],
    ['a map_values on records that are not pairs', 'map_values', 'v => v'],
    ['a function that calls something undefined', 'map', 'x => x.no.such.thing'],
  ]
  for (const [what, op, fn] of hostile) {
    test(what, async () => {
      const id = await c.client.submit({ max_task_attempts: 1, nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'bad', op, input: 'l', fn }, { id: 'n', op: 'count', input: 'bad' }] })
      const s = await c.client.waitDone(id, { timeoutMs: 20_000 })
      expect(s.state).toBe('FAILED')
      expect(s.error?.node_id).toBe('bad')
      expect(s.error?.record).toContain('one two')
      await stillServes()
    }, 30_000)
  }
})

describe('fuzz: seeded random bodies never get a 5xx', () => {
  // A small seeded generator of JSON values shaped loosely like the real bodies.
  function rng(seed: number): () => number {
    let s = seed >>> 0
    return () => { s = (s + 0x6d2b79f5) >>> 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 4294967296 }
  }
  function value(r: () => number, depth: number, keys: string[]): unknown {
    const k = Math.floor(r() * (depth > 3 ? 6 : 9))
    switch (k) {
      case 0: return null
      case 1: return r() < 0.5
      case 2: return [0, -1, 1e308, -1e308, 2 ** 53, 0.5, NaN, 3][Math.floor(r() * 8)]
      case 3: return ['', 'x', 'IDLE', 'read_text', '../etc', 'in.txt', '\u0000', 'é'.repeat(300)][Math.floor(r() * 8)]
      case 4: return Math.floor(r() * 1e6)
      case 5: return 'a'.repeat(Math.floor(r() * 2000))
      case 6: case 7: return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1, keys))
      default: return Object.fromEntries(Array.from({ length: Math.floor(r() * 6) }, () => [keys[Math.floor(r() * keys.length)]!, value(r, depth + 1, keys)]))
    }
  }
  const jobKeys = ['name', 'nodes', 'params', 'max_task_attempts', 'partitions', 'id', 'op', 'input', 'inputs', 'fn', 'path', 'limit', 'overwrite', 'x']
  const hbKeys = ['worker_id', 'address', 'status', 'active_tasks', 'mem_usage_mb', 'last_heartbeat', 'slots', 'incarnation', 'running', 'x']

  test('400 random POST /jobs and POST /heartbeat bodies (seed 42)', async () => {
    const r = rng(42)
    const statuses = new Map<number, number>()
    for (let i = 0; i < 400; i++) {
      const toJobs = i % 2 === 0
      let body = value(r, 0, toJobs ? jobKeys : hbKeys)
      if (r() < 0.5) body = toJobs ? { nodes: [body, value(r, 1, jobKeys)], ...(r() < 0.5 ? { params: value(r, 1, jobKeys) } : {}) } : { ...hb, [hbKeys[Math.floor(r() * hbKeys.length)]!]: value(r, 1, hbKeys) }
      const res = await send(c.url, 'POST', toJobs ? '/jobs' : '/heartbeat', JSON.stringify(body) ?? 'null')
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      if (res.status >= 500) throw new Error(`5xx for ${JSON.stringify(body).slice(0, 500)}: ${JSON.stringify(res.json)}`)
      if (res.status >= 400) expectErrorShape(res.json)
    }
    expect(statuses.get(400) ?? 0).toBeGreaterThan(100)
    await stillServes()
  }, 60_000)
})
