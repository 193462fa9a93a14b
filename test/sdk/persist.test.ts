// cache(), persist() and unpersist() of the SDK. First the JobRequests they make, without a
// cluster: a kept node not yet persisted gets a persist sink beside its other consumers; once a
// job persisted it, later jobs read it with read_dataset and plan nothing upstream of it. Then on
// a real cluster (a master and worker processes, the SDK connected to it): k-means exact against
// a plain loop with its points read from the files once; two actions at once persist a dataset
// once; a named dataset is read from another session and outlives the session, an unnamed one is
// freed when its session stops; unpersist frees memory and files and later actions compute the
// dataset again; a worker holding kept partitions SIGKILLed between iterations of PageRank, or
// while one runs, leaves the result exact.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type Session } from 'minispark'
import type { JobRequest, JobResult } from '../../src/api/jobs'
import { DatasetImpl, type Runner } from '../../src/sdk/dataset'
import { kMeans } from '../../examples/kmeans'
import { pageRank } from '../../examples/pagerank'
import { ROOT, generateText, killAll, plainWordcount, removeTempDir, runCommand, startCluster, tempDir, textFiles, waitUntil, type Cluster } from '../support/cluster'

// ---- the JobRequests, without a cluster ----

/** A runner that answers every job with an empty result and records it. */
function fakeRunner(): Runner & { jobs: JobRequest[]; deleted: string[] } {
  let n = 0
  const jobs: JobRequest[] = []
  const deleted: string[] = []
  return {
    jobs, deleted,
    async run(job) { jobs.push(job); return { sinks: Object.fromEntries(job.nodes.filter(x => x.op === 'count').map(x => [x.id, { op: 'count', value: 0 }])) } as JobResult },
    datasetName: id => `${id.replace(/[^A-Za-z0-9_.-]/g, '_')}.t-${++n}`,
    persisted() {},
    async unpersist(name) { deleted.push(name) },
    async datasetStates() { return new Map() },
  }
}

/** A job's nodes, the action's sink called "count" whatever line made it. */
const nodesOf = (job: JobRequest) => job.nodes.map(n => n.op === 'count' ? { ...n, id: 'count' } : n)

const source = (r: Runner, path: string, name: string): DatasetImpl =>
  DatasetImpl.source(r, 'read_text', 'textFile', { path }, name)

describe('the JobRequests of kept datasets', () => {
  test('the first job persists the kept node beside its consumers; later jobs read it and nothing before it', async () => {
    const r = fakeRunner()
    const words = source(r, 'books', 'lines').flatMap((l: string) => l.split(' '), { name: 'words' }).cache()
    const pairs = words.map((w: string) => [w, 1], { name: 'pairs' })
    expect(nodesOf(pairs.toJobRequest({ op: 'count' })).map(n => [n.id, n.op])).toEqual([
      ['lines', 'read_text'], ['words', 'flat_map'], ['pairs', 'map'], ['count', 'count'], ['persist:words.t-1', 'persist'],
    ])
    await pairs.count()
    expect(r.jobs[0]!.nodes.find(n => n.op === 'persist')).toEqual({ id: 'persist:words.t-1', op: 'persist', input: 'words', name: 'words.t-1' })
    // Persisted: read where it is kept, under the same node id; its lineage is not planned.
    await words.distinct({ name: 'd' }).count()
    expect(nodesOf(r.jobs[1]!)).toEqual([{ id: 'words', op: 'read_dataset', name: 'words.t-1' }, { id: 'd', op: 'distinct', input: 'words' }, { id: 'count', op: 'count', input: 'd' }])
    // unpersist frees it and forgets the mark: the next job computes it again, and keeps nothing.
    await words.unpersist()
    expect(r.deleted).toEqual(['words.t-1'])
    await words.count()
    expect(r.jobs[2]!.nodes.map(n => n.op)).toEqual(['read_text', 'flat_map', 'count'])
  })

  test('levels, names and replace reach the persist sink; a kept dataset refuses another level', () => {
    const r = fakeRunner()
    const a = source(r, 'a', 'a').persist('disk')
    expect(a.toJobRequest({ op: 'count' }).nodes.at(-1)).toEqual({ id: 'persist:a.t-1', op: 'persist', input: 'a', name: 'a.t-1', level: 'disk' })
    const b = source(r, 'b', 'b').persist({ name: 'shared.b', level: 'memory', replace: true })
    expect(b.toJobRequest({ op: 'count' }).nodes.at(-1)).toEqual({ id: 'persist:shared.b', op: 'persist', input: 'b', name: 'shared.b', level: 'memory', replace: true })
    expect(() => source(r, 'c', 'c').persist({ name: '../etc' })).toThrow(/not a dataset name/)
    expect(() => source(r, 'c', 'c').persist('fast' as never)).toThrow(/level "fast"/)
    // Two kept nodes of one job: two persist sinks.
    const u = a.union(b)
    expect(u.toJobRequest({ op: 'count' }).nodes.filter(n => n.op === 'persist').map(n => n.name)).toEqual(['a.t-1', 'shared.b'])
  })

  test('a kept node with a persisted one upstream: read_dataset below, persist sink above', async () => {
    const r = fakeRunner()
    const lines = source(r, 'x', 'lines').cache()
    await lines.count()
    const upper = lines.map((l: string) => l.toUpperCase(), { name: 'upper' }).cache()
    const job = upper.toJobRequest({ op: 'count' })
    expect(job.nodes.map(n => n.op === 'count' ? n.op : [n.id, n.op])).toEqual([['lines', 'read_dataset'], ['upper', 'map'], 'count', ['persist:upper.t-2', 'persist']])
  })
})

// ---- on a real cluster ----

let data = ''
let c: Cluster | undefined
let ms: Session | undefined
const POINTS = 3000

beforeAll(async () => {
  data = tempDir('ms-sdk-persist-')
  generateText(join(data, 'books'), 1, 2, 11)
  const pts = await runCommand([process.execPath, join(ROOT, 'bench/gen/gen-points.mjs'), '--out', join(data, 'points'), '--points', String(POINTS), '--k', '5', '--dims', '3', '--files', '3', '--seed', '5'], { timeoutMs: 30_000 })
  if (pts.code !== 0) throw new Error(pts.stderr)
  const graph = await runCommand([process.execPath, join(ROOT, 'bench/gen/gen-graph.mjs'), '--out', join(data, 'graph'), '--nodes', '500', '--edges', '5000', '--files', '2', '--seed', '3'], { timeoutMs: 30_000 })
  if (graph.code !== 0) throw new Error(graph.stderr)
  c = await startCluster({ workers: 3, slots: 1, dataDir: data, heartbeatTimeout: '3s', heartbeatInterval: '300ms' })
  ms = await connect(c.url)
}, 60_000)

afterAll(async () => {
  await ms?.stop()
  await c?.stop()
  killAll()
  removeTempDir(data)
})

/** The jobs since `before`, oldest first, with the node ids of their stages. */
async function jobsSince(s: Session, before: ReadonlySet<string>) {
  const jobs = (await s.client.jobs()).filter(j => !before.has(j.job_id)).reverse()
  return Promise.all(jobs.map(async j => {
    const st = await s.client.status(j.job_id)
    return { name: j.name, state: st.state, error: st.error?.message, nodes: st.stages.flatMap(x => x.node_ids) }
  }))
}
const jobIds = async (s: Session) => new Set((await s.client.jobs()).map(j => j.job_id))

/** Every worker reports no cached bytes (as of a heartbeat after the delete). */
async function expectNoCachedBytes(s: Session): Promise<void> {
  await waitUntil('no cached bytes on any worker', async () => {
    const ws = (await s.client.workers()).filter(w => w.status !== 'DEAD')
    return ws.every(w => (w.cached_memory_bytes ?? 0) + (w.cached_disk_bytes ?? 0) === 0) ? true : undefined
  }, { timeoutMs: 10_000, pollMs: 200 })
}

/** Lloyd's algorithm as a plain loop, from the same first centroids. */
function plainKMeans(points: readonly number[][], initial: readonly number[][], iterations: number): number[][] {
  let cs = initial.map(p => [...p])
  for (let i = 0; i < iterations; i++) {
    const sums = cs.map(c => c.map(() => 0))
    const counts = cs.map(() => 0)
    for (const p of points) {
      let best = 0, bestD = Infinity
      cs.forEach((c, j) => { let d = 0; for (let x = 0; x < c.length; x++) d += (p[x]! - c[x]!) ** 2; if (d < bestD) { bestD = d; best = j } })
      sums[best] = sums[best]!.map((v, x) => v + p[x]!)
      counts[best]!++
    }
    cs = cs.map((c, j) => counts[j] === 0 ? c : sums[j]!.map(v => v / counts[j]!))
  }
  return cs
}

describe('kept datasets on a cluster', () => {
  test('k-means: exact against a plain loop, the points read from the files by the first job only, then freed', async () => {
    const s = ms!
    const before = await jobIds(s)
    const r = await kMeans(s, 'points/*.txt', { k: 5, iterations: 6, partitions: 3 })
    const files = readdirSync(join(data, 'points')).sort().map(f => join(data, 'points', f))
    const points = files.flatMap(f => readFileSync(f, 'utf8').split('\n').filter(l => l !== '').map(l => l.split(' ').map(Number)))
    expect(points).toHaveLength(POINTS)
    // The first k points of the first file are the first centroids.
    expect(r.initial).toEqual(points.slice(0, 5))
    expect(r.iterations).toBe(6)
    const want = plainKMeans(points, r.initial, 6)
    const off = r.centroids.flatMap((c, j) => c.filter((x, d) => Math.abs(x - want[j]![d]!) > 1e-9 * Math.max(1, Math.abs(want[j]![d]!))))
    expect(off).toEqual([])
    // One job reads the files and keeps the points; the 6 iterations read them where kept. (On a
    // machine so loaded that a worker misses its heartbeats, its partitions are lost: the job
    // fails naming them and the program computes them again, reading the files once more.)
    const jobs = await jobsSince(s, before)
    const failed = jobs.filter(j => j.state !== 'SUCCEEDED')
    expect(failed.every(j => /dataset "[^"]+" lost partition/.test(j.error ?? ''))).toBe(true)
    const ok = jobs.filter(j => j.state === 'SUCCEEDED')
    expect(ok).toHaveLength(7)
    expect(ok[0]!.nodes.includes('lines')).toBe(true)
    expect(ok.filter(j => j.nodes.includes('lines'))).toHaveLength(1 + failed.length)
    expect(await s.datasets()).toEqual([])
    await expectNoCachedBytes(s)
  }, 90_000)

  test('two actions at once persist once; named datasets outlive the session, unnamed ones do not; unpersist frees', async () => {
    const s = await connect(c!.url)
    const before = await jobIds(s)
    const want = plainWordcount(textFiles(join(data, 'books')))
    const words = s.textFile('books/*.txt', { name: 'lines' })
      .flatMap(l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w !== ''), { name: 'words' })
      .persist({ name: 'words' })
    const counts = words.map(w => [w, 1] as [string, number], { name: 'pairs' }).reduceByKey((a, b) => a + b, { name: 'counts' }).cache()
    const [n, distinct] = await Promise.all([words.count(), words.distinct({ name: 'd' }).count()])
    expect(n).toBe([...want.values()].reduce((a, b) => a + b, 0))
    expect(distinct).toBe(want.size)
    // one job read the files; the other waited for it and read the kept words
    const jobs = await jobsSince(s, before)
    expect(jobs.map(j => j.nodes.includes('lines')).sort()).toEqual([false, true])
    expect(new Map(await counts.collect())).toEqual(want)
    const names = (await s.datasets()).map(d => d.name).sort()
    expect(names).toEqual([expect.stringMatching(/^counts\./), 'words'])

    // Another program reads the named one by its name.
    const other = await connect(c!.url)
    expect(await other.dataset<string>('words').count()).toBe(n)
    expect(() => other.dataset('no/such')).toThrow(/not a dataset name/)
    await expect(other.dataset('nope').count()).rejects.toThrow(/dataset "nope"/)

    // The session's stop frees what it kept without a name, and only that.
    await s.stop()
    expect((await other.datasets()).map(d => d.name)).toEqual(['words'])
    // unpersist of a session.dataset(name) deletes it: memory and files freed on every worker.
    await other.dataset('words').unpersist()
    expect(await other.datasets()).toEqual([])
    await expectNoCachedBytes(other)
    const files = readdirSync(c!.dir, { recursive: true }).map(String).filter(f => f.includes('words'))
    expect(files).toEqual([])
    // After unpersist, an action on the dataset computes it again (and keeps nothing).
    const again = await jobIds(other)
    const w2 = other.textFile('books/*.txt', { name: 'lines' }).flatMap(l => l.split(' '), { name: 'w' }).cache()
    await w2.count()
    await w2.unpersist()
    expect(await w2.count()).toBeGreaterThan(0)
    expect((await jobsSince(other, again)).map(j => j.nodes.includes('lines'))).toEqual([true, true])
    expect(await other.datasets()).toEqual([])
    await other.stop()
  }, 90_000)

  test('a worker holding kept partitions SIGKILLed between iterations: PageRank still exact', async () => {
    const s = ms!
    const before = await jobIds(s)
    const lines = readdirSync(join(data, 'graph')).sort().flatMap(f => readFileSync(join(data, 'graph', f), 'utf8').split('\n'))
    let killed: string | undefined
    const ranks = await pageRank(s, 'graph/*.txt', {
      iterations: 5, partitions: 3,
      onIteration: async i => {
        if (i !== 2) return
        // the worker that holds the most kept partitions (of links and of ranks2)
        const held = new Map<string, number>()
        for (const d of await s.datasets()) for (const l of d.locations) held.set(l.worker_id, (held.get(l.worker_id) ?? 0) + 1)
        killed = [...held].sort((a, b) => b[1] - a[1])[0]![0]
        c!.workers[c!.workerIds.indexOf(killed)]!.proc.kill('SIGKILL')
      },
    })
    expect(killed).toBeDefined()
    // The master recomputes a lost partition from the dataset's lineage; where that lineage reads a
    // dataset the program has since unpersisted (ranks of the iteration before), the job fails
    // naming the lost dataset and the program computes it again from its own lineage. Never for
    // another reason, and at most once per action.
    const after = await jobsSince(s, before)
    const failed = after.filter(j => j.state !== 'SUCCEEDED')
    expect(failed.every(j => /dataset "(links|ranks2)\.[^"]+" (lost partition|partition \d+ cannot be recomputed)/.test(j.error ?? ''))).toBe(true)
    expect(failed.length).toBeLessThanOrEqual(1)
    expect(after.filter(j => j.state === 'SUCCEEDED').map(j => j.name)).toEqual([1, 2, 3, 4, 5].map(i => `pagerank iteration ${i}`))
    const got = new Map(await ranks.collect())
    const want = plainPageRankOf(lines, 5)
    expect(got.size).toBe(want.size)
    expect([...want].filter(([n, r]) => Math.abs((got.get(n) ?? NaN) - r) > 1e-9 * r).slice(0, 5)).toEqual([])
    await ranks.unpersist()
  }, 120_000)
})

test('a worker holding kept partitions SIGKILLed while an iteration runs: PageRank still exact', async () => {
  const s = ms!
  const before = await jobIds(s)
  const lines = readdirSync(join(data, 'graph')).sort().flatMap(f => readFileSync(join(data, 'graph', f), 'utf8').split('\n'))
  let killed: string | undefined
  let watcher: Promise<void> | undefined
  const ranks = await pageRank(s, 'graph/*.txt', {
    iterations: 4, partitions: 3,
    onIteration: i => {
      if (i !== 1) return
      // Once iteration 2's job runs, kill a live worker that holds kept partitions.
      watcher = (async () => {
        const job = await waitUntil('iteration 2 running', async () => (await s.client.jobs()).find(j => j.name === 'pagerank iteration 2' && j.state === 'RUNNING'), { timeoutMs: 30_000, pollMs: 20 })
        const live = new Set((await s.client.workers()).filter(w => w.status !== 'DEAD').map(w => w.worker_id))
        const held = (await s.datasets()).flatMap(d => d.locations.map(l => l.worker_id)).filter(w => live.has(w))
        killed = held[0]
        if (killed !== undefined) c!.workers[c!.workerIds.indexOf(killed)]!.proc.kill('SIGKILL')
        void job
      })()
    },
  })
  await watcher
  expect(killed).toBeDefined()
  const after = await jobsSince(s, before)
  const failed = after.filter(j => j.state !== 'SUCCEEDED')
  expect(failed.every(j => /dataset "[^"]+" lost partition/.test(j.error ?? ''))).toBe(true)
  expect(failed.length).toBeLessThanOrEqual(1)
  const got = new Map(await ranks.collect())
  const want = plainPageRankOf(lines, 4)
  expect(got.size).toBe(want.size)
  expect([...want].filter(([n, r]) => Math.abs((got.get(n) ?? NaN) - r) > 1e-9 * r).slice(0, 5)).toEqual([])
  await ranks.unpersist()
}, 120_000)

function plainPageRankOf(lines: readonly string[], iterations: number): Map<number, number> {
  const seen = new Set<string>()
  const out = new Map<number, number[]>()
  for (const l of lines) {
    if (l === '' || seen.has(l)) continue
    seen.add(l)
    const [s, d] = l.split(' ').map(Number) as [number, number]
    out.set(s, [...(out.get(s) ?? []), d])
  }
  let ranks = new Map<number, number>([...out.keys()].map(s => [s, 1.0]))
  for (let i = 0; i < iterations; i++) {
    const sums = new Map<number, number>()
    for (const [s, dsts] of out) {
      const r = ranks.get(s)
      if (r !== undefined) for (const d of dsts) sums.set(d, (sums.get(d) ?? 0) + r / dsts.length)
    }
    ranks = new Map([...sums].map(([n, v]) => [n, 0.15 + 0.85 * v]))
  }
  return ranks
}
