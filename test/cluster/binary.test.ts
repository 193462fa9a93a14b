// The compiled binary (build.ts → `bun build --compile`) runs alone: copied into an empty dir with
// only a job file and a small data dir, with no Bun on PATH and no node_modules beside it.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { copyFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, generateText, killAll, partFiles, plainLines, plainWordcount, readParts, runCommand, tempDir, textFiles } from '../support/cluster'

let work = ''
let bin = ''
// A PATH without Bun or node_modules/.bin: the binary must not need them.
const env = (): Record<string, string> => ({ PATH: '/usr/bin:/bin', HOME: work, TMPDIR: process.env.TMPDIR ?? '/tmp' })
const run = (args: string[], timeoutMs = 30_000) => runCommand([bin, ...args], { cwd: work, env: env(), onlyEnv: true, timeoutMs })

beforeAll(async () => {
  const build = tempDir('ms-build-')
  const built = await runCommand([process.execPath, 'build.ts', join(build, 'minispark')], { cwd: ROOT, timeoutMs: 60_000 })
  if (built.code !== 0) throw new Error(`build.ts failed (${built.code}): ${built.stderr}${built.stdout}`)
  work = tempDir('ms-bin-')
  bin = join(work, 'minispark')
  copyFileSync(join(build, 'minispark'), bin)
  generateText(join(work, 'data', 'books'), 1, 3, 11)
  writeFileSync(join(work, 'job.json'), JSON.stringify({
    name: 'binary-wordcount',
    nodes: [
      { id: 'lines', op: 'read_text', path: 'books/*.txt' },
      { id: 'n_lines', op: 'count', input: 'lines' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'line => line.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'out', op: 'write_text', input: 'counts', path: 'out/wc' },
    ],
  }))
}, 90_000)

afterAll(() => killAll())

describe('the compiled binary', () => {
  test('`local` runs a job with 2 workers and prints each sink; the output equals the reference', async () => {
    const r = await run(['local', 'job.json', '--workers', '2', '--slots', '1', '--data-dir', 'data'], 60_000)
    if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    const books = textFiles(join(work, 'data', 'books'))
    const lines = plainLines(books).length
    const counts = plainWordcount(books)
    const out = join(work, 'data', 'out', 'wc')
    const files = partFiles(out).length
    expect(files).toBeGreaterThan(0)
    const stdout = r.stdout.trim().split('\n')
    expect(stdout).toContain(`n_lines: ${lines}`)
    expect(stdout).toContain(`out: wrote ${counts.size} records to out/wc (${files} files)`)
    expect(stdout.length).toBe(2)

    expect(readdirSync(out).sort()).toEqual([...partFiles(out), '_SUCCESS'].sort())
    const got = new Map(readParts(out).map(l => JSON.parse(l) as [string, number]))
    expect(got.size).toBe(counts.size)
    const wrong = [...counts].filter(([w, n]) => got.get(w) !== n)
    expect(wrong.slice(0, 20)).toEqual([])
    // nothing left behind but the data, the job and the binary (the local cluster cleans its state)
    expect(readdirSync(work).sort()).toEqual(['data', 'job.json', 'minispark'])
  }, 60_000)

  test('--version, an unknown command, a bad flag value and an unreachable master', async () => {
    const version = await run(['--version'])
    expect(version.code).toBe(0)
    expect(version.stdout).toMatch(/^minispark \d+\.\d+\.\d+/)

    const bogus = await run(['bogus'])
    expect(bogus.code).toBe(2)
    expect(bogus.stderr).toContain('bogus')

    const port = await run(['master', '--port', 'nope'])
    expect(port.code).toBe(2)
    expect(port.stderr).toContain('--port')
    expect(port.stderr.trim().split('\n').length).toBe(1)

    const status = await run(['status', '--master', 'http://127.0.0.1:1'])
    expect(status.code).toBe(3)
    expect(status.stderr).toContain('127.0.0.1:1')

    const help = await run(['worker', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--master')
  }, 30_000)
})
