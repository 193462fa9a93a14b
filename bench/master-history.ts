// What ended jobs cost the master: its resident memory after N jobs have ended, and the time of one
// idle lease tick (step(lease-check-due)) with them behind it. Runs the master's real driver and
// store (SQLite in a temp dir) in this process; workers are simulated at the driver's edge (a
// launch is answered with a successful report, a finalize with output-finalized), so no network
// time is measured. Jobs are word-count shaped: 4 input files, a reduce_by_key on 8 partitions,
// a collect and a count sink.
//
//   npx bun bench/master-history.ts [--jobs 2000] [--ticks 2000]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobId } from '../src/api/ids'
import type { JobRequest } from '../src/api/jobs'
import type { TaskReport } from '../src/api/tasks'
import { validateJob } from '../src/engine/dag'
import { SUPPORTED_OPS } from '../src/engine/plan'
import type { Clock } from '../src/roles/clock'
import { startDriver, type PendingEvent, type Driver } from '../src/roles/master/driver'
import { buildJobRun } from '../src/roles/master/planning'
import { step, type MasterAction } from '../src/roles/master/scheduler'
import { newState } from '../src/roles/master/state'
import { Store } from '../src/roles/master/store'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(process.argv[i + 1])
}
const JOBS = arg('jobs', 2000)
const TICKS = arg('ticks', 2000)

let nowMs = 1_000_000
const clock: Clock = { now: () => nowMs, every: () => {}, cancelAll: () => {} }
const dir = mkdtempSync(join(tmpdir(), 'ms-bench-history-'))
const store = new Store(join(dir, 'master.db'))

const request: JobRequest = {
  name: 'wc',
  nodes: [
    { id: 'lines', op: 'read_text', path: 'books/*.txt' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 8 },
    { id: 'top', op: 'collect', input: 'counts', limit: 20 },
    { id: 'total', op: 'count', input: 'words' },
  ],
}
const valid = validateJob(request, SUPPORTED_OPS)
const listing = { inputs: [{ node_id: 'lines', files: [0, 1, 2, 3].map(i => ({ path: `books/book-${i}.txt`, size: 200_000 + i })) }], errors: [] }

// A simulated worker: every launch succeeds at once.
const send = async (a: MasterAction): Promise<PendingEvent | null> => {
  if (a.kind === 'launch') {
    const s = a.spec
    const report: TaskReport = {
      worker_id: a.worker, incarnation: s.incarnation, attempt_id: s.attempt_id, state: 'SUCCEEDED',
      metrics: { records_in: 1000, records_out: 100, shuffle_bytes_written: 5000, shuffle_bytes_read: 0, spilled_bytes: 0 },
      shuffle_outputs: s.stage.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: Array<number>(w.partitions).fill(100) })),
      sinks: s.stage.sinks.map(id => id === 'top' ? { node_id: id, op: 'collect', records: 20, values: Array.from({ length: 20 }, (_, i) => [`word${i}`, i]) } : { node_id: id, op: 'count', records: 1000 }),
    }
    return { kind: 'task-reported', report }
  }
  if (a.kind === 'finalize-output') return { kind: 'output-finalized', job: a.job, worker: a.worker, incarnation: a.incarnation }
  return null
}

const rss = (): number => { Bun.gc(true); return process.memoryUsage.rss() }
const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`

const driver: Driver = startDriver({ clock, store, send, state: newState(3_600_000), leaseCheckMs: 250 })
for (const w of ['w1', 'w2', 'w3']) {
  driver.post({ kind: 'heartbeat-received', hb: { worker_id: w, address: `${w}.bench:8081`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 100, last_heartbeat: 0, slots: 4 } })
}
await driver.persisted()
const before = rss()

for (let i = 1; i <= JOBS; i++) {
  const id = `job-bench-${i}` as JobId
  driver.post({ kind: 'job-submitted', job: buildJobRun({ id, seq: i, request, valid, listing, defaultPartitions: 8, nowMs }) })
  for (let spins = 0; ; spins++) {
    await driver.persisted()
    await new Promise(r => setImmediate(r))
    const live = driver.state.jobs.get(id)
    if (live === undefined || live.state === 'SUCCEEDED') break
    if (spins > 1000) throw new Error(`job ${id} is stuck ${live.state}`)
  }
  nowMs += 10
}
driver.flush()
await new Promise(r => setImmediate(r))
const after = rss()
const state = driver.state
driver.stop()
const stored = store.job(`job-bench-${JOBS}` as JobId)

// An idle lease tick on the state the driver left: no worker expires, nothing is launched.
const s = state
for (const w of s.workers.values()) w.lastSeenMs = nowMs
for (let i = 0; i < 200; i++) step(s, { kind: 'lease-check-due', nowMs })
const t0 = Bun.nanoseconds()
for (let i = 0; i < TICKS; i++) step(s, { kind: 'lease-check-due', nowMs })
const tickUs = (Bun.nanoseconds() - t0) / TICKS / 1000

console.log(JSON.stringify({
  jobs: JOBS, last_job_state: stored?.state ?? null, jobs_in_memory: s.jobs.size, attempts_in_memory: s.attempts.size,
  rss_before: mib(before), rss_after: mib(after), rss_growth: mib(after - before), lease_tick_us: Number(tickUs.toFixed(2)),
}))
store.close()
rmSync(dir, { recursive: true, force: true })
