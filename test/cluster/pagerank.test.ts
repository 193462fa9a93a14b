// PageRank (examples/pagerank.ts) on a real local cluster over a graph of bench/gen/gen-graph.mjs:
// exact against a plain sequential loop after 10 iterations, cached and not; the jobs' stages show
// that the cached run computed links from the input files once (iterations 2..10 read no file)
// while the uncached run read them in every iteration; every dataset the run kept is freed.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { local, type Session } from 'minispark'
import { pageRank } from '../../examples/pagerank'
import { ROOT, killAll, removeTempDir, runCommand, tempDir } from '../support/cluster'

const NODES = 2000
const EDGES = 20_000
const ITERATIONS = 10

let data = ''
let ms: Session | undefined
let reference = new Map<number, number>()

/** The W5 definition as plain loops (as bench/gen/ref-pagerank.mjs computes it). */
function plainPageRank(lines: readonly string[], iterations: number): Map<number, number> {
  const seen = new Set<string>()
  const out = new Map<number, number[]>()
  for (const l of lines) {
    if (l === '' || seen.has(l)) continue
    seen.add(l)
    const [s, d] = l.split(' ').map(Number) as [number, number]
    let a = out.get(s)
    if (a === undefined) out.set(s, a = [])
    a.push(d)
  }
  let ranks = new Map<number, number>([...out.keys()].map(s => [s, 1.0]))
  for (let i = 0; i < iterations; i++) {
    const sums = new Map<number, number>()
    for (const [s, dsts] of out) {
      const r = ranks.get(s)
      if (r === undefined) continue
      for (const d of dsts) sums.set(d, (sums.get(d) ?? 0) + r / dsts.length)
    }
    ranks = new Map([...sums].map(([n, v]) => [n, 0.15 + 0.85 * v]))
  }
  return ranks
}

beforeAll(async () => {
  data = tempDir('ms-pagerank-')
  const gen = await runCommand([process.execPath, join(ROOT, 'bench/gen/gen-graph.mjs'), '--out', join(data, 'graph'), '--nodes', String(NODES), '--edges', String(EDGES), '--files', '3', '--seed', '7'], { timeoutMs: 30_000 })
  if (gen.code !== 0) throw new Error(`gen-graph failed: ${gen.stderr}`)
  const lines = readdirSync(join(data, 'graph')).sort().flatMap(f => readFileSync(join(data, 'graph', f), 'utf8').split('\n'))
  reference = plainPageRank(lines, ITERATIONS)
  ms = await local({ workers: 2, slots: 1, dataDir: data })
}, 60_000)

afterAll(async () => {
  await ms?.stop()
  killAll()
  removeTempDir(data)
})

function expectExact(got: readonly [number, number][]): void {
  expect(got.length).toBe(reference.size)
  const off = got.filter(([n, r]) => {
    const want = reference.get(n)
    return want === undefined || Math.abs(r - want) > 1e-9 * Math.abs(want)
  })
  expect(off.slice(0, 5)).toEqual([])
}

/** The jobs this session ran since `before` (ids), oldest first, with the node ids of their stages. */
async function jobsSince(s: Session, before: ReadonlySet<string>) {
  const jobs = (await s.client.jobs()).filter(j => !before.has(j.job_id)).reverse()
  return Promise.all(jobs.map(async j => {
    const st = await s.client.status(j.job_id)
    return { name: j.name, nodes: st.stages.flatMap(x => x.node_ids) }
  }))
}

describe('PageRank through the SDK', () => {
  test('cached: exact over 10 iterations, links computed from the files once, everything freed', async () => {
    const s = ms!
    const before = new Set((await s.client.jobs()).map(j => j.job_id))
    const seconds: number[] = []
    const ranks = await pageRank(s, 'graph/*.txt', { iterations: ITERATIONS, partitions: 4, onIteration: (_, t) => { seconds.push(t) } })
    expect(seconds).toHaveLength(ITERATIONS)
    // While they are kept, the final ranks are a dataset of the cluster; links are freed already.
    const kept = await s.datasets()
    expect(kept.map(d => d.name)).toEqual([expect.stringMatching(/^ranks10\./)])
    expectExact(await ranks.collect())
    const jobs = await jobsSince(s, before)
    expect(jobs.map(j => j.name)).toEqual([...Array.from({ length: ITERATIONS }, (_, i) => `pagerank iteration ${i + 1}`), expect.any(String)])
    // Only the first iteration's job has a stage that reads the input files ("edges").
    expect(jobs.map(j => j.nodes.includes('edges'))).toEqual([true, ...Array(ITERATIONS).fill(false)])
    expect(jobs.slice(1, ITERATIONS).every(j => j.nodes.includes('links'))).toBe(true)
    await ranks.unpersist()
    expect(await s.datasets()).toEqual([])
    await expectFreed(s)
  }, 120_000)

  test('uncached: the same ranks, links computed from the files in every iteration', async () => {
    const s = ms!
    const before = new Set((await s.client.jobs()).map(j => j.job_id))
    const ranks = await pageRank(s, 'graph/*.txt', { iterations: 3, cache: false, partitions: 4 })
    const jobs = await jobsSince(s, before)
    expect(jobs.map(j => j.nodes.includes('edges'))).toEqual([true, true, true])
    const want = reference
    reference = plainPageRank(readdirSync(join(data, 'graph')).sort().flatMap(f => readFileSync(join(data, 'graph', f), 'utf8').split('\n')), 3)
    try { expectExact(await ranks.collect()) } finally { reference = want }
    await ranks.unpersist()
    expect(await s.datasets()).toEqual([])
  }, 120_000)
})

test('the example as a program: --timings JSON, and output whose W5 fingerprint equals ref-pagerank.mjs', async () => {
  const timings = join(data, 'timings.json')
  const r = await runCommand([process.execPath, join(ROOT, 'examples/pagerank.ts'), '--workers', '2', '--data-dir', data,
    '--input', 'graph/*.txt', '--out', 'out/pr', '--iterations', '3', '--timings', timings], { cwd: ROOT, timeoutMs: 90_000 })
  expect(r.code).toBe(0)
  const t = JSON.parse(readFileSync(timings, 'utf8')) as { cached: boolean; iterations: { i: number; seconds: number }[]; total_s: number }
  expect(t.cached).toBe(true)
  expect(t.iterations.map(x => x.i)).toEqual([1, 2, 3])
  expect(t.iterations.every(x => x.seconds > 0 && x.seconds <= t.total_s)).toBe(true)
  const parts = readdirSync(join(data, 'out', 'pr')).filter(f => f.startsWith('part-')).map(f => join(data, 'out', 'pr', f))
  const ours = await runCommand(['bash', join(ROOT, 'bench/gen/verify.sh'), 'W5', ...parts], { timeoutMs: 30_000 })
  const graph = readdirSync(join(data, 'graph')).sort().map(f => join(data, 'graph', f))
  const ref = await runCommand([process.execPath, join(ROOT, 'bench/gen/ref-pagerank.mjs'), '--iterations', '3', '--out', join(data, 'ref.tsv'), ...graph], { timeoutMs: 30_000 })
  expect(ours.stdout).toMatch(/^nodes=\d+ sum=[\d.]+ top100=[0-9a-f]{64}$/m)
  expect(ours.stdout.trim()).toBe(ref.stdout.trim())
}, 120_000)

/** Every worker reports no cached bytes (as of a heartbeat after the delete). */
async function expectFreed(s: Session): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const ws = await s.client.workers()
    const left = ws.reduce((n, w) => n + (w.cached_memory_bytes ?? 0) + (w.cached_disk_bytes ?? 0), 0)
    if (left === 0) return
    if (Date.now() > deadline) expect(left).toBe(0)
    await new Promise(r => setTimeout(r, 200))
  }
}
