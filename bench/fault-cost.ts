// What one SIGKILLed worker costs: a 200 MB word count on master + 3 workers, once without
// faults and once with a worker killed when the map stage is 40 % done (no replacement). Reports
// wall times; never fails. Usage: bun bench/fault-cost.ts [--mb 200] [--timeout 10s]
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MasterClient } from '../src/api/client'
import type { JobRequest } from '../src/api/jobs'
import { selfCommand, spawnRole, type Role } from '../src/roles/spawn'

const root = new URL('..', import.meta.url).pathname
const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] ?? fallback : fallback }
const mb = Number(arg('mb', '200'))
const timeout = arg('timeout', '10s')
const dataDir = join(root, 'bench', '.data')
const textDir = `text-${mb}mb`
if (!existsSync(join(dataDir, textDir))) {
  Bun.spawnSync(['node', 'bench/gen/gen-text.mjs', '--out', join(dataDir, textDir), '--mb', String(mb), '--files', '8', '--seed', '42'], { cwd: root, stdout: 'inherit' })
}

const job = (out: string): JobRequest => ({
  name: 'wc', nodes: [
    { id: 'lines', op: 'read_text', path: `${textDir}/*.txt` },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_text', input: 'counts', path: out, overwrite: true },
  ],
})

async function run(kill: boolean): Promise<{ seconds: number; state: string; retried: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ms-faultcost-'))
  const roles: Role[] = []
  try {
    const master = await spawnRole(selfCommand(['master', '--port', '0', '--state-db', join(dir, 'm.db'), '--heartbeat-timeout', timeout]))
    roles.push(master)
    for (let i = 0; i < 3; i++) {
      roles.push(await spawnRole(selfCommand(['worker', '--master', master.url, '--port', '0', '--id', `w${i}`, '--slots', '1',
        '--data-dir', dataDir, '--work-dir', join(dir, 'work')])))
    }
    const client = new MasterClient(master.url)
    while ((await client.workers()).length < 3) await Bun.sleep(50)
    const t0 = performance.now()
    const id = await client.submit(job(`out/faultcost-${kill ? 'kill' : 'clean'}`))
    let killed = !kill
    for (;;) {
      const s = await client.status(id)
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(s.state)) {
        const tasks = await client.tasks(id)
        return { seconds: (performance.now() - t0) / 1000, state: s.state, retried: tasks.filter(t => t.attempt > 0).length }
      }
      const st = s.stages[0]!.tasks
      if (!killed && st.total > 0 && st.succeeded / st.total >= 0.4) { roles[1]!.proc.kill('SIGKILL'); killed = true }
      await Bun.sleep(50)
    }
  } finally {
    for (const r of roles) r.proc.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

const clean = await run(false)
const faulty = await run(true)
console.log(`word count of ${mb} MiB on 3 workers (1 slot each), heartbeat timeout ${timeout}`)
console.log(`  no fault:                 ${clean.seconds.toFixed(1)} s (${clean.state})`)
console.log(`  one worker SIGKILLed:     ${faulty.seconds.toFixed(1)} s (${faulty.state}, ${faulty.retried} attempts re-run)`)
console.log(`  extra wall time:          ${(faulty.seconds - clean.seconds).toFixed(1)} s`)
