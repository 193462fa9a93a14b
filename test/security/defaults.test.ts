// The defaults keep the engine's own files out of the data dir: a worker started with no
// --work-dir puts its shuffle blocks under the OS temp dir (per user), never under --data-dir,
// and refuses a default work dir that another user could have planted (a link, or not its own).
import { afterAll, expect, test } from 'bun:test'
import { existsSync, lstatSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { cliCommand, killAll, runCli, spawnRoleProc, tempDir } from '../support/cluster'

afterAll(() => killAll())

const user = (): string => { try { return userInfo().username } catch { return String(process.getuid?.() ?? 'user') } }

test('a worker with the default --work-dir keeps it outside the default --data-dir', async () => {
  const cwd = tempDir('ms-defaults-cwd-')
  const tmp = tempDir('ms-defaults-tmp-')
  writeFileSync(join(cwd, 'in.txt'), 'a\n')
  const master = await spawnRoleProc('master', ['master', '--port', '0', '--state-db', join(tmp, 'm.db')])
  const worker = Bun.spawn(cliCommand(['worker', '--master', master.url, '--port', '0', '--id', 'w1', '--slots', '1']),
    { cwd, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, TMPDIR: tmp } })
  try {
    const out = await Promise.race([(async () => { let t = ''; for await (const c of worker.stdout) { t += new TextDecoder().decode(c); if (t.includes('listening on')) return t } return t })(), Bun.sleep(20_000).then(() => 'timeout')])
    expect(out).toContain('listening on')
    // (and the id of its disk, a hidden file every worker on this folder shares)
    expect(readdirSync(cwd).sort()).toEqual(['.minispark-disk', 'in.txt'])
    const work = join(tmp, `minispark-work-${user()}`)
    expect(lstatSync(work).isDirectory()).toBe(true)
    expect(lstatSync(work).mode & 0o077).toBe(0)
    expect(existsSync(join(work, 'w1'))).toBe(true)
  } finally {
    worker.kill('SIGKILL')
    master.proc.kill('SIGKILL')
  }
}, 30_000)

test('a default work dir that is a link is refused with exit 2', async () => {
  const tmp = tempDir('ms-defaults-tmp-')
  const elsewhere = tempDir('ms-defaults-else-')
  symlinkSync(elsewhere, join(tmp, `minispark-work-${user()}`))
  const r = await runCli(['worker', '--master', 'http://127.0.0.1:1', '--port', '0'], { env: { TMPDIR: tmp }, timeoutMs: 15_000 })
  expect(r.code).toBe(2)
  expect(r.stderr).toContain('--work-dir')
  expect(readdirSync(elsewhere)).toEqual([])
}, 30_000)

