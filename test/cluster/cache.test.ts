// Caching within a job, on a real local cluster: a node with `cache` is computed once and read where
// it is kept, results are exact against plain loops, a memory-level cache larger than the budget
// still gives exact results (dropped blocks are recomputed; memory_and_disk ones move to the work
// dir and nothing is recomputed), and a worker holding cached partitions
// SIGKILLed mid-job costs only the partitions it held.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest, TaskInfo } from '../../src/api/jobs'
import { killAll, removeTempDir, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'
import { seeded } from '../support/oracle'

let dataDir = ''
const LINES: string[] = []
const FILES = 4

beforeAll(() => {
  dataDir = tempDir('ms-cache-data-')
  mkdirSync(join(dataDir, 'text'))
  const r = seeded(14)
  const vocab = Array.from({ length: 300 }, (_, i) => `w${i.toString(36)}`)
  for (let f = 0; f < FILES; f++) {
    const lines: string[] = []
    for (let i = 0; i < 6000; i++) lines.push(Array.from({ length: 1 + r.int(12) }, () => r.pick(vocab)).join(' '))
    LINES.push(...lines)
    writeFileSync(join(dataDir, 'text', `part-${f}.txt`), lines.join('\n') + '\n')
  }
})
afterAll(() => { killAll(); removeTempDir(dataDir) })

const words = (): string[] => LINES.flatMap(l => l.split(' '))
function plainCounts(): Map<string, number> {
  const m = new Map<string, number>()
  for (const w of words()) m.set(w, (m.get(w) ?? 0) + 1)
  return m
}

const sumIn = (tasks: readonly TaskInfo[], stage: number): number =>
  tasks.filter(t => t.stage_id === stage && t.state === 'SUCCEEDED').reduce((n, t) => n + t.records_in, 0)

async function run(c: Cluster, job: JobRequest, timeoutMs = 60_000) {
  const id = await c.client.submit(job)
  const status = await c.client.waitDone(id, { timeoutMs })
  if (status.state !== 'SUCCEEDED') throw new Error(`job ${id} ${status.state}: ${JSON.stringify(status.error)}\n${c.logs().slice(-4000)}`)
  return { id, status, result: await c.client.result(id), tasks: await c.client.tasks(id) }
}

type Stage = { stage_id: number; node_ids: string[]; tasks: { total: number } }
/** Stages rooted at `node` (a stage lists its root first). */
const rootedAt = (stages: readonly Stage[], node: string): Stage[] => stages.filter(s => s.node_ids[0] === node)

const countsOf = (values: unknown[]): Map<string, number> => new Map(values as [string, number][])

describe('cache within a job', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 2, dataDir }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('a cached node with two wide consumers: read from files once, both results exact', async () => {
    const { status, result, tasks } = await run(c, {
      split_bytes: 64 * 1024, partitions: 3,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'text' },
        { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")', cache: 'memory' },
        { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
        { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
        { id: 'uniq', op: 'distinct', input: 'words' },
        { id: 'c', op: 'collect', input: 'counts' },
        { id: 'n', op: 'count', input: 'uniq' },
      ],
    })
    expect(countsOf((result.sinks.c as { values: unknown[] }).values)).toEqual(plainCounts())
    expect(result.sinks.n).toEqual({ op: 'count', value: plainCounts().size })
    const stages = status.stages
    // One stage reads the files, each split once; one cached stage reads every word once.
    const source = rootedAt(stages, 'lines')
    expect(source).toHaveLength(1)
    expect(sumIn(tasks, source[0]!.stage_id)).toBe(LINES.length)
    const cached = rootedAt(stages, 'words')
    expect(cached).toHaveLength(1)
    expect(sumIn(tasks, cached[0]!.stage_id)).toBe(words().length)
    expect(tasks.filter(t => t.stage_id === source[0]!.stage_id).length).toBe(source[0]!.tasks.total)
    // Locality: each cached partition was read on the worker that computed it.
    const holder = new Map(tasks.filter(t => t.stage_id === source[0]!.stage_id && t.state === 'SUCCEEDED').map(t => [t.partition, t.worker_id]))
    for (const t of tasks.filter(t => t.stage_id === cached[0]!.stage_id)) expect(t.worker_id).toBe(holder.get(t.partition)!)
  }, 90_000)

  test('a sort of a cached input reads the files once (without cache: twice, sample and sort)', async () => {
    const job = (cache: boolean): JobRequest => ({
      split_bytes: 64 * 1024, partitions: 3,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'text' },
        { id: 'lens', op: 'map', input: 'lines', fn: 'l => [l.length, l]', ...(cache ? { cache: 'memory_and_disk' as const } : {}) },
        { id: 's', op: 'sort', input: 'lens', key: 'r => r[0]' },
        { id: 'out', op: 'collect', input: 's' },
      ],
    })
    const want = LINES.map(l => l.length).sort((a, b) => a - b)
    for (const cache of [false, true]) {
      const { status, result, tasks } = await run(c, job(cache))
      const got = (result.sinks.out as { values: [number, string][] }).values
      expect(got.map(r => r[0])).toEqual(want)
      const fromFiles = rootedAt(status.stages, 'lines').reduce((n, s) => n + sumIn(tasks, s.stage_id), 0)
      expect(fromFiles).toBe(cache ? LINES.length : 2 * LINES.length)
    }
  }, 90_000)

  test('a union of a cached node and the node it is computed from: each record once', async () => {
    // `some` is computed (for its cache write) in the stage that reads `pairs`, where the union runs
    // too: only the stage reading the kept blocks may feed `some` to the union.
    const { result } = await run(c, {
      split_bytes: 64 * 1024,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'text' },
        { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l.length, 1]', cache: 'disk' },
        { id: 'some', op: 'filter', input: 'pairs', fn: '([n]) => n % 3 === 0', cache: 'memory' },
        { id: 'both', op: 'union', inputs: ['pairs', 'some'] },
        { id: 'n', op: 'count', input: 'both' },
      ],
    })
    expect(result.sinks.n).toEqual({ op: 'count', value: LINES.length + LINES.filter(l => l.length % 3 === 0).length })
  }, 60_000)

  test('once the jobs have ended, no cached byte is left: GET /workers and /metrics say 0, and no job folder stays in the work dir', async () => {
    await waitUntil('cached bytes back to 0 on every worker', async () => {
      const ws = await c.client.workers()
      return ws.every(w => w.cached_memory_bytes === 0 && w.cached_disk_bytes === 0) ? true : undefined
    }, { timeoutMs: 10_000 })
    for (const w of await c.client.workers()) {
      const metrics = await (await fetch(`http://${w.address}/metrics`)).text()
      expect(metrics).toContain('minispark_worker_cached_bytes{where="memory"} 0')
      expect(metrics).toContain('minispark_worker_cached_bytes{where="disk"} 0')
    }
    await waitUntil('job folders removed', () => c.workerIds.every(id => {
      try { return readdirSync(join(c.dir, 'work', id)).length === 0 } catch { return true }
    }) ? true : undefined, { timeoutMs: 10_000 })
  })
})

describe('a cache larger than the budget', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 1, dataDir, maxMem: '2MiB' }) }, 30_000)
  afterAll(async () => { await c.stop() })

  // Records several times their text in memory, in many small blocks: together past the budget.
  const job = (cache: 'memory' | 'memory_and_disk'): JobRequest => ({
    split_bytes: 16 * 1024, partitions: 2,
    nodes: [
      { id: 'lines', op: 'read_text', path: 'text' },
      { id: 'recs', op: 'map', input: 'lines', fn: 'l => ({ line: l, words: l.split(" "), pad: l.repeat(3) })', cache },
      { id: 's', op: 'sort', input: 'recs', key: 'r => r.line' },
      { id: 'out', op: 'collect', input: 's' },
      { id: 'n', op: 'count', input: 'recs' },
    ],
  })

  test('memory: exact results; blocks dropped under pressure are recomputed when read', async () => {
    const { result, tasks, status } = await run(c, job('memory'), 120_000)
    const got = (result.sinks.out as { values: { line: string; words: string[]; pad: string }[] }).values
    expect(got.map(r => r.line)).toEqual([...LINES].sort((a, b) => a < b ? -1 : a > b ? 1 : 0))
    for (const r of got.slice(0, 50)) expect(r.pad).toBe(r.line.repeat(3))
    expect(result.sinks.n).toEqual({ op: 'count', value: LINES.length })
    const source = rootedAt(status.stages, 'lines')[0]!
    const reruns = tasks.filter(t => t.stage_id === source.stage_id).length - source.tasks.total
    // Blocks were dropped and recomputed: the case this test is about happened.
    expect(reruns).toBeGreaterThan(0)
  }, 150_000)

  test('memory_and_disk, the same pressure: exact, and nothing recomputed (blocks moved to the work dir instead)', async () => {
    const { result, tasks, status } = await run(c, job('memory_and_disk'), 120_000)
    const got = (result.sinks.out as { values: { line: string }[] }).values
    expect(got.map(r => r.line)).toEqual([...LINES].sort((a, b) => a < b ? -1 : a > b ? 1 : 0))
    const source = rootedAt(status.stages, 'lines')[0]!
    expect(tasks.filter(t => t.stage_id === source.stage_id).length).toBe(source.tasks.total)
  }, 150_000)
})

describe('a worker holding cached partitions is SIGKILLed mid-job', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 3, slots: 1, dataDir, heartbeatTimeout: '2s' }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('exact, and only the partitions it held are recomputed', async () => {
    const id = await c.client.submit({
      split_bytes: 32 * 1024, partitions: 3,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'text' },
        { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")', cache: 'memory' },
        // Slow readers: the kill lands while the cached stage runs.
        { id: 'slow', op: 'map', input: 'words', fn: 'w => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0.02); return [w, 1] }' },
        { id: 'counts', op: 'reduce_by_key', input: 'slow', fn: '(a, b) => a + b' },
        { id: 'c', op: 'collect', input: 'counts' },
      ],
    })
    const sourceStage = 0
    const cachedStage = 1
    // Wait until the cached stage has started, then kill a worker that holds cached blocks.
    const victim = await waitUntil('the cached stage running', async () => {
      const tasks = await c.client.tasks(id)
      if (!tasks.some(t => t.stage_id === cachedStage && t.state === 'SUCCEEDED')) return undefined
      const held = tasks.filter(t => t.stage_id === sourceStage && t.state === 'SUCCEEDED').map(t => t.worker_id!)
      return held[held.length - 1]
    }, { timeoutMs: 60_000, pollMs: 100 })
    // The victim says it holds cached memory.
    await waitUntil('the victim reporting cached bytes', async () =>
      ((await c.client.workers()).find(w => w.worker_id === victim)?.cached_memory_bytes ?? 0) > 0 ? true : undefined, { timeoutMs: 10_000 })
    const before = await c.client.tasks(id)
    const heldByVictim = new Set(before.filter(t => t.stage_id === sourceStage && t.state === 'SUCCEEDED' && t.worker_id === victim).map(t => t.partition))
    expect(heldByVictim.size).toBeGreaterThan(0)
    c.workers.find(w => w.name === victim)!.proc.kill('SIGKILL')
    const status = await c.client.waitDone(id, { timeoutMs: 90_000 })
    expect(status.state).toBe('SUCCEEDED')
    expect(countsOf(((await c.client.result(id)).sinks.c as { values: unknown[] }).values)).toEqual(plainCounts())
    const tasks = await c.client.tasks(id)
    const source = tasks.filter(t => t.stage_id === sourceStage)
    const rerun = new Set(source.filter(t => t.attempt > 0).map(t => t.partition))
    expect(rerun.size).toBeGreaterThan(0)
    for (const p of rerun) expect(heldByVictim.has(p)).toBe(true)
  }, 150_000)
})
