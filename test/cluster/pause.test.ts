// The PAUSED backpressure on a real worker: a task that holds far more memory than the budget
// accounts for (its own arrays) takes the process's resident size past the pause mark; the worker
// reports PAUSED in GET /workers, the master sends it no task meanwhile (another job's tasks wait,
// though a slot is free), and it comes back once the task is done.
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { killAll, removeTempDir, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'

let dataDir = ''
let c: Cluster

beforeAll(async () => {
  dataDir = tempDir('ms-pause-data-')
  writeFileSync(join(dataDir, 'one.txt'), 'x\n')
  writeFileSync(join(dataDir, 'many.txt'), Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n') + '\n')
  c = await startCluster({ workers: 1, slots: 2, dataDir, maxMem: '64MiB', heartbeatInterval: '3s' })
}, 30_000)
afterAll(async () => { await c?.stop(); killAll(); removeTempDir(dataDir) })

test('a worker past the pause mark on measured memory goes PAUSED, gets no task, and comes back', async () => {
  // 200 MiB touched and held for 4 s: the budget (64 MiB) never sees it, the resident size does.
  const hog = await c.client.submit({
    nodes: [
      { id: 'in', op: 'read_text', path: 'one.txt' },
      { id: 'big', op: 'map', input: 'in', fn: 'l => { const held = []; for (let i = 0; i < 20; i++) held.push(new Uint8Array(10 * 1048576).fill(1)); const t = Date.now(); while (Date.now() - t < 4000) {} return held.length }' },
      { id: 'n', op: 'count', input: 'big' },
    ],
  })
  const pausedAt = await waitUntil('w1 PAUSED in GET /workers', async () =>
    (await c.client.workers()).find(w => w.worker_id === 'w1')?.status === 'PAUSED' ? Date.now() : undefined, { timeoutMs: 15_000, pollMs: 50 })
  // A job submitted while the worker is PAUSED: one slot is free, but nothing goes there.
  const other = await c.client.submit({ split_bytes: 4096, nodes: [{ id: 'in', op: 'read_text', path: 'many.txt' }, { id: 'n', op: 'count', input: 'in' }] })
  await waitUntil('w1 back from PAUSED', async () =>
    (await c.client.workers()).find(w => w.worker_id === 'w1')?.status !== 'PAUSED' ? true : undefined, { timeoutMs: 20_000, pollMs: 50 })
  for (const id of [hog, other]) expect((await c.client.waitDone(id, { timeoutMs: 30_000 })).state).toBe('SUCCEEDED')
  expect((await c.client.result(other)).sinks.n).toEqual({ op: 'count', value: 2000 })
  const hogEnd = Math.max(...(await c.client.tasks(hog)).map(t => Date.parse(t.finished_at!)))
  const otherStarts = (await c.client.tasks(other)).map(t => Date.parse(t.started_at!))
  expect(otherStarts.length).toBeGreaterThan(0)
  // Launched only once the hog's task had ended and the worker had resumed (clock granularity aside).
  expect(Math.min(...otherStarts)).toBeGreaterThanOrEqual(hogEnd - 50)
  expect(hogEnd).toBeGreaterThan(pausedAt)
}, 60_000)
