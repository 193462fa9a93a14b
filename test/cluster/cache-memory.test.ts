// Kept data three times the memory budget: a dataset persisted at memory_and_disk on 2 workers at
// --max-mem 32MiB, about 3x the budget on each worker, moves to the work dir as it outgrows the
// budget (the workers report cached bytes on disk), a later job reads it exact against a plain
// loop, and every worker's peak resident size (VmHWM, reset before each job) stays under
// --max-mem + 200 MiB while it is written and while it is read; DELETE gives the memory back.
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import type { JobRequest } from '../../src/api/jobs'
import { spawnRole, type Role } from '../../src/roles/spawn'
import { ROOT, killAll, removeTempDir, tempDir, waitUntil } from '../support/cluster'
import { peakRssMiB, resetPeak } from '../support/memory-shapes'
import { seeded } from '../support/oracle'

const MAX_MEM_MIB = 32
/** Each input line becomes this many kept records of about its length. */
const COPIES = 32
const started: Role[] = []
let dataDir = ''
let client: MasterClient
let workers: Role[] = []
const LINES: string[] = []

beforeAll(async () => {
  dataDir = tempDir('ms-cache-mem-data-')
  mkdirSync(join(dataDir, 'in'))
  const r = seeded(5)
  const letters = 'abcdefghijklmnopqrstuvwxyz'
  // 4 files, 8 MB in all: kept as 32 copies, over 6x the budget over 2 workers (3x each).
  for (let f = 0; f < 4; f++) {
    const lines: string[] = []
    for (let bytes = 0; bytes < 2 * 1024 * 1024;) {
      const l = Array.from({ length: 40 + r.int(80) }, () => letters[r.int(26)]).join('')
      lines.push(l)
      bytes += l.length + 1
    }
    LINES.push(...lines)
    writeFileSync(join(dataDir, 'in', `part-${f}.txt`), lines.join('\n') + '\n')
  }
  const binary = join(tempDir('ms-cache-mem-bin-'), 'minispark')
  const build = Bun.spawnSync([process.execPath, join(ROOT, 'build.ts'), binary], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(build.stderr.toString())
  const dir = tempDir('ms-cache-mem-')
  const role = async (args: string[]): Promise<Role> => { const p = await spawnRole([binary, ...args], { stderr: 'pipe' }); started.push(p); return p }
  const master = await role(['master', '--port', '0', '--state-db', join(dir, 'm.db')])
  workers = await Promise.all(['a', 'b'].map(id => role(['worker', '--master', master.url, '--port', '0', '--id', id, '--slots', '2',
    '--max-mem', `${MAX_MEM_MIB}MiB`, '--data-dir', dataDir, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '300ms'])))
  client = new MasterClient(master.url)
  await waitUntil('2 workers', async () => (await client.workers()).length === 2 ? true : undefined, { timeoutMs: 15_000 })
}, 120_000)
afterAll(() => { for (const p of started) p.proc.kill('SIGKILL'); killAll(); removeTempDir(dataDir) })

async function run(job: JobRequest) {
  for (const w of workers) resetPeak(w.proc.pid)
  const id = await client.submit(job)
  const s = await client.waitDone(id, { timeoutMs: 150_000 })
  expect({ state: s.state, error: s.error }).toEqual({ state: 'SUCCEEDED', error: null })
  const peaks = workers.map(w => peakRssMiB(w.proc.pid))
  console.log(`${job.name}: peak RSS ${peaks.map(p => p.toFixed(0)).join(' / ')} MiB`)
  for (const p of peaks) expect(p).toBeLessThan(MAX_MEM_MIB + 200)
  return { id, result: await client.result(id) }
}

test('a dataset 3x the budget on each worker spills to the work dir, is read back exact, and RSS stays bounded', async () => {
  const kept = await run({ name: 'keep', partitions: 4, nodes: [
    { id: 'lines', op: 'read_text', path: 'in' },
    { id: 'copies', op: 'flat_map', input: 'lines', fn: `l => Array.from({ length: ${COPIES} }, (_, i) => l + '#' + i)` },
    { id: 'keep', op: 'persist', input: 'copies', name: 'big', level: 'memory_and_disk' },
  ] })
  expect(kept.result.sinks).toBeDefined()
  // The workers hold it, most of it on disk: memory holds at most the budget.
  // (as of the workers' next heartbeats: every block, 3x the budget on each worker)
  const held = await waitUntil('the kept bytes reported', async () => {
    const ws = await client.workers()
    return ws.every(w => (w.cached_memory_bytes ?? 0) + (w.cached_disk_bytes ?? 0) > 3 * MAX_MEM_MIB * 2 ** 20) ? ws : undefined
  }, { timeoutMs: 10_000 })
  for (const w of held) expect(w.cached_disk_bytes ?? 0).toBeGreaterThan(0)
  for (const w of held) expect(w.cached_memory_bytes ?? 0).toBeLessThanOrEqual(MAX_MEM_MIB * 2 ** 20)

  // Read back by two consumers: every record, and a sum over them.
  const read = await run({ name: 'read', nodes: [
    { id: 'big', op: 'read_dataset', name: 'big' },
    { id: 'n', op: 'count', input: 'big' },
    { id: 'by', op: 'map', input: 'big', fn: 'l => [l.length % 7, l.charCodeAt(0)]' },
    { id: 'sum', op: 'reduce_by_key', input: 'by', fn: '(a, b) => a + b' },
    { id: 'c', op: 'collect', input: 'sum' },
  ] })
  const want = new Map<number, number>()
  for (const l of LINES) for (let i = 0; i < COPIES; i++) {
    const r = l + '#' + i
    want.set(r.length % 7, (want.get(r.length % 7) ?? 0) + r.charCodeAt(0))
  }
  expect(read.result.sinks.n).toEqual({ op: 'count', value: LINES.length * COPIES })
  expect(new Map((read.result.sinks.c as { values: [number, number][] }).values)).toEqual(want)
  const del = await fetch(`${client.base}/datasets/big`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) })
  expect(del.status).toBe(200)
  await waitUntil('no kept bytes reported', async () => {
    const ws = await client.workers()
    return ws.every(w => (w.cached_memory_bytes ?? 0) + (w.cached_disk_bytes ?? 0) === 0) ? true : undefined
  }, { timeoutMs: 10_000 })

  // DELETE gives back the memory too, not only the accounting: a dataset held in memory (within
  // the budget), then deleted, and each worker's resident size drops by at least half of it.
  await run({ name: 'keep small', partitions: 4, nodes: [
    { id: 'lines', op: 'read_text', path: 'in' },
    { id: 'copies', op: 'flat_map', input: 'lines', fn: 'l => [l + "#0", l + "#1"]' },
    { id: 'keep', op: 'persist', input: 'copies', name: 'small', level: 'memory' },
  ] })
  const small = await waitUntil('the small dataset reported in memory', async () => {
    const ws = await client.workers()
    return ws.every(w => (w.cached_memory_bytes ?? 0) > 4 * 2 ** 20) ? ws : undefined
  }, { timeoutMs: 10_000 })
  const inMemory = workers.map((_, i) => (small.find(w => w.worker_id === ['a', 'b'][i])?.cached_memory_bytes ?? 0) / 2 ** 20)
  const rss = workers.map(w => rssMiB(w.proc.pid))
  expect((await fetch(`${client.base}/datasets/small`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) })).status).toBe(200)
  await waitUntil('the kept memory returned', async () =>
    workers.every((w, i) => rssMiB(w.proc.pid) < rss[i]! - inMemory[i]! / 2) ? true : undefined, { timeoutMs: 20_000 })
}, 300_000)

/** The resident size now (VmRSS), in MiB. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? Number.NaN : Number(m[1]) / 1024
}
