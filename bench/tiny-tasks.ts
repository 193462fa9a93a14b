// The control plane's cost per task, alone: a master and W workers (separate processes of the
// engine's source tree, or of a compiled binary) run jobs of T tiny tasks (one 5-byte split each)
// one after another, and this prints, per job, the wall time per task and the CPU time per task of
// the master and of the workers (CPU time is steadier than wall time on a shared machine). With
// --prof DIR the master (and with --prof-worker the first worker's main thread) runs under
// `bun --cpu-prof` and writes its profile there at exit.
//
//   bun bench/tiny-tasks.ts [--src DIR | --bin FILE] [--tasks 10000] [--jobs 3] [--workers 2] [--slots 1]
//                           [--one-task N] [--prof DIR] [--json]
//
// `--one-task N` first runs N one-task jobs back to back (after 3 to warm up) and prints their
// submit → SUCCEEDED latency.
//
// `--src` defaults to this checkout: give another checkout's root to compare two versions of the
// engine, run after run (bench/compare-cp.sh alternates them).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { startRole, submit, waitJob, type Started } from './lib/cluster'
import { cpuTicks, stopPids } from './lib/proc'

const opt = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] ?? fallback : fallback }
const src = resolve(opt('src', join(import.meta.dir, '..')))
const bin = opt('bin', '')
const TASKS = Number(opt('tasks', '10000'))
const JOBS = Number(opt('jobs', '3'))
const WORKERS = Number(opt('workers', '2'))
const SLOTS = Number(opt('slots', '1'))
const PROF = opt('prof', '')
const ONE_TASK = Number(opt('one-task', '0'))
const asJson = process.argv.includes('--json')

const role = (args: string[], prof = false): string[] =>
  bin !== '' ? [bin, ...args] : [process.execPath, ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${resolve(PROF)}`] : []), join(src, 'src', 'cli.ts'), ...args]

const tmp = mkdtempSync(join(tmpdir(), 'tiny-tasks-'))
const data = join(tmp, 'data')
mkdirSync(join(data, 'tiny'), { recursive: true })
writeFileSync(join(data, 'tiny', 'lines.txt'), Array.from({ length: TASKS }, (_, i) => String(i % 10000).padStart(4, '0') + '\n').join(''))

const procs: Started[] = []
const stop = async (): Promise<void> => { await stopPids(procs.map(p => p.proc.pid)) }
process.on('SIGINT', () => { void stop().then(() => process.exit(130)) })
const results: { ms_per_task: number; master_cpu_ms_per_task: number; workers_cpu_ms_per_task: number; state: string; count_ok: boolean }[] = []
try {
  const master = await startRole(role(['master', '--port', '0', '--state-db', join(tmp, 'master.db'), '--log-level', 'warn'], PROF !== ''), tmp)
  procs.push(master)
  for (let i = 1; i <= WORKERS; i++) {
    procs.push(await startRole(role(['worker', '--master', master.url, '--port', '0', '--id', `tiny-${i}`, '--slots', String(SLOTS), '--max-mem', '1g',
      '--data-dir', data, '--work-dir', join(tmp, 'work'), '--log-level', 'warn'], PROF !== '' && i === 1 && process.argv.includes('--prof-worker')), tmp))
  }
  for (const deadline = Date.now() + 20_000; ;) {
    const live = (await (await fetch(`${master.url}/workers`)).json() as { status: string }[]).filter(w => w.status !== 'DEAD').length
    if (live >= WORKERS) break
    if (Date.now() > deadline) throw new Error(`only ${live} of ${WORKERS} workers registered`)
    await Bun.sleep(50)
  }
  if (ONE_TASK > 0) {
    // One-task jobs back to back: submit → SUCCEEDED as a client polling back to back sees it.
    writeFileSync(join(data, 'tiny', 'one.txt'), 'one\n')
    const one = { name: 'one-task', nodes: [{ id: 'line', op: 'read_text', path: 'tiny/one.txt' }, { id: 'n', op: 'count', input: 'line' }] }
    const lat: number[] = []
    for (let i = 0; i < ONE_TASK + 3; i++) {
      const t0 = performance.now()
      const s = await waitJob(master.url, await submit(master.url, one), 0, 60_000)
      if (s.state !== 'SUCCEEDED') throw new Error(`one-task job ${s.state}`)
      if (i >= 3) lat.push(performance.now() - t0)
    }
    lat.sort((a, b) => a - b)
    console.log(`one-task jobs (${lat.length}): median ${lat[Math.floor(lat.length / 2)]!.toFixed(1)} ms, p90 ${lat[Math.floor(lat.length * 0.9)]!.toFixed(1)} ms, min ${lat[0]!.toFixed(1)} ms`)
  }
  const job = { name: 'tiny-tasks', split_bytes: 5, nodes: [{ id: 'line', op: 'read_text', path: 'tiny/lines.txt' }, { id: 'n', op: 'count', input: 'line' }] }
  for (let j = 0; j < JOBS; j++) {
    const cpu0 = procs.map(p => cpuTicks(p.proc.pid) ?? 0)
    const t0 = performance.now()
    const id = await submit(master.url, job)
    const s = await waitJob(master.url, id, 10, 600_000)
    const ms = performance.now() - t0
    const cpu = procs.map((p, i) => ((cpuTicks(p.proc.pid) ?? 0) - cpu0[i]!) * 10)
    const result = s.state === 'SUCCEEDED' ? await (await fetch(`${master.url}/jobs/${id}/result`)).json() as { sinks: { n?: { value: number } } } : null
    const r = {
      ms_per_task: ms / TASKS, master_cpu_ms_per_task: cpu[0]! / TASKS, workers_cpu_ms_per_task: cpu.slice(1).reduce((a, b) => a + b, 0) / TASKS,
      state: s.state, count_ok: result?.sinks.n?.value === TASKS,
    }
    results.push(r)
    if (!asJson) console.log(`job ${j + 1}: ${r.state}${r.count_ok ? '' : ' (COUNT WRONG)'} ${(ms / 1000).toFixed(2)} s = ${r.ms_per_task.toFixed(3)} ms/task; CPU per task: master ${r.master_cpu_ms_per_task.toFixed(3)} ms, workers ${r.workers_cpu_ms_per_task.toFixed(3)} ms`)
  }
} finally {
  // The master writes its profile on a clean exit (SIGTERM first: stopPids).
  await stop()
  rmSync(tmp, { recursive: true, force: true })
}
if (asJson) console.log(JSON.stringify({ src: bin || src, tasks: TASKS, workers: WORKERS, slots: SLOTS, jobs: results }))
