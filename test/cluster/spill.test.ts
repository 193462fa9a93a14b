// Bounded memory on any input size: a word count with 2 000 000 distinct words and a sort of 20×
// the budget run at --max-mem 8MiB on two workers. Results are exact (against plain loops), spill
// is recorded, and each worker's peak resident size, read from /proc (VmHWM) and not from the
// engine's accounting, stays under --max-mem + 200 MiB. With a large budget nothing spills.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import type { JobRequest } from '../../src/api/jobs'
import { spawnRole, type Role } from '../../src/roles/spawn'
import { ROOT, killAll, readParts, tempDir, waitUntil } from '../support/cluster'

const MAX_MEM_MIB = 8
const SORT_MB = 20 * MAX_MEM_MIB          // 20× the budget
let dataDir = ''
let binary = ''
const started: Role[] = []

beforeAll(() => {
  dataDir = tempDir('ms-spill-data-')
  // The product is the compiled binary: measure its memory, not that of Bun transpiling sources.
  binary = join(tempDir('ms-spill-bin-'), 'minispark')
  const build = Bun.spawnSync([process.execPath, join(ROOT, 'build.ts'), binary], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(build.stderr.toString())
  const gen = Bun.spawnSync(['node', join(ROOT, 'bench/gen/gen-sort.mjs'), '--out', join(dataDir, 'sort'), '--mb', String(SORT_MB), '--files', '8', '--seed', '42'], { stdout: 'pipe', stderr: 'pipe' })
  if (gen.exitCode !== 0) throw new Error(gen.stderr.toString())
  // 2 000 000 distinct words, a few of them repeated: 8 files of lines of 10 words.
  const files = 8
  for (let f = 0; f < files; f++) {
    const lines: string[] = []
    let line: string[] = []
    for (let i = f; i < 2_000_000; i += files) {
      line.push(`w${i.toString(36)}`, ...(i % 97 === 0 ? [`w${i.toString(36)}`] : []))
      if (line.length >= 10) { lines.push(line.join(' ')); line = [] }
    }
    if (line.length > 0) lines.push(line.join(' '))
    writeFileSync(join(dataDir, `words-${f}.txt`), lines.join('\n') + '\n')
  }
})
afterAll(() => { for (const r of started) r.proc.kill('SIGKILL'); killAll() })

type Small = { master: Role; workers: (Role & { name: string })[]; client: MasterClient }

async function role(args: string[]): Promise<Role> {
  const r = await spawnRole([binary, ...args], { stderr: 'pipe' })
  started.push(r)
  return r
}

async function cluster(maxMem: string): Promise<Small> {
  const dir = tempDir('ms-spill-')
  const master = await role(['master', '--port', '0', '--state-db', join(dir, 'm.db')])
  const workers = await Promise.all(['a', 'b'].map(async name => ({ name, ...await role(['worker', '--master', master.url, '--port', '0', '--id', name,
    '--slots', '1', '--max-mem', maxMem, '--data-dir', dataDir, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '500ms']) })))
  const client = new MasterClient(master.url)
  await waitUntil('2 workers', async () => (await client.workers()).length === 2 ? true : undefined, { timeoutMs: 15_000 })
  return { master, workers, client }
}

function stop(c: Small): void { for (const p of [c.master, ...c.workers]) p.proc.kill('SIGKILL') }

const peakRssMiB = (pid: number): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

const sortJob = (out: string): JobRequest => ({
  name: 'sort', partitions: 4, nodes: [
    { id: 'recs', op: 'read_text', path: 'sort/*.dat' },
    { id: 'sorted', op: 'sort', input: 'recs', key: 'r => r.slice(0, 10)' },
    { id: 'out', op: 'write_text', input: 'sorted', path: out, overwrite: true },
  ],
})

const wordJob = (out: string): JobRequest => ({
  name: 'wordcount', partitions: 4, nodes: [
    { id: 'lines', op: 'read_text', path: 'words-*.txt' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_text', input: 'counts', path: out, overwrite: true },
  ],
})

/** The records of all input files, sorted as LC_ALL=C sort would (keys are unique). */
function plainSortedDigest(): { count: number; sha: string } {
  const dir = join(dataDir, 'sort')
  const recs: string[] = []
  for (const f of readdirSync(dir).sort()) for (const l of readFileSync(join(dir, f), 'latin1').split('\n')) if (l) recs.push(l)
  recs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return { count: recs.length, sha: createHash('sha256').update(recs.join('\n') + '\n').digest('hex') }
}

function plainWordCount(): Map<string, number> {
  const m = new Map<string, number>()
  for (const f of readdirSync(dataDir).filter(f => f.startsWith('words-'))) {
    for (const l of readFileSync(join(dataDir, f), 'utf8').split('\n')) for (const w of l.split(' ')) if (w) m.set(w, (m.get(w) ?? 0) + 1)
  }
  return m
}

async function run(c: Small, job: JobRequest): Promise<{ spilled: number }> {
  const id = await c.client.submit(job)
  const s = await c.client.waitDone(id, { timeoutMs: 180_000 })
  expect({ state: s.state, error: s.error }).toEqual({ state: 'SUCCEEDED', error: null })
  const tasks = await c.client.tasks(id)
  return { spilled: tasks.reduce((n, t) => n + t.spilled_bytes, 0) }
}

describe(`--max-mem ${MAX_MEM_MIB}MiB on 2 workers`, () => {
  let c: Small
  beforeAll(async () => { c = await cluster(`${MAX_MEM_MIB}MiB`) })
  afterAll(() => stop(c))

  test(`a sort of ${SORT_MB} MB and a word count of 2 000 000 distinct words: exact, spilled, peak RSS under --max-mem + 200 MiB`, async () => {
    const sort = await run(c, sortJob('out/spill-sort'))
    expect(sort.spilled).toBeGreaterThan(SORT_MB * 1024 * 1024)          // most of the data went to disk at least once
    const parts = readdirSync(join(dataDir, 'out/spill-sort')).filter(f => f.startsWith('part-')).sort()
    const lines = parts.flatMap(p => readFileSync(join(dataDir, 'out/spill-sort', p), 'latin1').split('\n').filter(Boolean))
    const ref = plainSortedDigest()
    expect(lines.length).toBe(ref.count)
    expect(createHash('sha256').update(lines.join('\n') + '\n').digest('hex')).toBe(ref.sha)

    const words = await run(c, wordJob('out/spill-words'))
    expect(words.spilled).toBeGreaterThan(0)
    const got = new Map(readParts(join(dataDir, 'out/spill-words')).map(l => JSON.parse(l) as [string, number]))
    const wref = plainWordCount()
    expect(wref.size).toBe(2_000_000)
    expect(got.size).toBe(wref.size)
    expect(got).toEqual(wref)

    for (const w of c.workers) {
      const peak = peakRssMiB(w.proc.pid)
      console.log(`worker ${w.name}: peak RSS ${peak.toFixed(0)} MiB at --max-mem ${MAX_MEM_MIB}MiB`)
      expect(peak).toBeLessThan(MAX_MEM_MIB + 200)
    }
  }, 300_000)
})

describe('--max-mem 2GiB on 2 workers', () => {
  let c: Small
  beforeAll(async () => { c = await cluster('2GiB') })
  afterAll(() => stop(c))

  test('the same jobs do not spill', async () => {
    expect((await run(c, sortJob('out/nospill-sort'))).spilled).toBe(0)
    expect((await run(c, wordJob('out/nospill-words'))).spilled).toBe(0)
    expect(readParts(join(dataDir, 'out/nospill-sort')).length).toBe(plainSortedDigest().count)
  }, 300_000)
})
