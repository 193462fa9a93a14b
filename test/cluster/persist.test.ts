// Datasets persisted across jobs, on a real local cluster: job A persists word counts, job B reads
// them with read_dataset on the workers that hold them (no input file read) and is exact against a
// plain loop; GET /datasets tells where each partition is; names are checked at submit; the catalog
// survives a master restart; DELETE frees the memory and files on every worker.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Database } from 'bun:sqlite'
import type { JobRequest } from '../../src/api/jobs'
import type { DatasetInfo } from '../../src/api/datasets'
import { MasterClient } from '../../src/api/client'
import { killAll, removeTempDir, spawnRoleProc, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'
import { seeded } from '../support/oracle'

let dataDir = ''
const LINES: string[] = []

beforeAll(() => {
  dataDir = tempDir('ms-persist-data-')
  mkdirSync(join(dataDir, 'text'))
  const r = seeded(8)
  const vocab = Array.from({ length: 400 }, (_, i) => `w${i.toString(36)}`)
  for (let f = 0; f < 3; f++) {
    const lines: string[] = []
    for (let i = 0; i < 4000; i++) lines.push(Array.from({ length: 1 + r.int(10) }, () => r.pick(vocab)).join(' '))
    LINES.push(...lines)
    writeFileSync(join(dataDir, 'text', `part-${f}.txt`), lines.join('\n') + '\n')
  }
})
afterAll(() => { killAll(); removeTempDir(dataDir) })

function plainCounts(): Map<string, number> {
  const m = new Map<string, number>()
  for (const l of LINES) for (const w of l.split(' ')) m.set(w, (m.get(w) ?? 0) + 1)
  return m
}

const persistCounts = (name: string, extra: { level?: 'memory' | 'memory_and_disk' | 'disk'; replace?: boolean } = {}): JobRequest => ({
  partitions: 4,
  nodes: [
    { id: 'lines', op: 'read_text', path: 'text' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'keep', op: 'persist', input: 'counts', name, ...extra },
    // Another consumer of the persisted node, in the same stage: it gets every record too.
    { id: 'n', op: 'count', input: 'counts' },
  ],
})
const readCounts = (name: string): JobRequest => ({
  nodes: [{ id: 'ds', op: 'read_dataset', name }, { id: 'c', op: 'collect', input: 'ds' }],
})

async function run(c: { client: MasterClient; logs(): string }, job: JobRequest) {
  const id = await c.client.submit(job)
  const status = await c.client.waitDone(id, { timeoutMs: 60_000 })
  if (status.state !== 'SUCCEEDED') throw new Error(`job ${id} ${status.state}: ${JSON.stringify(status.error)}\n${c.logs().slice(-4000)}`)
  return { id, status, result: await c.client.result(id), tasks: await c.client.tasks(id) }
}

async function get(url: string, path: string, method = 'GET'): Promise<{ status: number; body: unknown }> {
  const r = await fetch(url + path, { method, signal: AbortSignal.timeout(10_000) })
  return { status: r.status, body: await r.json() }
}

/** Every regular file under a folder. */
function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...filesUnder(p))
    else if (statSync(p).isFile()) out.push(p)
  }
  return out
}

describe('persisted datasets', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 2, dataDir, heartbeatTimeout: '3s', heartbeatInterval: '300ms' }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('persist, then read in a later job on the holders, exact; catalog fields; names checked at submit; restart; delete', async () => {
    const want = plainCounts()
    const a = await run(c, persistCounts('wc'))
    expect(a.result.sinks.n).toEqual({ op: 'count', value: want.size })
    // The persisting job's end does not free the blocks: they are listed, with where they are.
    const listed = (await get(c.url, '/datasets')).body as DatasetInfo[]
    expect(listed).toHaveLength(1)
    const ds = listed[0]!
    expect(ds).toMatchObject({ name: 'wc', job_id: a.id, level: 'memory_and_disk', state: 'AVAILABLE', partitions: 4, records: want.size })
    expect(ds.bytes_memory + ds.bytes_disk).toBeGreaterThan(0)
    expect(ds.locations.length).toBeGreaterThan(0)
    for (const l of ds.locations) expect(c.workerIds).toContain(l.worker_id)
    expect((await get(c.url, '/datasets/wc')).body).toEqual(ds)
    // The workers count them as cached bytes (as of their next heartbeat).
    await waitUntil('the workers to report the kept bytes', async () => {
      const ws = await c.client.workers()
      return ws.reduce((n, w) => n + (w.cached_memory_bytes ?? 0) + (w.cached_disk_bytes ?? 0), 0) === ds.bytes_memory + ds.bytes_disk ? true : undefined
    }, { timeoutMs: 5_000 })

    // Job B: exact, one task per partition, each on its holder, and no input file read.
    const b = await run(c, readCounts('wc'))
    expect(new Map((b.result.sinks.c as { values: [string, number][] }).values)).toEqual(want)
    expect(b.status.stages).toHaveLength(1)
    const bt = b.tasks.filter(t => t.state === 'SUCCEEDED')
    expect(bt).toHaveLength(4)
    expect(bt.reduce((n, t) => n + t.records_in, 0)).toBe(want.size)   // counts, not lines
    for (const l of ds.locations) expect(bt.find(t => t.partition === l.partition)!.worker_id).toBe(l.worker_id)

    // Names are checked at submit.
    const unknown = await fetch(`${c.url}/jobs`, { method: 'POST', body: JSON.stringify(readCounts('nope')), headers: { 'content-type': 'application/json' } })
    expect(unknown.status).toBe(400)
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toContain('dataset "nope"')
    const again = await fetch(`${c.url}/jobs`, { method: 'POST', body: JSON.stringify(persistCounts('wc')), headers: { 'content-type': 'application/json' } })
    expect(again.status).toBe(400)
    expect(((await again.json()) as { error: { message: string } }).error.message).toContain('"replace": true')
    // Replaced (at level disk): the new one is read, and the old one's blocks are freed.
    const r = await run(c, persistCounts('wc', { level: 'disk', replace: true }))
    const replaced = (await get(c.url, '/datasets/wc')).body as DatasetInfo
    expect(replaced).toMatchObject({ job_id: r.id, level: 'disk', bytes_memory: 0, records: want.size })
    await waitUntil('the old blocks freed', async () => {
      const ws = await c.client.workers()
      return ws.reduce((n, w) => n + (w.cached_memory_bytes ?? 0), 0) === 0 && ws.reduce((n, w) => n + (w.cached_disk_bytes ?? 0), 0) === replaced.bytes_disk ? true : undefined
    }, { timeoutMs: 10_000 })

    // The master restarts on its state file: the catalog is kept, and a later job still reads it.
    const port = new URL(c.url).port
    c.master.proc.kill('SIGKILL')
    await c.master.proc.exited
    const m2 = await spawnRoleProc('master-2', ['master', '--port', port, '--state-db', join(c.dir, 'm.db'), '--heartbeat-timeout', '3s'])
    c.procs.push(m2)
    const client = new MasterClient(m2.url)
    await waitUntil('both workers back', async () => (await client.workers()).filter(w => w.status !== 'DEAD').length === 2 ? true : undefined, { timeoutMs: 15_000 })
    // A few heartbeats later (each lists the blocks held), it is still whole.
    await Bun.sleep(1_000)
    expect((await get(m2.url, '/datasets/wc')).body).toMatchObject({ name: 'wc', job_id: r.id, state: 'AVAILABLE', records: want.size })
    const c2 = { client, logs: () => c.logs() }
    const b2 = await run(c2, readCounts('wc'))
    expect(new Map((b2.result.sinks.c as { values: [string, number][] }).values)).toEqual(want)

    // DELETE frees memory and files on every worker; a second one is a 404.
    expect((await get(m2.url, '/datasets/wc', 'DELETE')).status).toBe(200)
    expect((await get(m2.url, '/datasets/wc', 'DELETE')).status).toBe(404)
    expect((await get(m2.url, '/datasets/wc')).status).toBe(404)
    expect((await get(m2.url, '/datasets')).body).toEqual([])
    await waitUntil('no cached bytes and no file left in the work dirs', async () => {
      const ws = await client.workers()
      const bytes = ws.reduce((n, w) => n + (w.cached_memory_bytes ?? 0) + (w.cached_disk_bytes ?? 0), 0)
      return bytes === 0 && filesUnder(join(c.dir, 'work')).length === 0 ? true : undefined
    }, { timeoutMs: 10_000 })
    const gone = await fetch(`${m2.url}/jobs`, { method: 'POST', body: JSON.stringify(readCounts('wc')), headers: { 'content-type': 'application/json' } })
    expect(gone.status).toBe(400)
  }, 120_000)
})

describe('a join of two persisted datasets', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 1, dataDir }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('the small one is broadcast (no shuffle of the large one), exact either way', async () => {
    const want = plainCounts()
    await run(c, persistCounts('all'))
    // A small dataset: the counts of the words that start with "w1", doubled.
    await run(c, { nodes: [
      { id: 'ds', op: 'read_dataset', name: 'all' },
      { id: 'few', op: 'filter', input: 'ds', fn: 'kv => kv[0].startsWith("w1")' },
      { id: 'twice', op: 'map_values', input: 'few', fn: 'n => n * 2' },
      { id: 'keep', op: 'persist', input: 'twice', name: 'few' },
    ] })
    const join = (extra: Partial<JobRequest>): JobRequest => ({ ...extra, nodes: [
      { id: 'big', op: 'read_dataset', name: 'all' },
      { id: 'small', op: 'read_dataset', name: 'few' },
      { id: 'j', op: 'join', inputs: ['big', 'small'] },
      { id: 'c', op: 'collect', input: 'j' },
    ] })
    const expected: [string, unknown][] = [...want].filter(([w]) => w.startsWith('w1')).map(([w, n]): [string, unknown] => [w, [n, 2 * n]]).sort()
    expect(expected.length).toBeGreaterThan(5)
    const byKey = (v: unknown) => [...(v as { values: [string, unknown][] }).values].sort()
    const broadcast = await run(c, join({}))
    expect(byKey(broadcast.result.sinks.c)).toEqual(expected)
    // Two stages (the small dataset written whole, the large one read where it is and joined),
    // not a third that shuffles both sides.
    expect(broadcast.status.stages).toHaveLength(2)
    const shuffled = await run(c, join({ broadcast_bytes: 0 }))
    expect(byKey(shuffled.result.sinks.c)).toEqual(expected)
    expect(shuffled.status.stages).toHaveLength(3)
  }, 90_000)
})

describe('a persisted partition lost', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 1, dataDir, heartbeatTimeout: '2s', heartbeatInterval: '250ms' }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('its holder SIGKILLed: GET /datasets says LOST; a restarted master kept the lineage and recomputes it; one persisted without a lineage fails the reader at once naming the partitions', async () => {
    const want = plainCounts()
    await run(c, persistCounts('lost-one'))
    await run(c, persistCounts('old-one'))
    // The master restarts; "old-one" is made a dataset of a version that recorded no lineage.
    const port = new URL(c.url).port
    c.master.proc.kill('SIGKILL')
    await c.master.proc.exited
    const db = new Database(join(c.dir, 'm.db'))
    const row = db.query('SELECT record FROM datasets WHERE name = ?').get('old-one') as { record: string }
    const { lineage: _, ...old } = JSON.parse(row.record) as { lineage?: unknown }
    db.run('UPDATE datasets SET record = ? WHERE name = ?', [JSON.stringify(old), 'old-one'])
    db.close()
    const m2 = await spawnRoleProc('master-2', ['master', '--port', port, '--state-db', join(c.dir, 'm.db'), '--heartbeat-timeout', '2s'])
    c.procs.push(m2)
    const client = new MasterClient(m2.url)
    await waitUntil('both workers back', async () => (await client.workers()).filter(w => w.status !== 'DEAD').length === 2 ? true : undefined, { timeoutMs: 15_000 })
    const c2 = { client, logs: () => c.logs() }

    const ds = (await get(m2.url, '/datasets/old-one')).body as DatasetInfo
    expect(ds.recomputable).toBe(false)
    expect((await get(m2.url, '/datasets/lost-one')).body).toMatchObject({ recomputable: true })
    const victim = ds.locations[0]!.worker_id
    const held = ds.locations.filter(l => l.worker_id === victim).map(l => l.partition).sort()
    const proc = c.workers.find(w => w.name === victim)!.proc
    proc.kill('SIGKILL')
    await proc.exited
    await waitUntil('the holder DEAD', async () => (await client.workers()).find(w => w.worker_id === victim)?.status === 'DEAD' ? true : undefined, { timeoutMs: 10_000 })
    const after = (await get(m2.url, '/datasets/old-one')).body as DatasetInfo
    expect(after.state).toBe('LOST')
    expect(after.lost_partitions).toEqual(held)
    const id = await client.submit(readCounts('old-one'))
    const status = await client.waitDone(id, { timeoutMs: 10_000 })
    expect(status.state).toBe('FAILED')
    expect(status.error!.message).toContain(`dataset "old-one" lost partition${held.length === 1 ? '' : 's'} ${held.join(', ')} `)
    // Nothing was read: no task of it ran.
    expect((await client.tasks(id)).filter(t => t.state === 'SUCCEEDED')).toHaveLength(0)
    // The one with a lineage is recomputed, exact (the lineage came through the restart).
    expect((await get(m2.url, '/datasets/lost-one')).body).toMatchObject({ state: 'LOST' })
    const b = await run(c2, readCounts('lost-one'))
    expect(new Map((b.result.sinks.c as { values: [string, number][] }).values)).toEqual(want)
    expect((await get(m2.url, '/datasets/lost-one')).body).toMatchObject({ state: 'AVAILABLE', records: want.size })
  }, 90_000)
})
