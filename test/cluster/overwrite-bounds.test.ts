// An overwrite never destroys the previous output before the new one is complete, even when a
// worker has just died; and a job the workers cannot take ends (refused or FAILED), never loops.
// Real processes, a real SIGKILL; outputs compared with a plain loop over the input.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest } from '../../src/api/jobs'
import { killAll, readParts, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'

const LINES = 2_000
let dataDir = ''
let lines: string[] = []
let c: Cluster

beforeAll(async () => {
  dataDir = tempDir('ms-overwrite-data-')
  mkdirSync(join(dataDir, 'in'))
  lines = Array.from({ length: LINES }, (_, i) => `line ${i} of the input`)
  writeFileSync(join(dataDir, 'in/a.txt'), lines.slice(0, LINES / 2).join('\n') + '\n')
  writeFileSync(join(dataDir, 'in/b.txt'), lines.slice(LINES / 2).join('\n') + '\n')
  c = await startCluster({ workers: 2, slots: 2, dataDir, heartbeatTimeout: '10s', heartbeatInterval: '300ms' })
}, 60_000)
afterAll(async () => { await c?.stop(); killAll() })

/** One stage: each line through `fn`, written to out/ow in two parts (one per input file). */
const job = (fn: string, o: Partial<JobRequest> = {}): JobRequest => ({
  name: 'overwrite', ...o,
  nodes: [
    { id: 'lines', op: 'read_text', path: 'in/*.txt' },
    { id: 'mapped', op: 'map', input: 'lines', fn },
    { id: 'out', op: 'write_text', input: 'mapped', path: 'out/ow', overwrite: true },
  ],
})

/** The output as readers see it now: its entries (a running job's _temporary folder aside), and its
 *  lines sorted. */
function snapshot(): { entries: string[]; lines: string[] } {
  const dir = join(dataDir, 'out/ow')
  return { entries: readdirSync(dir).filter(e => e !== '_temporary').sort(), lines: readParts(dir).sort() }
}
const expected = (f: (l: string) => string): string[] => lines.map(f).sort()

describe('overwrite with a worker just killed', () => {
  test('the previous output and its _SUCCESS stay whole until the new one is complete; a FAILED overwrite leaves it', async () => {
    // The first output, written before anything goes wrong.
    const first = await c.client.waitDone(await c.client.submit(job('l => "old " + l')), { timeoutMs: 30_000 })
    expect(first.state).toBe('SUCCEEDED')
    const old = snapshot()
    expect(old.entries).toEqual(['_SUCCESS', 'part-00000', 'part-00001'])
    expect(old.lines).toEqual(expected(l => `old ${l}`))

    // w2 dies; its lease (10 s) has not run out when the overwrite is submitted.
    c.workers[1]!.proc.kill('SIGKILL')
    await c.workers[1]!.proc.exited
    // Slow enough (about 1 ms a line) that the job is still running when the output is looked at.
    const slow = 'l => { const t = Date.now(); while (Date.now() - t < 1) {} return "new " + l }'
    let id: string | null = null
    try { id = await c.client.submit(job(slow)) } catch (e) { id = null; expect((e as Error).message).not.toBe('') }
    // Accepted or refused: nothing of the old output has gone yet.
    expect(snapshot()).toEqual(old)
    if (id !== null) {
      const done = await c.client.waitDone(id, { timeoutMs: 60_000 })
      expect(done.state).toBe('SUCCEEDED')
      const now = snapshot()
      expect(now.entries).toEqual(['_SUCCESS', 'part-00000', 'part-00001'])
      expect(now.lines).toEqual(expected(l => `new ${l}`))
    }
    const before = snapshot()

    // An overwrite that fails (a UDF error, one attempt) leaves the output as it was, with nothing staged left.
    const failing = await c.client.submit(job('l => { if (l.endsWith("1999 of the input")) throw new Error("bad line"); return "bad " + l }', { max_task_attempts: 1 }))
    const failed = await c.client.waitDone(failing, { timeoutMs: 30_000 })
    expect(failed.state).toBe('FAILED')
    await waitUntil('the failed job\'s staged parts removed', () => existsSync(join(dataDir, 'out/ow/_temporary', failing)) ? undefined : true, { timeoutMs: 10_000 })
    expect(snapshot()).toEqual(before)

    // A cancelled overwrite too.
    const cancelled = await c.client.submit(job(slow))
    await Bun.sleep(300)
    await c.client.cancel(cancelled)
    expect((await c.client.waitDone(cancelled, { timeoutMs: 30_000 })).state).toBe('CANCELLED')
    expect(snapshot()).toEqual(before)
  }, 120_000)
})

describe('a task spec larger than a worker takes', () => {
  test('a job just under the 16 MiB request limit whose specs would pass the worker\'s limit is refused or FAILED, never looped', async () => {
    // The request itself fits under the master's 16 MiB; each task spec adds the stage plan and ids.
    const req: JobRequest = { ...job('l => l'), params: { blob: '' } }
    req.nodes[2] = { id: 'out', op: 'write_text', input: 'mapped', path: 'out/big', overwrite: true }
    // 50 bytes under the master's limit; a spec carries the same params plus ids, split and plan (~0.5 KB more).
    req.params = { blob: 'x'.repeat(16 * 1024 * 1024 - JSON.stringify(req).length - 50) }
    expect(JSON.stringify(req).length).toBeLessThan(16 * 1024 * 1024)
    let id: string | null = null
    let refusal = ''
    try { id = await c.client.submit(req) } catch (e) { refusal = (e as Error).message }
    if (id === null) {
      expect(refusal).toContain('16 MiB')
      expect(refusal).toContain('stage 0')
      expect(refusal).toContain('params')
      return
    }
    const end = await c.client.waitDone(id, { timeoutMs: 20_000 })
    expect(end.state).toBe('FAILED')
    expect((await c.client.tasks(id)).length).toBeLessThan(20)
  }, 60_000)
})
