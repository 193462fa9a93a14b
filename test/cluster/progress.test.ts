// `minispark submit --follow` against a real cluster: a line per stage as it moves (plain lines
// when stderr is a pipe, bars redrawn in place on a terminal), exit 0 when the job succeeds, and
// exit 1 with node, message and record when it fails. The bar itself is checked first, without
// processes.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobStatus, StageStatus } from '../../src/api/jobs'
import { barLine, plainLine, progressPrinter } from '../../src/cli/progress'
import { cliCommand, generateText, killAll, runCli, runCommand, startCluster, tempDir, type Cluster } from '../support/cluster'

const stage = (id: number, state: StageStatus['state'], t: Partial<StageStatus['tasks']>): StageStatus => ({
  stage_id: id, node_ids: id === 0 ? ['lines', 'words', 'pairs'] : ['counts', 'out'], depends_on: id === 0 ? [] : [0], state,
  tasks: { total: 16, pending: 0, running: 0, succeeded: 0, failed: 0, ...t },
})

describe('the progress bar', () => {
  test('a Spark-like bar per stage: done part, running tasks, state', () => {
    expect(barLine(stage(1, 'RUNNING', { succeeded: 12, running: 3 }), 'reduce_by_key', 80))
      .toBe('[Stage 1 reduce_by_key ===========================>        ] 12/16 (+3 running)')
    expect(barLine(stage(1, 'SUCCEEDED', { succeeded: 16 }), 'reduce_by_key', 60))
      .toBe('[Stage 1 reduce_by_key =============================] 16/16')
    expect(barLine(stage(0, 'WAITING', {}), 'read_text', 60)).toBe('[Stage 0 read_text >                         ] 0/16 waiting')
    expect(barLine(stage(0, 'FAILED', { succeeded: 4, failed: 1 }), 'read_text', 60)).toEndWith('] 4/16 FAILED')
    // never wider than the terminal
    expect(barLine(stage(1, 'RUNNING', { succeeded: 1, running: 15 }), 'reduce_by_key', 30).length).toBeLessThanOrEqual(29)
    expect(plainLine(stage(1, 'RUNNING', { succeeded: 12, running: 3, failed: 1 }), 'reduce_by_key'))
      .toBe('stage 1 reduce_by_key [counts → out] RUNNING 12/16 (+3 running) (1 failed)')
  })

  test('on a terminal the block of stage lines is redrawn in place, and only when it changes', () => {
    let text = ''
    const print = progressPrinter({ out: { write: s => { text += s }, isTTY: true, columns: 70 }, ops: new Map([['lines', 'read_text'], ['counts', 'reduce_by_key']]) })
    const status = (stages: StageStatus[], state: JobStatus['state'] = 'RUNNING'): JobStatus => ({
      job_id: 'job-1', name: 'wc', state, submitted_at: '2026-01-01T00:00:00.000Z', started_at: '2026-01-01T00:00:00.000Z',
      finished_at: state === 'RUNNING' ? null : '2026-01-01T00:00:02.500Z', progress: 0, error: null, stages,
    })
    print(status([stage(0, 'RUNNING', { running: 2 }), stage(1, 'WAITING', {})]))
    const first = text
    expect(first).not.toContain('\x1b[2A')
    expect(first.split('\n').filter(Boolean)).toHaveLength(2)
    print(status([stage(0, 'RUNNING', { running: 2 }), stage(1, 'WAITING', {})]))
    expect(text).toBe(first)
    print(status([stage(0, 'SUCCEEDED', { succeeded: 16 }), stage(1, 'SUCCEEDED', { succeeded: 16 })], 'SUCCEEDED'))
    const second = text.slice(first.length)
    expect(second.startsWith('\x1b[2A')).toBe(true)
    expect(second).toContain('\r\x1b[2K[Stage 0 read_text ====')
    expect(second).toContain('\r\x1b[2K[Stage 1 reduce_by_key ====')
    expect(second).toEndWith('job job-1 SUCCEEDED in 2.5 s\n')
  })
})

let c: Cluster | undefined
let jobs = ''
const cluster = (): Cluster => {
  if (c === undefined) throw new Error('the cluster did not start (see beforeAll)')
  return c
}

const WORDCOUNT = {
  name: 'progress-wordcount',
  nodes: [
    { id: 'lines', op: 'read_text', path: 'books/*.txt' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'line => line.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 3 },
    { id: 'n', op: 'count', input: 'counts' },
  ],
}

beforeAll(async () => {
  const data = tempDir('ms-progress-data-')
  jobs = tempDir('ms-progress-jobs-')
  generateText(join(data, 'books'), 2, 2, 3)
  writeFileSync(join(jobs, 'wc.json'), JSON.stringify(WORDCOUNT))
  writeFileSync(join(jobs, 'bad.json'), JSON.stringify({
    name: 'progress-bad', max_task_attempts: 1,
    nodes: [
      { id: 'lines', op: 'read_text', path: 'books/*.txt' },
      { id: 'parse', op: 'map', input: 'lines', fn: "l => { if (l.startsWith('T')) throw new Error('no T lines here'); return l }" },
      { id: 'n', op: 'count', input: 'parse' },
    ],
  }))
  c = await startCluster({ workers: 2, slots: 1, dataDir: data })
}, 30_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

describe('submit --follow', () => {
  test('plain lines per stage change when stderr is not a terminal; exit 0', async () => {
    const r = await runCli(['submit', join(jobs, 'wc.json'), '--follow', '--master', cluster().url], { timeoutMs: 30_000 })
    expect(r.code).toBe(0)
    const [id = '', ...result] = r.stdout.trim().split('\n')
    expect(id).toMatch(/^job-/)
    // then what the job computed: its count sink
    expect(result).toHaveLength(1)
    expect(result[0]).toMatch(/^n: \d+$/)
    const lines = r.stderr.trim().split('\n').filter(l => !l.includes(' submitted: http'))
    expect(lines).toContain('stage 0 read_text [lines → words → pairs] SUCCEEDED 2/2')
    expect(lines).toContain('stage 1 reduce_by_key [counts → n] SUCCEEDED 3/3')
    expect(lines.some(l => /^stage 1 reduce_by_key \[counts → n\] WAITING 0\/3$/.test(l))).toBe(true)
    expect(lines.at(-1)).toMatch(new RegExp(`^job ${id} SUCCEEDED in \\d+\\.\\d s$`))
    // one line per change: no line repeats
    expect(new Set(lines).size).toBe(lines.length)
  }, 30_000)

  test('a failing job: exit 1, with node, message and record', async () => {
    const r = await runCli(['submit', join(jobs, 'bad.json'), '--follow', '--master', cluster().url], { timeoutMs: 30_000 })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/stage 0 read_text \[lines → parse → n\] FAILED/)
    expect(r.stderr).toContain(`job ${r.stdout.trim()} FAILED: `)
    expect(r.stderr).toContain('no T lines here')
    expect(r.stderr).toContain('(node parse)')
    expect(r.stderr).toMatch(/record: "?T/)
  }, 30_000)

  // `script` gives the command a pseudo-terminal, as a user's shell would.
  test.skipIf(!existsSync('/usr/bin/script'))('on a terminal: live bars, redrawn in place', async () => {
    const cmd = cliCommand(['submit', join(jobs, 'wc.json'), '--follow', '--master', cluster().url]).map(a => `'${a}'`).join(' ')
    const r = await runCommand(['/usr/bin/script', '-qec', `stty cols 100; ${cmd}`, '/dev/null'], { timeoutMs: 30_000 })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('\x1b[2K[Stage 0 read_text ')
    expect(r.stdout).toMatch(/\[Stage 1 reduce_by_key =+\] 3\/3/)
    expect(r.stdout).toMatch(/\x1b\[2A/)
    expect(r.stdout).toMatch(/job job-\S+ SUCCEEDED/)
  }, 30_000)
})
