// Caching on random DAGs (test/support/random-dag.ts: branches, unions, joins of a source with
// itself, wide after wide, sorts, functions that mutate their records), each non-sink node cached at
// a random level or not, on a real 2-worker cluster: every result equals the sequential
// interpreter's, which knows nothing of caching. MINISPARK_CACHE_SEEDS=N runs N seeds (default 12)
// from MINISPARK_CACHE_FIRST_SEED (default 7000).
import { afterAll, beforeAll, expect, test } from 'bun:test'
import type { NodeSpec } from '../../src/api/jobs'
import { killAll, startCluster, tempDir, type Cluster } from '../support/cluster'
import { seeded } from '../support/oracle'
import { generate, problemsOf, writeSources, type Pair } from '../support/random-dag'

const SEEDS = Number(process.env.MINISPARK_CACHE_SEEDS ?? 12)
const FIRST_SEED = Number(process.env.MINISPARK_CACHE_FIRST_SEED ?? 7000)
const SINKS = new Set(['write_text', 'write_jsonl', 'collect', 'count'])
const LEVELS = ['memory', 'memory_and_disk', 'disk'] as const

let c: Cluster | undefined
let data = ''
let sources: Record<string, Pair[]> = {}

beforeAll(async () => {
  data = tempDir('ms-cache-random-')
  sources = writeSources(data, 'prop')
  c = await startCluster({ workers: 2, slots: 2, dataDir: data })
}, 60_000)
afterAll(async () => { await c?.stop(); killAll() })

test(`${SEEDS} random DAGs with cached nodes equal the interpreter`, async () => {
  const failures: string[] = []
  let cachedNodes = 0
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    const cs = generate(seed, { sourceDir: 'prop', sources, outDir: `out/cache-${seed}`, mutate: seed % 2 === 0 })
    const r = seeded(seed)
    const nodes: NodeSpec[] = cs.job.nodes.map(n => {
      if (SINKS.has(n.op) || !r.chance(0.5)) return n
      cachedNodes++
      return { ...n, cache: r.pick(LEVELS) }
    })
    const id = await c!.client.submit({ ...cs.job, nodes })
    const status = await c!.client.waitDone(id, { timeoutMs: 90_000, pollMs: 50 })
    const result = status.state === 'SUCCEEDED' ? await c!.client.result(id) : null
    const problems = problemsOf(cs, data, status, result)
    if (problems.length > 0) failures.push(`seed ${seed}: ${problems.join('; ')}\n${JSON.stringify(nodes)}`)
  }
  expect(cachedNodes).toBeGreaterThan(SEEDS)
  expect(failures).toEqual([])
}, 600_000)
