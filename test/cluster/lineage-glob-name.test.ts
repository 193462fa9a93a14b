// A persisted dataset whose input file has a glob character in its name ("part[1].txt"): the file
// is rewritten to the same size (other words, a later mtime) after the dataset was persisted, then
// the holder of some of its partitions restarts as a new incarnation (its blocks are gone). A job
// reading the dataset must not recompute the lost partitions from the rewritten file and report a
// wrong result as SUCCEEDED: it either fails naming the dataset and the file, or is exact against
// the counts of the files as they were persisted.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest } from '../../src/api/jobs'
import type { DatasetInfo } from '../../src/api/datasets'
import { killAll, removeTempDir, spawnRoleProc, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'
import { seeded } from '../support/oracle'

let dataDir = ''
const LINES: string[] = []

beforeAll(() => {
  dataDir = tempDir('ms-lineage-glob-')
  mkdirSync(join(dataDir, 'brk'))
  const r = seeded(21)
  const vocab = Array.from({ length: 300 }, (_, i) => `w${i.toString(36)}`)
  for (let f = 0; f < 3; f++) {
    const lines: string[] = []
    for (let i = 0; i < 2000; i++) lines.push(Array.from({ length: 1 + r.int(8) }, () => r.pick(vocab)).join(' '))
    LINES.push(...lines)
    writeFileSync(join(dataDir, 'brk', `part[${f}].txt`), lines.join('\n') + '\n')
  }
})
afterAll(() => { killAll(); removeTempDir(dataDir) })

const persistJob: JobRequest = {
  partitions: 4,
  nodes: [
    { id: 'lines', op: 'read_text', path: 'brk' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'keep', op: 'persist', input: 'counts', name: 'wc-brk' },
  ],
}
const readJob: JobRequest = { nodes: [{ id: 'ds', op: 'read_dataset', name: 'wc-brk' }, { id: 'c', op: 'collect', input: 'ds' }] }

describe('a lineage input file whose name has a glob character', () => {
  let c: Cluster
  beforeAll(async () => { c = await startCluster({ workers: 2, slots: 1, dataDir, heartbeatTimeout: '2s', heartbeatInterval: '250ms' }) }, 30_000)
  afterAll(async () => { await c.stop() })

  test('rewritten to the same size since it was persisted: a lost partition is not recomputed from it silently', async () => {
    const want = new Map<string, number>()
    for (const l of LINES) for (const w of l.split(' ')) want.set(w, (want.get(w) ?? 0) + 1)
    const a = await c.client.waitDone(await c.client.submit(persistJob), { timeoutMs: 60_000 })
    expect(a.state).toBe('SUCCEEDED')

    // Same size, other words, modified later.
    const file = join(dataDir, 'brk', 'part[1].txt')
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replace(/w/g, 'v'))
    utimesSync(file, new Date(), new Date(Date.now() + 5_000))
    expect(readFileSync(file).length).toBe(Buffer.byteLength(text))

    const ds = await (await fetch(`${c.url}/datasets/wc-brk`, { signal: AbortSignal.timeout(10_000) })).json() as DatasetInfo
    const victim = ds.locations[0]!.worker_id
    const port = (await c.client.workers()).find(w => w.worker_id === victim)!.address.split(':')[1]!
    const proc = c.workers.find(w => w.name === victim)!.proc
    proc.kill('SIGKILL')
    await proc.exited
    const again = await spawnRoleProc(`${victim}-again`, ['worker', '--master', c.url, '--port', port, '--id', victim, '--slots', '1', '--data-dir', dataDir,
      '--work-dir', join(c.dir, 'work'), '--heartbeat-interval', '250ms'])
    c.procs.push(again)
    await waitUntil('the holder back as a new incarnation', async () => {
      const d = await (await fetch(`${c.url}/datasets/wc-brk`, { signal: AbortSignal.timeout(10_000) })).json() as DatasetInfo
      return d.state === 'LOST' ? true : undefined
    }, { timeoutMs: 15_000 })

    const id = await c.client.submit(readJob)
    const status = await c.client.waitDone(id, { timeoutMs: 30_000 })
    if (status.state === 'SUCCEEDED') {
      const values = ((await c.client.result(id)).sinks.c as { values: [string, number][] }).values
      // A success must be the dataset as it was persisted, not counts of the rewritten file.
      expect(new Map(values)).toEqual(want)
    } else {
      expect(status.state).toBe('FAILED')
      expect(status.error!.message).toContain('wc-brk')
      expect(status.error!.message).toContain('brk/part[1].txt')
    }
  }, 90_000)
})
