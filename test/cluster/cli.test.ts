// The client commands (submit, status, workers, cancel) as separate processes against a real
// cluster: what they print and their exit codes (CONTRACT section 1).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cliCommand, killAll, runCli, startCluster, tempDir, waitUntil, type Cluster } from '../support/cluster'

let c: Cluster | undefined
let data = ''
let jobs = ''
const LINES = Array.from({ length: 200 }, (_, i) => `line ${i} of the test file`)

const cluster = (): Cluster => {
  if (c === undefined) throw new Error('the cluster did not start (see beforeAll)')
  return c
}

function jobFile(name: string, job: unknown): string {
  const f = join(jobs, `${name}.json`)
  writeFileSync(f, JSON.stringify(job))
  return f
}

const src = { id: 'src', op: 'read_text', path: 'small/a.txt' }

beforeAll(async () => {
  data = tempDir('ms-cli-data-')
  jobs = tempDir('ms-cli-jobs-')
  mkdirSync(join(data, 'small'))
  writeFileSync(join(data, 'small', 'a.txt'), LINES.join('\n') + '\n')
  c = await startCluster({ workers: 2, slots: 1, dataDir: data, heartbeatInterval: '500ms' })
}, 30_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

describe('the CLI against a running cluster', () => {
  test('submit prints the job id and exits 0; status ID shows it', async () => {
    const r = await runCli(['submit', jobFile('count', { name: 'cli-count', nodes: [src, { id: 'n', op: 'count', input: 'src' }] }), '--master', cluster().url])
    expect(r.code).toBe(0)
    const id = r.stdout.trim()
    expect(id).not.toContain('\n')
    expect(id.length).toBeGreaterThan(0)
    const s = await cluster().client.waitDone(id, { timeoutMs: 20_000, pollMs: 50 })
    expect(s.state).toBe('SUCCEEDED')
    expect((await cluster().client.result(id)).sinks.n).toEqual({ op: 'count', value: LINES.length })

    const st = await runCli(['status', id, '--master', cluster().url])
    expect(st.code).toBe(0)
    expect(st.stdout).toContain(id)
    expect(st.stdout).toContain('SUCCEEDED')

    const json = await runCli(['status', id, '--master', cluster().url, '--json'])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({ job_id: id, name: 'cli-count', state: 'SUCCEEDED' })

    const list = await runCli(['status', '--master', cluster().url])
    expect(list.code).toBe(0)
    expect(list.stdout).toContain(id)

    const submitJson = await runCli(['submit', jobFile('count2', { nodes: [src, { id: 'n', op: 'count', input: 'src' }] }), '--master', cluster().url, '--json'])
    expect(submitJson.code).toBe(0)
    const id2 = (JSON.parse(submitJson.stdout) as { job_id: string }).job_id
    expect((await cluster().client.waitDone(id2, { timeoutMs: 20_000, pollMs: 50 })).state).toBe('SUCCEEDED')
  }, 30_000)

  test('submit --follow exits 0 for a good job and 1 for a failing one, naming the node', async () => {
    const good = await runCli(['submit', '--follow', '--master', cluster().url, jobFile('good', { nodes: [src,
      { id: 'words', op: 'flat_map', input: 'src', fn: 'l => l.split(" ")' },
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'top', op: 'collect', input: 'counts' }] })])
    expect(good.code).toBe(0)
    const goodId = good.stdout.trim().split('\n')[0]!
    expect((await cluster().client.status(goodId)).state).toBe('SUCCEEDED')
    expect(good.stderr).toContain('stage')

    const bad = await runCli(['submit', '--follow', '--master', cluster().url, jobFile('bad', { max_task_attempts: 1, nodes: [src,
      { id: 'explode', op: 'map', input: 'src', fn: "x => { throw new Error('boom') }" },
      { id: 'n', op: 'count', input: 'explode' }] })])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('explode')
    expect(bad.stderr).toContain('boom')
    const badId = bad.stdout.trim().split('\n')[0]!
    expect((await cluster().client.status(badId)).state).toBe('FAILED')
  }, 30_000)

  test('an invalid job is refused at submit with the reason; an unreachable master exits 3', async () => {
    const cycle = await runCli(['submit', '--master', cluster().url, jobFile('cycle', { nodes: [
      { id: 'loop_a', op: 'map', input: 'loop_b', fn: 'x => x' }, { id: 'loop_b', op: 'map', input: 'loop_a', fn: 'x => x' },
      { id: 'n', op: 'count', input: 'loop_b' }] })])
    expect(cycle.code).not.toBe(0)
    expect(cycle.code).not.toBe(1)
    expect(cycle.stderr).toContain('loop_a')
    expect(cycle.stdout).toBe('')

    const missingFile = await runCli(['submit', join(jobs, 'nope.json'), '--master', cluster().url])
    expect(missingFile.code).toBe(2)
    expect(missingFile.stderr).toContain('nope.json')

    const down = await runCli(['submit', jobFile('down', { nodes: [src, { id: 'n', op: 'count', input: 'src' }] }), '--master', 'http://127.0.0.1:1'])
    expect(down.code).toBe(3)
  }, 20_000)

  test('workers lists every worker (also through MINISPARK_MASTER)', async () => {
    const r = await runCli(['workers', '--master', cluster().url])
    expect(r.code).toBe(0)
    for (const id of cluster().workerIds) expect(r.stdout).toContain(id)

    const json = await runCli(['workers', '--json'], { env: { MINISPARK_MASTER: cluster().url } })
    expect(json.code).toBe(0)
    const list = JSON.parse(json.stdout) as { worker_id: string; status: string }[]
    expect(list.map(w => w.worker_id).sort()).toEqual(cluster().workerIds.slice().sort())
    for (const w of list) expect(w.status).not.toBe('DEAD')
  }, 15_000)

  test('cancel ID stops a running job: exit 0, state CANCELLED, workers go idle', async () => {
    // ~50 ms of busy work per record: far longer than the test waits, unless it is cancelled
    const id = await cluster().client.submit({ name: 'slow', nodes: [src,
      { id: 'slow', op: 'map', input: 'src', fn: 'x => { const end = Date.now() + 50; while (Date.now() < end); return x }' },
      { id: 'n', op: 'count', input: 'slow' }] })
    await waitUntil('the slow job to run', async () => (await cluster().client.status(id)).state === 'RUNNING' ? true : undefined, { timeoutMs: 10_000 })
    const early = await fetch(`${cluster().url}/jobs/${id}/result`)
    expect(early.status).toBe(409)
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('JOB_NOT_FINISHED')
    expect((await fetch(`${cluster().url}/jobs/no-such-job`)).status).toBe(404)

    const r = await runCli(['cancel', id, '--master', cluster().url])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(id)
    const s = await cluster().client.waitDone(id, { timeoutMs: 10_000, pollMs: 50 })
    expect(s.state).toBe('CANCELLED')
    await waitUntil('workers to have no active task', async () =>
      (await cluster().client.workers()).every(w => w.active_tasks === 0) ? true : undefined, { timeoutMs: 5_000, pollMs: 100 })

    const unknown = await runCli(['cancel', 'no-such-job', '--master', cluster().url])
    expect(unknown.code).not.toBe(0)
    expect(unknown.stderr).toContain('no-such-job')
  }, 30_000)
})

describe('the CLI shows what a job computed', () => {
  const wordJob = () => jobFile('words', { nodes: [src,
    { id: 'words', op: 'flat_map', input: 'src', fn: 'l => l.split(" ")' },
    { id: 'n', op: 'count', input: 'words' },
    { id: 'of', op: 'filter', input: 'words', fn: 'w => w === "of"' },
    { id: 'some', op: 'collect', input: 'of', limit: 2 }] })
  // the reference: a plain loop over the test file
  const words = LINES.flatMap(l => l.split(' '))

  test('submit --follow prints the sinks\' results and the UI link; exit 0', async () => {
    const r = await runCli(['submit', '--follow', wordJob(), '--master', cluster().url])
    expect(r.code).toBe(0)
    const [id, ...out] = r.stdout.trim().split('\n')
    expect(out).toEqual([`n: ${words.length}`, 'some:', '"of"', '"of"'])
    expect(r.stderr).toContain(`${cluster().url}/#/jobs/${id}`)
    expect(r.stderr).toContain('SUCCEEDED')
  }, 30_000)

  test('submit --follow --json prints one JSON value: state and result', async () => {
    const r = await runCli(['submit', '--follow', '--json', wordJob(), '--master', cluster().url])
    expect(r.code).toBe(0)
    const v = JSON.parse(r.stdout) as { job_id: string; state: string; result: { sinks: Record<string, unknown> } }
    expect(v.state).toBe('SUCCEEDED')
    expect(v.result.sinks.n).toEqual({ op: 'count', value: words.length })
    const plain = await runCli(['submit', '--json', wordJob(), '--master', cluster().url])
    const accepted = JSON.parse(plain.stdout) as { job_id: string; ui: string }
    expect(accepted.ui).toBe(`${cluster().url}/#/jobs/${accepted.job_id}`)
  }, 30_000)

  test('wait ID and result ID print the result; exit codes follow the job\'s state', async () => {
    const id = (await runCli(['submit', wordJob(), '--master', cluster().url])).stdout.trim()
    const waited = await runCli(['wait', id, '--master', cluster().url])
    expect(waited.code).toBe(0)
    expect(waited.stdout).toContain(`n: ${words.length}`)
    const result = await runCli(['result', id, '--master', cluster().url])
    expect(result.code).toBe(0)
    expect(result.stdout.trim().split('\n')).toEqual([`n: ${words.length}`, 'some:', '"of"', '"of"'])
    const json = await runCli(['result', id, '--json', '--master', cluster().url])
    expect((JSON.parse(json.stdout) as { result: { sinks: Record<string, unknown> } }).result.sinks.n).toEqual({ op: 'count', value: words.length })

    const failing = await cluster().client.submit({ max_task_attempts: 1, nodes: [src, { id: 'explode', op: 'map', input: 'src', fn: "x => { throw new Error('boom') }" }, { id: 'n', op: 'count', input: 'explode' }] })
    const failed = await runCli(['wait', failing, '--master', cluster().url])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toContain('boom')
    const failedResult = await runCli(['result', failing, '--master', cluster().url])
    expect(failedResult.code).toBe(1)
    expect(failedResult.stderr).toContain('FAILED')
  }, 30_000)

  const slowJob = () => jobFile('slow', { nodes: [src,
    { id: 'slow', op: 'map', input: 'src', fn: 'x => { const end = Date.now() + 50; while (Date.now() < end); return x }' },
    { id: 'n', op: 'count', input: 'slow' }] })

  /** Runs `submit --follow` on the slow job, presses Ctrl-C once it is running, returns what it printed. */
  async function interrupt(extra: string[]): Promise<{ code: number; stdout: string; stderr: string; id: string }> {
    const proc = Bun.spawn(cliCommand(['submit', '--follow', slowJob(), '--master', cluster().url, ...extra]), { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
    try {
      const stdout = new Response(proc.stdout).text()
      let stderr = ''
      const reading = (async () => { for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk) })()
      await waitUntil('the job to be followed', () => /stage 0/.test(stderr) ? true : undefined, { timeoutMs: 10_000 })
      proc.kill('SIGINT')
      const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => -1)])
      await reading
      const out = await stdout
      return { code, stdout: out, stderr, id: out.trim() }
    } finally {
      proc.kill('SIGKILL')
    }
  }

  test('Ctrl-C on --follow leaves the job running and says how to cancel it; --cancel-on-interrupt cancels it', async () => {
    const left = await interrupt([])
    expect(left.code).toBe(130)
    expect(left.stderr).toContain(`minispark cancel ${left.id} --master ${cluster().url}`)
    expect((await cluster().client.status(left.id)).state).toBe('RUNNING')
    await cluster().client.cancel(left.id)

    const cancelled = await interrupt(['--cancel-on-interrupt'])
    expect(cancelled.code).toBe(130)
    expect((await cluster().client.waitDone(cancelled.id, { timeoutMs: 10_000, pollMs: 50 })).state).toBe('CANCELLED')
  }, 40_000)

  test('local shows progress and the job\'s UI link, then the result', async () => {
    const r = await runCli(['local', jobFile('local', { nodes: [src, { id: 'n', op: 'count', input: 'src' }] }), '--workers', '1', '--slots', '1', '--data-dir', data])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe(`n: ${LINES.length}`)
    expect(r.stderr).toMatch(/http:\/\/127\.0\.0\.1:\d+\/#\/jobs\/\S+/)
    expect(r.stderr).toContain('stage 0 read_text')
  }, 30_000)
})

describe('CLI conventions', () => {
  test('-h and -v work on every command; unknown commands and flags suggest the nearest', async () => {
    const commands = ['master', 'worker', 'submit', 'wait', 'result', 'status', 'cancel', 'workers', 'local']
    const argvs = [...commands.map(c => [c, '-h']), ['-v'], ['submit', '-v'], ['-h'], ['submti', 'x.json'], ['submit', 'x.json', '--folow'],
      ['status', '--jsno'], ['submit', '--follow=yes', 'x.json'], ['status', '--master']]
    // a few at a time: each is a process start on a machine the cluster shares
    const runs: Awaited<ReturnType<typeof runCli>>[] = []
    for (let i = 0; i < argvs.length; i += 3) runs.push(...await Promise.all(argvs.slice(i, i + 3).map(a => runCli(a))))
    for (const [i, c] of commands.entries()) {
      expect({ c, code: runs[i]!.code }).toEqual({ c, code: 0 })
      expect(runs[i]!.stdout).toContain(`usage: minispark ${c}`)
    }
    const [version, subVersion, help, typoCommand, typoFlag, typoJson, boolValue, noValue] = runs.slice(commands.length)
    expect(version!.stdout).toMatch(/^minispark \d+\.\d+\.\d+\n$/)
    expect(subVersion!.stdout).toBe(version!.stdout)
    expect(help!.code).toBe(0)
    expect(help!.stdout).toContain('commands:')
    for (const [r, hint] of [[typoCommand, 'did you mean "submit"?'], [typoFlag, 'did you mean --follow?'], [typoJson, 'did you mean --json?'],
      [boolValue, '--follow takes no value'], [noValue, '--master needs a value']] as const) {
      expect({ hint, code: r!.code }).toEqual({ hint, code: 2 })
      expect(r!.stderr).toContain(hint)
      expect(r!.stderr.trim().split('\n')).toHaveLength(1)
    }
  }, 60_000)

  test('a bad size or duration is a one-line usage error, for roles and for local', async () => {
    const runs = await Promise.all([
      runCli(['worker', '--master', '127.0.0.1:1', '--max-mem', '1x']),
      runCli(['local', jobFile('bad-size', { nodes: [src, { id: 'n', op: 'count', input: 'src' }] }), '--max-mem', 'lots']),
      runCli(['local', jobFile('bad-duration', { nodes: [src, { id: 'n', op: 'count', input: 'src' }] }), '--heartbeat-timeout', '10']),
      runCli(['master', '--heartbeat-timeout', 'soon']),
    ])
    for (const r of runs) {
      expect(r.code).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).not.toContain('    at ')
    }
    expect(runs[0]!.stderr).toContain('--max-mem 1x')
    expect(runs[1]!.stderr).toContain('--max-mem lots')
  }, 30_000)

  test('--master HOST:PORT; tables have headers; submit - reads the job from stdin', async () => {
    const hostPort = cluster().url.replace(/^http:\/\//, '')
    const workers = await runCli(['workers', '--master', hostPort])
    expect(workers.code).toBe(0)
    const [header, ...rows] = workers.stdout.trim().split('\n')
    expect(header!.split(/\s{2,}/)).toEqual(['WORKER', 'ADDRESS', 'STATUS', 'TASKS', 'MEMORY', 'LAST SEEN'])
    expect(rows.map(r => r.split(/\s+/)[0]).sort()).toEqual(cluster().workerIds.slice().sort())

    const job = JSON.stringify({ name: 'from-stdin', nodes: [src, { id: 'n', op: 'count', input: 'src' }] })
    const proc = Bun.spawn(cliCommand(['submit', '-', '--follow', '--master', hostPort]), { stdin: new Blob([job]), stdout: 'pipe', stderr: 'pipe' })
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000)
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited])
    clearTimeout(timer)
    expect(code).toBe(0)
    expect(out.trim().split('\n')[1]).toBe(`n: ${LINES.length}`)

    const list = await runCli(['status', '--master', hostPort])
    const lines = list.stdout.trim().split('\n')
    expect(lines[0]!.split(/\s{2,}/)).toEqual(['JOB_ID', 'STATE', 'PROGRESS', 'SUBMITTED', 'NAME'])
    expect(lines.some(l => l.includes('from-stdin') && l.includes('SUCCEEDED'))).toBe(true)
    const one = await runCli(['status', out.trim().split('\n')[0]!, '--master', hostPort])
    expect(one.stdout).toMatch(/\nSTAGE\s+STATE\s+TASKS\s+NODES\n0\s+SUCCEEDED\s+1\/1\s+src → n/)
  }, 30_000)
})
