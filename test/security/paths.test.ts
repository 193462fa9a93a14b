// What a job may touch on a worker's disk, on a real cluster laid out as the old defaults did
// (work dir and state db inside the data dir), with two workers on two disks:
// - no job reads, writes or contains the work dir or the master's state db (RESERVED_PATH);
// - an output that leaves the data dir through a link on one disk only is refused, overwrite or
//   not, and nothing outside is deleted;
// - `**` through in-tree links reads each file once, and a link loop does not hang;
// - an input that matches no file is refused (INPUT_NOT_FOUND naming the data dir) through the
//   API, the CLI and the SDK.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ClientError, MasterClient } from '../../src/api/client'
import type { JobRequest } from '../../src/api/jobs'
import { connect } from '../../src/sdk/session'
import { killAll, runCli, spawnRoleProc, tempDir, waitUntil, type RoleProc } from '../support/cluster'

let d1 = '', d2 = '', outside = ''
let procs: RoleProc[] = []
let client: MasterClient
let url = ''

function disk(dir: string): void {
  writeFileSync(join(dir, 'in.txt'), 'one two\nthree\n')
  mkdirSync(join(dir, 'tree', 'a'), { recursive: true })
  writeFileSync(join(dir, 'tree', 'a', 'x.txt'), 'x1\nx2\n')
  symlinkSync('a', join(dir, 'tree', 'link'))                      // in-tree link to a folder
  symlinkSync(join(dir, 'tree'), join(dir, 'tree', 'a', 'loop'))   // a loop
  symlinkSync('x.txt', join(dir, 'tree', 'a', 'same.txt'))         // a second name of one file
}

beforeAll(async () => {
  d1 = tempDir('ms-paths-d1-')
  d2 = tempDir('ms-paths-d2-')
  outside = tempDir('ms-paths-outside-')
  disk(d1)
  disk(d2)
  mkdirSync(join(outside, 'res'))
  writeFileSync(join(outside, 'res', 'victim.txt'), 'precious\n')
  symlinkSync(outside, join(d2, 'out'))   // on the second disk only
  for (const d of [d1, d2]) symlinkSync(join(d, 'minispark-work'), join(d, 'work-link'))
  const master = await spawnRoleProc('master', ['master', '--port', '0', '--state-db', join(d1, 'minispark-master.db')])
  procs.push(master)
  url = master.url
  for (const [id, dir] of [['w1', d1], ['w2', d2]] as const) {
    procs.push(await spawnRoleProc(id, ['worker', '--master', url, '--port', '0', '--id', id, '--slots', '1',
      '--data-dir', dir, '--work-dir', join(dir, 'minispark-work'), '--heartbeat-interval', '500ms']))
  }
  client = new MasterClient(url)
  await waitUntil('2 live workers', async () => (await client.workers()).filter(w => w.status !== 'DEAD').length === 2 ? true : undefined, { timeoutMs: 15_000 })
  for (const d of [d1, d2]) writeFileSync(join(d, 'minispark-work', 'other-jobs-block'), 'shuffle data\n')
}, 40_000)
afterAll(() => {
  for (const p of procs) { try { p.proc.kill('SIGKILL') } catch { /* gone */ } }
  procs = []
  killAll()
})

async function refusal(job: JobRequest): Promise<ClientError> {
  try {
    const id = await client.submit(job)
    const s = await client.waitDone(id, { timeoutMs: 20_000, pollMs: 50 })
    throw new Error(`accepted; ended ${s.state}`)
  } catch (e) {
    if (e instanceof ClientError) return e
    throw e
  }
}

const read = (path: string): JobRequest['nodes'][number] => ({ id: 'l', op: 'read_text', path })
const write = (path: string): JobRequest['nodes'][number] => ({ id: 'w', op: 'write_text', input: 'l', path, overwrite: true })

describe('the work dir and the state db are out of any job\'s reach', () => {
  test('writing them, a link to them, or a folder holding them is a 400 naming the node; nothing is removed', async () => {
    for (const path of ['minispark-work', 'minispark-work/w1', 'work-link', 'minispark-master.db']) {
      const e = await refusal({ nodes: [read('in.txt'), write(path)] })
      expect({ path, code: e.code, status: e.status }).toEqual({ path, code: 'RESERVED_PATH', status: 400 })
      expect(e.message).toContain('"w"')
    }
    expect(existsSync(join(d1, 'minispark-work', 'other-jobs-block'))).toBe(true)
    expect(existsSync(join(d1, 'minispark-master.db'))).toBe(true)
  }, 30_000)

  test('reading them is a 400 naming the node', async () => {
    for (const path of ['minispark-work/*', 'minispark-work', 'work-link/*']) {
      const e = await refusal({ nodes: [read(path), { id: 'n', op: 'count', input: 'l' }] })
      expect({ path, code: e.code }).toEqual({ path, code: 'RESERVED_PATH' })
      expect(e.message).toContain('"l"')
    }
    // The state db is on the first disk only: the second worker does not find it. Every disk
    // lists the inputs, so the one that holds it refuses the job, every time.
    for (const path of ['*.db', 'minispark-master.db']) {
      const codes = [await refusal({ nodes: [read(path), { id: 'n', op: 'count', input: 'l' }] }), await refusal({ nodes: [read(path), { id: 'n', op: 'count', input: 'l' }] })].map(e => e.code)
      expect({ path, codes }).toEqual({ path, codes: ['RESERVED_PATH', 'RESERVED_PATH'] })
    }
  }, 30_000)
})

test('an output through a link out of the data dir on one worker\'s disk only is refused; nothing outside goes', async () => {
  for (let i = 0; i < 4; i++) {   // whichever worker lists the inputs
    const e = await refusal({ nodes: [read('in.txt'), write('out/res')] })
    expect(e.code).toBe('PATH_OUTSIDE_DATA_DIR')
    expect(e.message).toContain('"w"')
  }
  expect(readdirSync(join(outside, 'res'))).toEqual(['victim.txt'])
}, 30_000)

test('`**` through in-tree links and a loop reads each file once', async () => {
  const id = await client.submit({ nodes: [read('tree/**/*.txt'), { id: 'c', op: 'collect', input: 'l' }] })
  const s = await client.waitDone(id, { timeoutMs: 20_000, pollMs: 50 })
  expect(s.state).toBe('SUCCEEDED')
  const values = (await client.result(id)).sinks.c as { values: unknown[] }
  expect(values.values.sort()).toEqual(['x1', 'x2'])
}, 30_000)

describe('an input that matches no file is refused at submit, naming the data dir', () => {
  const job: JobRequest = { nodes: [read('books/*.txt'), { id: 'n', op: 'count', input: 'l' }] }
  const dataDirs = (): string[] => [realpathSync(d1), realpathSync(d2)]

  test('API', async () => {
    const e = await refusal(job)
    expect(e.code).toBe('INPUT_NOT_FOUND')
    expect(e.status).toBe(400)
    expect(dataDirs().some(d => e.message.includes(d))).toBe(true)
  })

  test('CLI: exit 2 with the message', async () => {
    const file = join(tempDir('ms-paths-job-'), 'job.json')
    writeFileSync(file, JSON.stringify(job))
    const r = await runCli(['submit', file, '--master', url])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('matches no file')
    expect(dataDirs().some(d => r.stderr.includes(d))).toBe(true)
  }, 30_000)

  test('SDK', async () => {
    const ms = await connect(url)
    const err = await ms.textFile('books/*.txt').count().then(() => null, (e: unknown) => e as ClientError)
    expect(err?.code).toBe('INPUT_NOT_FOUND')
    expect(err?.message).toContain('matches no file')
  })
})

test('after all that, the cluster still computes a job with a shuffle', async () => {
  const id = await client.submit({ nodes: [read('in.txt'), { id: 'f', op: 'flat_map', input: 'l', fn: 'l => l.split(" ")' },
    { id: 'p', op: 'map', input: 'f', fn: 'w => [w, 1]' }, { id: 'r', op: 'reduce_by_key', input: 'p', fn: '(a, b) => a + b' },
    { id: 'c', op: 'collect', input: 'r' }] })
  expect((await client.waitDone(id, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
  const values = ((await client.result(id)).sinks.c as { values: [string, number][] }).values
  expect(values.sort()).toEqual([['one', 1], ['three', 1], ['two', 1]])
}, 30_000)

test('a link out of the data dir made after submit, before the write, fails the task: nothing is written outside', async () => {
  const target = tempDir('ms-paths-late-')
  // Stage 1 (slow) runs while the link is made; stage 2 writes after it exists.
  const id = await client.submit({
    max_task_attempts: 1, partitions: 2, nodes: [read('in.txt'),
      { id: 'slow', op: 'map', input: 'l', fn: 'x => { const t = Date.now() + 1500; while (Date.now() < t); return [x, 1] }' },
      { id: 'r', op: 'reduce_by_key', input: 'slow', fn: '(a, b) => a + b' },
      { id: 'w', op: 'write_text', input: 'r', path: 'late/out' }],
  })
  for (const d of [d1, d2]) symlinkSync(target, join(d, 'late'))
  const s = await client.waitDone(id, { timeoutMs: 30_000, pollMs: 50 })
  expect(s.state).toBe('FAILED')
  expect(s.error?.message).toContain('leaves the data dir')
  expect(readdirSync(target)).toEqual([])
}, 40_000)
