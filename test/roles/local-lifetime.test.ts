// The embedded cluster lives exactly as long as the program that started it: `minispark local`
// stopped by SIGTERM or SIGINT (also with --keep, also in the middle of a job) or even killed by
// SIGKILL leaves no master or worker running and no temp dir behind; an SDK script using local()
// exits as soon as its last line has run. Real processes, real signals; each run gets its own
// TMPDIR so that every process and file of its cluster can be found by that prefix.
import { afterAll, describe, expect, test } from 'bun:test'
import { readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { CLI, ROOT, killAll, tempDir, waitUntil } from '../support/cluster'

afterAll(() => killAll())

/** Live (not zombie) processes whose command line mentions `marker`. */
function processesWith(marker: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(marker)) continue
      if (readFileSync(`/proc/${name}/stat`, 'utf8').replace(/^.*\) /, '')[0] === 'Z') continue
      pids.push(Number(name))
    } catch { /* gone meanwhile */ }
  }
  return pids
}

const started: Subprocess[] = []
afterAll(() => {
  for (const p of started) { try { p.kill('SIGKILL') } catch { /* gone */ } }
})

function setup(job: object): { tmp: string; jobFile: string; dataDir: string } {
  const tmp = tempDir('ms-life-tmp-')
  const dataDir = tempDir('ms-life-data-')
  writeFileSync(join(dataDir, 'in.txt'), Array.from({ length: 200 }, (_, i) => `line ${i}`).join('\n') + '\n')
  const jobFile = join(dataDir, 'job.json')
  writeFileSync(jobFile, JSON.stringify(job))
  return { tmp, jobFile, dataDir }
}

const COUNT = { nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'n', op: 'count', input: 'l' }] }
// Each record takes a while, so the job is still running when the signal comes.
const SLOW = { nodes: [{ id: 'l', op: 'read_text', path: 'in.txt' }, { id: 'm', op: 'map', input: 'l', fn: 'x => { const t = Date.now() + 200; while (Date.now() < t); return x }' }, { id: 'n', op: 'count', input: 'm' }] }

function startLocal(tmp: string, jobFile: string, dataDir: string, extra: string[]): { proc: Subprocess<'ignore', 'pipe', 'pipe'>; stderr: { text: string } } {
  const proc = Bun.spawn([process.execPath, CLI, 'local', jobFile, '--data-dir', dataDir, '--workers', '1', '--slots', '1', ...extra],
    { cwd: ROOT, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, TMPDIR: tmp, MINISPARK_TOKEN: '' } })
  started.push(proc)
  const stderr = { text: '' }
  void (async () => { const d = new TextDecoder(); try { for await (const c of proc.stderr) stderr.text += d.decode(c, { stream: true }) } catch { /* killed */ } })()
  void new Response(proc.stdout).text()
  return { proc, stderr }
}

async function expectAllGone(tmp: string, what: string): Promise<void> {
  await waitUntil(`${what}: no process of the cluster left`, () => processesWith(tmp).length === 0 ? true : undefined, { timeoutMs: 8000, pollMs: 100 })
  const left = (): string[] => readdirSync(tmp, { recursive: true }).map(String)
  await waitUntil(`${what}: the temp dir removed`, () => {
    if (left().length === 0) return true
    throw new Error(`left in TMPDIR: ${left().join(', ')}`)
  }, { timeoutMs: 5000, pollMs: 100 })
}

describe('minispark local stops its cluster when it is stopped', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} of local --keep, once its job is done: master, worker and temp dir gone`, async () => {
      const { tmp, jobFile, dataDir } = setup(COUNT)
      const { proc, stderr } = startLocal(tmp, jobFile, dataDir, ['--keep'])
      await waitUntil('the "still up" line', () => /still up/.test(stderr.text) ? true : undefined, { timeoutMs: 20_000 })
      // --keep keeps the cluster, and `local` with it, until it is told to stop.
      await Bun.sleep(300)
      const pids = processesWith(tmp)
      expect(pids.length).toBe(2)
      expect(proc.exitCode).toBeNull()
      proc.kill(signal)
      const code = await Promise.race([proc.exited, Bun.sleep(8000).then(() => 'still running')])
      expect(code).not.toBe('still running')
      await expectAllGone(tmp, signal)
    }, 40_000)

    test(`${signal} of local while it starts its cluster or runs its job: nothing left`, async () => {
      const { tmp, jobFile, dataDir } = setup(SLOW)
      const { proc } = startLocal(tmp, jobFile, dataDir, [])
      await waitUntil('master and worker started', () => processesWith(tmp).length === 2 ? true : undefined, { timeoutMs: 20_000 })
      await Bun.sleep(1500)
      proc.kill(signal)
      const code = await Promise.race([proc.exited, Bun.sleep(8000).then(() => 'still running')])
      expect(code).toBe(signal === 'SIGINT' ? 130 : 143)
      await expectAllGone(tmp, signal)
    }, 40_000)
  }

  test('SIGKILL of local --keep: its master and worker notice and leave, and take the temp dir', async () => {
    const { tmp, jobFile, dataDir } = setup(COUNT)
    const { proc, stderr } = startLocal(tmp, jobFile, dataDir, ['--keep'])
    await waitUntil('the "still up" line', () => /still up/.test(stderr.text) ? true : undefined, { timeoutMs: 20_000 })
    expect(processesWith(tmp).length).toBe(2)
    proc.kill('SIGKILL')
    await expectAllGone(tmp, 'SIGKILL')
  }, 40_000)
})

describe('an SDK script using local() exits as soon as its work is done', () => {
  for (const stop of [true, false]) {
    test(`${stop ? 'with' : 'without'} ms.stop() at the end`, async () => {
      const { tmp, dataDir } = setup(COUNT)
      const script = join(dataDir, 'script.ts')
      writeFileSync(script, [
        `import { local } from ${JSON.stringify(join(ROOT, 'src/sdk/index.ts'))}`,
        `const ms = await local({ workers: 1, dataDir: ${JSON.stringify(dataDir)} })`,
        `console.log('count', await ms.textFile('in.txt').count())`,
        stop ? 'await ms.stop()' : '',
        `console.log('last line at', Date.now())`,
      ].join('\n'))
      const proc = Bun.spawn([process.execPath, script], { cwd: ROOT, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, TMPDIR: tmp } })
      started.push(proc)
      const out = await Promise.race([new Response(proc.stdout).text(), Bun.sleep(40_000).then(() => 'timeout')])
      const exitedAt = Date.now()
      await proc.exited
      expect(out).toContain('count 200')
      const lastLine = Number(/last line at (\d+)/.exec(out)?.[1])
      expect(exitedAt - lastLine).toBeLessThan(2500)
      await expectAllGone(tmp, 'after the script')
    }, 60_000)
  }
})

test('local with a glob that matches nothing (a forgotten --data-dir) exits 2 naming the data dir, and leaves nothing', async () => {
  const tmp = tempDir('ms-life-tmp-')
  const cwd = tempDir('ms-life-cwd-')
  const jobFile = join(cwd, 'job.json')
  writeFileSync(jobFile, JSON.stringify({ nodes: [{ id: 'lines', op: 'read_text', path: 'books/*.txt' }, { id: 'n', op: 'count', input: 'lines' }] }))
  const proc = Bun.spawn([process.execPath, CLI, 'local', jobFile, '--workers', '1', '--slots', '1'],
    { cwd, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, TMPDIR: tmp } })
  started.push(proc)
  const [stdout, stderr, code] = await Promise.race([Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]), Bun.sleep(40_000).then(() => ['', 'timeout', -1] as const)])
  expect({ code, stdout }).toEqual({ code: 2, stdout: '' })
  expect(stderr).toContain('matches no file')
  expect(stderr).toContain(realpathSync(cwd))
  await expectAllGone(tmp, 'after the refusal')
}, 60_000)
