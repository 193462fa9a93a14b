// The memory bound across operators and data shapes: one cluster of 2 workers (2 slots each) at
// --max-mem 32MiB runs reduce_by_key and distinct over millions of... (here: hundreds of
// thousands of) distinct words, group_by_key with one key holding 80% of the records, a join
// with a key hot on both sides, a self-join, a sort of 1-3 KB records, and all of them mixed in
// one job. Each result is exact against a plain loop (test/support/memory-shapes.ts), and after
// each job every worker's peak resident size (VmHWM from /proc, reset before the job) is under
// --max-mem + 200 MiB.
// Size: MEMORY_MATRIX_MB per input (default 12 MB, a third of the budget rather than 20x) keeps
// the file within a minute or so on 2 cores; the shapes' peaks come from what one task holds
// (a batch, a group, a block of a join), not from the input's size, and every reduce side still
// spills at this size. MINISPARK_MEMORY_SCALE=20 runs the same matrix at 20x the budget (640 MB
// inputs, many minutes: by hand, not in CI); `npx bun test/support/memory-shapes.ts --mb 640`
// measures the shapes one by one.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import { spawnRole, type Role } from '../../src/roles/spawn'
import { ROOT, killAll, tempDir, waitUntil } from '../support/cluster'
import { SHAPES, generate, peakRssMiB, resetPeak } from '../support/memory-shapes'

const MAX_MEM_MIB = 32
const SCALE = Number(process.env.MINISPARK_MEMORY_SCALE ?? 0)
const MB = Number(process.env.MEMORY_MATRIX_MB ?? (SCALE > 0 ? SCALE * MAX_MEM_MIB : 12))
/** Waits grow with the inputs: a job at 20x the budget runs for minutes. */
const JOB_MS = 120_000 * Math.max(1, MB / 12)
const started: Role[] = []
let dataDir = ''
let client: MasterClient
let workers: Role[] = []

beforeAll(async () => {
  dataDir = tempDir('ms-matrix-data-')
  const binary = join(tempDir('ms-matrix-bin-'), 'minispark')
  const build = Bun.spawnSync([process.execPath, join(ROOT, 'build.ts'), binary], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(build.stderr.toString())
  generate(dataDir, MB)
  const dir = tempDir('ms-matrix-')
  const role = async (args: string[]): Promise<Role> => { const r = await spawnRole([binary, ...args], { stderr: 'pipe' }); started.push(r); return r }
  const master = await role(['master', '--port', '0', '--state-db', join(dir, 'm.db')])
  workers = await Promise.all(['a', 'b'].map(id => role(['worker', '--master', master.url, '--port', '0', '--id', id, '--slots', '2',
    '--max-mem', `${MAX_MEM_MIB}MiB`, '--data-dir', dataDir, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '500ms'])))
  client = new MasterClient(master.url)
  await waitUntil('2 workers', async () => (await client.workers()).length === 2 ? true : undefined, { timeoutMs: 15_000 })
}, 120_000 + 10 * MB * 1000)
afterAll(() => { for (const r of started) r.proc.kill('SIGKILL'); killAll() })

describe(`--max-mem ${MAX_MEM_MIB}MiB, 2 workers × 2 slots, ${MB} MB inputs`, () => {
  for (const shape of SHAPES) {
    test(`${shape.name}: exact, and every worker's peak RSS under --max-mem + 200 MiB`, async () => {
      for (const w of workers) resetPeak(w.proc.pid)
      const out = `out/${shape.name.replace(/\W+/g, '-')}`
      const id = await client.submit(shape.job(out))
      const s = await client.waitDone(id, { timeoutMs: JOB_MS })
      expect({ state: s.state, error: s.error }).toEqual({ state: 'SUCCEEDED', error: null })
      const peaks = workers.map(w => peakRssMiB(w.proc.pid))
      const spilled = (await client.tasks(id)).reduce((n, t) => n + t.spilled_bytes, 0)
      console.log(`${shape.name}: peak RSS ${peaks.map(p => p.toFixed(0)).join(' / ')} MiB, spilled ${(spilled / 2 ** 20).toFixed(1)} MiB`)
      const result = await client.result(id)
      shape.check(dataDir, out, node => { const r = result.sinks[node]; return r?.op === 'count' ? [r.value] : r?.op === 'collect' ? r.values : [] })
      for (const p of peaks) expect(p).toBeLessThan(MAX_MEM_MIB + 200)
      // At this size the aggregations spill; the join and the sort of long records fit.
      if (['reduce_by_key', 'distinct', 'group_by_key hot', 'mix'].includes(shape.name)) expect(spilled).toBeGreaterThan(0)
    }, JOB_MS + 30_000)
  }
})
