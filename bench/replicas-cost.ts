// What `"replicas": 2` costs on a word count's output: master + 2 workers with disks of their own
// (each data dir holds the input, hard-linked, so each split may run on either), the same job with
// replicas 1 and 2, alternately, `--runs` times each. Reports wall times and the output's size;
// never fails. Usage: bun bench/replicas-cost.ts [--mb 1024] [--runs 3]
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MasterClient } from '../src/api/client'
import type { JobRequest } from '../src/api/jobs'
import { selfCommand, spawnRole, type Role } from '../src/roles/spawn'

const root = new URL('..', import.meta.url).pathname
const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] ?? fallback : fallback }
const mb = Number(arg('mb', '1024'))
const runs = Number(arg('runs', '3'))
const dataA = join(root, 'bench', '.data')
const dataB = join(root, 'bench', '.data-b')
const textDir = `text-${mb}mb`
if (!existsSync(join(dataA, textDir))) {
  Bun.spawnSync(['node', 'bench/gen/gen-text.mjs', '--out', join(dataA, textDir), '--mb', String(mb), '--files', '8', '--seed', '42'], { cwd: root, stdout: 'inherit' })
}
// The second disk's copy: hard links (no space, same bytes), in a folder of its own.
if (!existsSync(join(dataB, textDir))) {
  mkdirSync(dataB, { recursive: true })
  Bun.spawnSync(['cp', '-al', join(dataA, textDir), join(dataB, textDir)])
}

const job = (replicas: number): JobRequest => ({
  name: `wc-replicas-${replicas}`, nodes: [
    { id: 'lines', op: 'read_text', path: `${textDir}/*.txt` },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_text', input: 'counts', path: `out/replicas-${replicas}`, overwrite: true, replicas },
  ],
})

async function run(client: MasterClient, replicas: number): Promise<{ seconds: number; state: string; bytes: number }> {
  const t0 = performance.now()
  const id = await client.submit(job(replicas))
  for (;;) {
    const s = await client.status(id)
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(s.state)) {
      const res = await fetch(`${client.base}/outputs?path=out/replicas-${replicas}`).then(r => r.json()).catch(() => []) as { bytes?: number }[]
      return { seconds: (performance.now() - t0) / 1000, state: s.state, bytes: res[0]?.bytes ?? 0 }
    }
    await Bun.sleep(50)
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ms-replicas-'))
const roles: Role[] = []
try {
  const master = await spawnRole(selfCommand(['master', '--port', '0', '--state-db', join(dir, 'm.db')]))
  roles.push(master)
  for (const [i, data] of [dataA, dataB].entries()) {
    roles.push(await spawnRole(selfCommand(['worker', '--master', master.url, '--port', '0', '--id', `w${i}`, '--slots', '1', '--data-dir', data, '--work-dir', join(dir, `work${i}`)])))
  }
  const client = new MasterClient(master.url)
  while ((await client.workers()).length < 2) await Bun.sleep(50)
  const times: Record<number, number[]> = { 1: [], 2: [] }
  let bytes = 0
  for (let r = 0; r < runs; r++) {
    for (const replicas of [1, 2]) {
      const got = await run(client, replicas)
      if (got.state !== 'SUCCEEDED') console.log(`replicas ${replicas}: ${got.state}`)
      times[replicas]!.push(got.seconds)
      bytes = got.bytes
      console.log(`run ${r + 1} replicas ${replicas}: ${got.seconds.toFixed(2)} s`)
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(JSON.stringify({ mb, runs, output_bytes: bytes, replicas_1_s: times[1], replicas_2_s: times[2], median_1: median(times[1]!), median_2: median(times[2]!), ratio: median(times[2]!) / median(times[1]!) }))
} finally {
  for (const r of roles) r.proc.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}
