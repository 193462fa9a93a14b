// The worker's side of an overwrite (POST /outputs/finalize with swaps), on real files in a temp
// data dir: the previous output stays whole until the swap, the swap can be repeated after a crash
// at any step, a second worker on the same data dir finds it done, and a newer output is never
// touched. The app is driven in-process (app.handle); the finalize route uses no pool or blocks.
import { PeerClient } from '../../../src/api/peers'
import { afterEach, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { workerApp, type WorkerContext } from '../../../src/roles/worker/app'
import { FileWork } from '../../../src/roles/worker/files/work'

const dirs: string[] = []
const threads: FileWork[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  for (const f of threads.splice(0)) f.stop()
})

function setup(): { data: string; finalize: (body: unknown) => Promise<number> } {
  const data = mkdtempSync(join(tmpdir(), 'ms-swap-'))
  dirs.push(data)
  const unused = (): never => { throw new Error('not used by the finalize route') }
  const files = new FileWork()
  threads.push(files)
  const app = workerApp({ tasks: unused, blocks: unused, files: () => files, dataDir: data, own: [], peers: new PeerClient(undefined) } satisfies WorkerContext, undefined)
  const finalize = async (body: unknown): Promise<number> => (await app.handle(new Request('http://127.0.0.1/outputs/finalize', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  }))).status
  return { data, finalize }
}

/** out/ holding the previous output (written an hour ago) and job J's parts staged aside. */
function previousAndStaged(data: string, job: string, parts: Record<string, string>): void {
  mkdirSync(join(data, 'out/_temporary', job), { recursive: true })
  for (const [name, text] of [['part-00000', 'old 0\n'], ['part-00001', 'old 1\n'], ['part-00002', 'old 2\n'], ['_SUCCESS', '']]) {
    writeFileSync(join(data, 'out', name!), text!)
    const anHourAgo = new Date(Date.now() - 3_600_000)
    utimesSync(join(data, 'out', name!), anHourAgo, anHourAgo)
  }
  for (const [name, text] of Object.entries(parts)) writeFileSync(join(data, 'out/_temporary', job, name), text)
}

const listing = (data: string): Record<string, string> =>
  Object.fromEntries(readdirSync(join(data, 'out')).sort().map(n => [n, statSync(join(data, 'out', n)).isDirectory() ? '<dir>' : readFileSync(join(data, 'out', n), 'utf8')]))

const swap = (job: string, paths: string[] = ['out']) => ({ job_id: job, paths, swaps: [{ path: 'out', staged: `out/_temporary/${job}`, older_than_ms: 60_000 }] })

describe('output swap on a worker', () => {
  test('the staged parts replace the previous output whole; _SUCCESS names the job; nothing is left aside', async () => {
    const { data, finalize } = setup()
    previousAndStaged(data, 'job-b', { 'part-00000': 'new 0\n', 'part-00001': 'new 1\n' })
    expect(await finalize(swap('job-b'))).toBe(200)
    expect(listing(data)).toEqual({ _SUCCESS: 'job-b', 'part-00000': 'new 0\n', 'part-00001': 'new 1\n' })   // old part-00002 gone too
  })

  test('a crash after the previous output went aside: the repeat moves the rest in, loses nothing', async () => {
    const { data, finalize } = setup()
    previousAndStaged(data, 'job-b', { 'part-00000': 'new 0\n', 'part-00001': 'new 1\n' })
    // As a crash would leave it: the previous entries aside, _MOVING written, one part moved in.
    mkdirSync(join(data, 'out/_temporary/job-b.previous'))
    for (const n of ['part-00000', 'part-00001', 'part-00002', '_SUCCESS']) {
      writeFileSync(join(data, 'out/_temporary/job-b.previous', n), 'old')
      rmSync(join(data, 'out', n))
    }
    writeFileSync(join(data, 'out/_temporary/job-b/_MOVING'), '')
    writeFileSync(join(data, 'out/part-00000'), 'new 0\n')
    rmSync(join(data, 'out/_temporary/job-b/part-00000'))
    expect(await finalize(swap('job-b'))).toBe(200)
    expect(listing(data)).toEqual({ _SUCCESS: 'job-b', 'part-00000': 'new 0\n', 'part-00001': 'new 1\n' })
  })

  test('a second worker on the same data dir finds the swap done and changes nothing', async () => {
    const { data, finalize } = setup()
    previousAndStaged(data, 'job-b', { 'part-00000': 'new 0\n' })
    expect(await finalize(swap('job-b'))).toBe(200)
    const after = listing(data)
    expect(await finalize(swap('job-b', []))).toBe(200)
    expect(listing(data)).toEqual(after)
  })

  test('a worker with nothing of the job staged removes only files from before the job; a newer output stays', async () => {
    const { data, finalize } = setup()
    previousAndStaged(data, 'job-c', {})
    rmSync(join(data, 'out/_temporary'), { recursive: true })
    writeFileSync(join(data, 'out/part-00001'), 'newer\n')     // written now: a newer job's part
    expect(await finalize(swap('job-b', []))).toBe(200)
    expect(listing(data)).toEqual({ 'part-00001': 'newer\n' })
  })

  test('a staged path outside the output\'s _temporary folder is refused silently (nothing moves)', async () => {
    const { data, finalize } = setup()
    previousAndStaged(data, 'job-b', { 'part-00000': 'new 0\n' })
    const before = listing(data)
    expect(await finalize({ job_id: 'job-b', paths: [], swaps: [{ path: 'out', staged: 'elsewhere', older_than_ms: 0 }] })).toBe(200)
    expect(listing(data)).toEqual(before)
  })
})
