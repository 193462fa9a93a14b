// Lost persisted partitions recomputed from their lineage, on a real local cluster: job A persists
// word counts (through a shuffle) on 2 workers; the worker holding some partitions is SIGKILLed
// before job B reads them, or while it does; job B is exact against a plain loop, and only the lost
// partitions' persist tasks ran again (after the whole map stage, which every reduce partition
// needs); the dataset is whole again for later jobs. An input changed since it was persisted fails
// job B naming the dataset and the file; a memory-level block dropped under pressure is recomputed.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { appendFileSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest, JobStatus, TaskInfo } from '../../src/api/jobs'
import type { DatasetInfo } from '../../src/api/datasets'
import { killAll, removeTempDir, spawnRoleProc, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'
import { seeded } from '../support/oracle'

let dataDir = ''
const LINES = new Map<string, string[]>()

function writeText(dir: string, seed: number): void {
  mkdirSync(join(dataDir, dir))
  const r = seeded(seed)
  const vocab = Array.from({ length: 400 }, (_, i) => `w${i.toString(36)}`)
  const all: string[] = []
  for (let f = 0; f < 3; f++) {
    const lines: string[] = []
    for (let i = 0; i < 3000; i++) lines.push(Array.from({ length: 1 + r.int(10) }, () => r.pick(vocab)).join(' '))
    all.push(...lines)
    writeFileSync(join(dataDir, dir, `part-${f}.txt`), lines.join('\n') + '\n')
  }
  LINES.set(dir, all)
}

beforeAll(() => {
  dataDir = tempDir('ms-lineage-data-')
  writeText('before', 11)
  writeText('during', 12)
  writeText('changed', 13)
  writeText('same-size', 15)
})
afterAll(() => { killAll(); removeTempDir(dataDir) })

function plainCounts(dir: string): Map<string, number> {
  const m = new Map<string, number>()
  for (const l of LINES.get(dir)!) for (const w of l.split(' ')) m.set(w, (m.get(w) ?? 0) + 1)
  return m
}

const persistCounts = (dir: string, name: string): JobRequest => ({
  partitions: 4,
  nodes: [
    { id: 'lines', op: 'read_text', path: dir },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'keep', op: 'persist', input: 'counts', name },
    // Another sink of the persisting job, in the stage that writes the dataset: never run again.
    { id: 'n', op: 'count', input: 'counts' },
  ],
})
// `slow`: each record waits a little, so that a kill lands while the job reads.
const readCounts = (name: string, slowMs = 0): JobRequest => ({
  nodes: [
    { id: 'ds', op: 'read_dataset', name },
    { id: 'same', op: 'map', input: 'ds', fn: slowMs === 0 ? 'r => r' : `r => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${slowMs}); return r }` },
    { id: 'c', op: 'collect', input: 'same' },
  ],
})

type Run = { id: string; status: JobStatus; values: [string, number][]; tasks: TaskInfo[] }
async function finish(c: Cluster, id: string): Promise<Run> {
  const status = await c.client.waitDone(id, { timeoutMs: 60_000 })
  if (status.state !== 'SUCCEEDED') throw new Error(`job ${id} ${status.state}: ${JSON.stringify(status.error)}\n${c.logs().slice(-4000)}`)
  const result = await c.client.result(id)
  const values = result.sinks.c === undefined ? [] : (result.sinks.c as { values: [string, number][] }).values
  return { id, status, values, tasks: await c.client.tasks(id) }
}
const run = async (c: Cluster, job: JobRequest): Promise<Run> => finish(c, await c.client.submit(job))

async function dataset(c: Cluster, name: string): Promise<DatasetInfo> {
  const r = await fetch(`${c.url}/datasets/${name}`, { signal: AbortSignal.timeout(10_000) })
  return await r.json() as DatasetInfo
}

async function kill(c: Cluster, worker: string): Promise<void> {
  const proc = c.workers.find(w => w.name === worker)!.proc
  proc.kill('SIGKILL')
  await proc.exited
}

/** The attempts of job B's stages that recompute `name`: the whole map stage, and in the stage that
 *  writes the dataset, one per lost partition. */
function checkRecomputeTasks(b: Run, name: string, lost: number[]): void {
  const added = b.status.stages.filter(s => s.recomputes === name)
  expect(added).toHaveLength(2)
  const [map, write] = added as [JobStatus['stages'][number], JobStatus['stages'][number]]
  expect(map.node_ids).toEqual(['lines', 'words', 'pairs'])
  expect(write.node_ids).toEqual(['counts'])
  const ok = (stage: number) => b.tasks.filter(t => t.stage_id === stage && t.state === 'SUCCEEDED')
  expect(ok(map.stage_id).map(t => t.partition).sort()).toEqual([0, 1, 2])
  expect(ok(write.stage_id).map(t => t.partition).sort()).toEqual(lost)
  expect(b.tasks.filter(t => t.stage_id === write.stage_id).every(t => lost.includes(t.partition))).toBe(true)
}

describe('lost persisted partitions, recomputed from the lineage', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 3, slots: 1, dataDir, heartbeatTimeout: '2s', heartbeatInterval: '250ms' }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('the holder SIGKILLed before the reading job: only its partitions are recomputed, exact, and the dataset is whole again', async () => {
    const want = plainCounts('before')
    const a = await run(c, persistCounts('before', 'wc-before'))
    const ds = await dataset(c, 'wc-before')
    expect(ds).toMatchObject({ state: 'AVAILABLE', partitions: 4, records: want.size, recomputable: true })
    const victim = ds.locations[0]!.worker_id
    const lost = ds.locations.filter(l => l.worker_id === victim).map(l => l.partition).sort()
    await kill(c, victim)
    await waitUntil('the holder DEAD', async () => (await c.client.workers()).find(w => w.worker_id === victim)?.status === 'DEAD' ? true : undefined, { timeoutMs: 10_000 })
    expect(await dataset(c, 'wc-before')).toMatchObject({ state: 'LOST', lost_partitions: lost })

    const b = await run(c, readCounts('wc-before'))
    expect(new Map(b.values)).toEqual(want)
    expect(b.values).toHaveLength(want.size)
    checkRecomputeTasks(b, 'wc-before', lost)
    // Kept as the dataset's partitions again, on live workers.
    const after = await dataset(c, 'wc-before')
    expect(after).toMatchObject({ state: 'AVAILABLE', job_id: a.id, partitions: 4, records: want.size, recomputed_partitions: lost })
    expect(after.lost_partitions).toBeUndefined()
    for (const l of after.locations) expect(l.worker_id).not.toBe(victim)
    // A later job reads them: nothing recomputed, each partition read where it now is.
    const later = await run(c, readCounts('wc-before'))
    expect(new Map(later.values)).toEqual(want)
    expect(later.status.stages).toHaveLength(1)
    for (const l of after.locations) expect(later.tasks.find(t => t.partition === l.partition && t.state === 'SUCCEEDED')!.worker_id).toBe(l.worker_id)
  }, 90_000)

  test('the holder SIGKILLed while the reading job runs: its partitions are recomputed and the job is exact', async () => {
    const want = plainCounts('during')
    await run(c, persistCounts('during', 'wc-during'))
    const ds = await dataset(c, 'wc-during')
    const live = (await c.client.workers()).filter(w => w.status !== 'DEAD').map(w => w.worker_id)
    const victim = ds.locations.find(l => live.includes(l.worker_id))!.worker_id
    const lost = ds.locations.filter(l => l.worker_id === victim).map(l => l.partition).sort()
    const id = await c.client.submit(readCounts('wc-during', 10))
    await waitUntil('job B reading on the holder', async () =>
      (await c.client.tasks(id)).some(t => t.worker_id === victim && t.state === 'RUNNING') ? true : undefined, { timeoutMs: 20_000 })
    await kill(c, victim)
    const b = await finish(c, id)
    expect(new Map(b.values)).toEqual(want)
    expect(b.values).toHaveLength(want.size)
    checkRecomputeTasks(b, 'wc-during', lost)
    expect(await dataset(c, 'wc-during')).toMatchObject({ state: 'AVAILABLE', records: want.size, recomputed_partitions: lost })
  }, 90_000)
})

describe('a lineage whose input changed', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 1, dataDir, heartbeatTimeout: '2s', heartbeatInterval: '250ms' }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('an input file changed since, then a holder lost: the reading job fails at once naming the dataset and the file', async () => {
    await run(c, persistCounts('changed', 'wc-changed'))
    appendFileSync(join(dataDir, 'changed', 'part-1.txt'), 'one more line\n')
    // Nothing lost yet: the dataset is read as it was kept, the change does not matter.
    const ok = await run(c, readCounts('wc-changed'))
    expect(new Map(ok.values)).toEqual(plainCounts('changed'))
    const ds = await dataset(c, 'wc-changed')
    const victim = ds.locations[0]!.worker_id
    const lost = ds.locations.filter(l => l.worker_id === victim).map(l => l.partition).sort()
    await kill(c, victim)
    await waitUntil('the holder DEAD', async () => (await c.client.workers()).find(w => w.worker_id === victim)?.status === 'DEAD' ? true : undefined, { timeoutMs: 10_000 })
    const id = await c.client.submit(readCounts('wc-changed'))
    const status = await c.client.waitDone(id, { timeoutMs: 20_000 })
    expect(status.state).toBe('FAILED')
    expect(status.error!.message).toContain(`DATASET_LOST: dataset "wc-changed" partition${lost.length === 1 ? '' : 's'} ${lost.join(', ')} cannot be recomputed: input file "changed/part-1.txt" changed since it was persisted`)
    // Nothing was read, nothing recomputed.
    expect((await c.client.tasks(id)).filter(t => t.state === 'SUCCEEDED')).toHaveLength(0)
    expect(await dataset(c, 'wc-changed')).toMatchObject({ state: 'LOST', lost_partitions: lost })
  }, 60_000)

  test('an input file rewritten to the same size since: the reading job fails naming it too, never reading other data silently', async () => {
    await run(c, persistCounts('same-size', 'wc-same'))
    const file = join(dataDir, 'same-size', 'part-2.txt')
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replace(/w/g, 'v'))
    utimesSync(file, new Date(), new Date(Date.now() + 5_000))
    expect(readFileSync(file).length).toBe(Buffer.byteLength(text))
    const ds = await dataset(c, 'wc-same')
    const live = (await c.client.workers()).filter(w => w.status !== 'DEAD').map(w => w.worker_id)
    const held = ds.locations.filter(l => live.includes(l.worker_id))
    expect(held.length).toBeGreaterThan(0)
    // The holder restarts under its id: a new incarnation, which dropped every block it held.
    const victim = held[0]!.worker_id
    const lost = ds.locations.filter(l => l.worker_id === victim).map(l => l.partition).sort()
    const port = (await c.client.workers()).find(w => w.worker_id === victim)!.address.split(':')[1]!
    await kill(c, victim)
    const again = await spawnRoleProc(`${victim}-again`, ['worker', '--master', c.url, '--port', port, '--id', victim, '--slots', '1', '--data-dir', dataDir,
      '--work-dir', join(c.dir, 'work'), '--heartbeat-interval', '250ms'])
    c.procs.push(again)
    await waitUntil('the holder back as a new incarnation', async () => (await dataset(c, 'wc-same')).state === 'LOST' ? true : undefined, { timeoutMs: 15_000 })
    const id = await c.client.submit(readCounts('wc-same'))
    const status = await c.client.waitDone(id, { timeoutMs: 20_000 })
    expect(status.state).toBe('FAILED')
    expect(status.error!.message).toContain(`DATASET_LOST: dataset "wc-same" partition${lost.length === 1 ? '' : 's'} ${lost.join(', ')} cannot be recomputed: input file "same-size/part-2.txt" changed since it was persisted (modified at`)
  }, 60_000)
})

describe('a memory-level dataset whose blocks were dropped under memory pressure', () => {
  let c: Cluster
  beforeAll(async () => {
    writeText('mem', 14)
    c = await startCluster({ workers: 2, slots: 1, dataDir, maxMem: '8MiB', heartbeatInterval: '250ms' })
  }, 30_000)
  afterAll(async () => { await c.stop() })

  test('the dropped partitions are recomputed by the job that reads them, exact', async () => {
    const want = plainCounts('mem')
    await run(c, { ...persistCounts('mem', 'wc-mem'), nodes: persistCounts('mem', 'wc-mem').nodes.map(n => n.op === 'persist' ? { ...n, level: 'memory' } : n) })
    const kept = await dataset(c, 'wc-mem')
    expect(kept).toMatchObject({ level: 'memory', state: 'AVAILABLE', bytes_disk: 0 })
    expect(kept.locations.every(l => l.where === 'memory')).toBe(true)
    // Another job's cached records, several times the budget: the least recently used go first,
    // and the dataset's blocks are the oldest.
    const heavy = await run(c, {
      partitions: 2, split_bytes: 16 * 1024,
      nodes: [
        { id: 'lines', op: 'read_text', path: 'mem' },
        { id: 'recs', op: 'map', input: 'lines', fn: 'l => ({ line: l, pad: l.repeat(120) })', cache: 'memory' },
        { id: 'k', op: 'key_by', input: 'recs', fn: 'r => r.line.length' },
        { id: 'g', op: 'reduce_by_key', input: 'k', fn: '(a, b) => a' },
        { id: 'n', op: 'count', input: 'recs' },
        { id: 'm', op: 'count', input: 'g' },
      ],
    })
    expect(heavy.status.state).toBe('SUCCEEDED')
    const b = await run(c, readCounts('wc-mem'))
    expect(new Map(b.values)).toEqual(want)
    expect(b.values).toHaveLength(want.size)
    const after = await dataset(c, 'wc-mem')
    // Dropped and recomputed: the case this test is about happened.
    expect(after.recomputed_partitions?.length ?? 0).toBeGreaterThan(0)
    expect(b.status.stages.filter(s => s.recomputes === 'wc-mem').length).toBeGreaterThan(0)
    expect(after).toMatchObject({ state: 'AVAILABLE', records: want.size })
  }, 90_000)
})

describe('a sorted dataset', () => {
  let c: Cluster
  beforeAll(async () => {
    writeText('sorted', 16)
    c = await startCluster({ workers: 2, slots: 1, dataDir, heartbeatTimeout: '2s', heartbeatInterval: '250ms' })
  }, 30_000)
  afterAll(async () => { await c.stop() })

  test('a lost range partition is recomputed with the bounds it was cut by: the dataset read in order is the sorted input, each line once', async () => {
    const want = [...LINES.get('sorted')!].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
    await run(c, { nodes: [
      { id: 'lines', op: 'read_text', path: 'sorted' },
      { id: 's', op: 'sort', input: 'lines', key: 'l => l', partitions: 3 },
      { id: 'keep', op: 'persist', input: 's', name: 'sorted' },
    ] })
    const ds = await dataset(c, 'sorted')
    const victim = ds.locations[0]!.worker_id
    const lost = ds.locations.filter(l => l.worker_id === victim).map(l => l.partition).sort()
    await kill(c, victim)
    const id = await c.client.submit({ nodes: [{ id: 'ds', op: 'read_dataset', name: 'sorted' }, { id: 'c', op: 'collect', input: 'ds', limit: 1_000_000 }] })
    const b = await finish(c, id)
    expect(b.values as unknown as string[]).toEqual(want)
    const write = b.status.stages.find(s => s.recomputes === 'sorted' && s.node_ids[0] === 's')!
    expect(b.tasks.filter(t => t.stage_id === write.stage_id && t.state === 'SUCCEEDED').map(t => t.partition).sort()).toEqual(lost)
    // No sample stage ran again: the bounds came with the lineage.
    expect(b.status.stages.filter(s => s.recomputes === 'sorted').map(s => s.node_ids.some(n => n.includes('#sample')))).not.toContain(true)
  }, 60_000)
})
