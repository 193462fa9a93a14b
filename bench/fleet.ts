// A simulated fleet: N fake workers in this one process, each with its own HTTP server, speaking the
// worker protocol to a real master. They heartbeat every interval ± a third (echoing the
// incarnation the master gives them, listing what they run), accept every task with a 202 (or, in
// a batch, each one) and report it SUCCEEDED at once with empty outputs, and answer the master's
// listing with a synthetic file. Like a real worker, each sends one report request at a time, and
// what finished meanwhile goes in the next (POST /tasks/reports); the answer may carry its next
// tasks (take_tasks), taken as a POST /tasks would be. Measures, from the workers' side,
// heartbeat latency while idle and while a job of T no-op tasks runs, and how fast the master gets
// through that job. One more worker, the probe, beats every 50 ms from its own process while the job
// runs (PAUSED, so it gets no task; it joins once the job is planned, so it is never asked to list
// the input): its latency is the master's answer time alone, while the fakes' latency also
// holds this one process's queues (its event loop, its HTTP client) behind a thousand fakes'
// reports and launches.
//
//   bun bench/fleet.ts --master URL [--workers 1000] [--tasks 50000] [--slots 2] [--interval-ms 3000]
//                      [--idle-s 10] [--out result.json]
//
// The job reads "fleet/T": its listing answers one file of T bytes, and split_bytes 1 cuts it into
// T tasks. Prints the result as one JSON line (and writes it to --out).
import { writeFileSync } from 'node:fs'
import type { Heartbeat, HeartbeatAck, WorkerInfo } from '../src/api/heartbeat'
import type { ListAnswer, ListRequest, TaskBatch, TaskReport, TaskSpec } from '../src/api/tasks'
import type { JobRequest, JobStatus } from '../src/api/jobs'

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] ?? fallback : fallback
}
const master = arg('master', '').replace(/\/+$/, '')
if (master === '') { console.error('fleet: give --master http://HOST:PORT'); process.exit(2) }
const N = Number(arg('workers', '1000'))
const TASKS = Number(arg('tasks', '50000'))
const SLOTS = Number(arg('slots', '2'))
const INTERVAL_MS = Number(arg('interval-ms', '3000'))
const IDLE_S = Number(arg('idle-s', '10'))
const OUT = arg('out', '')
/** The fakes share one data folder (one disk id): the master lists the input once and may place
 *  any split on any of them, as on a shared file system. Without one, each fake would be a disk of
 *  its own holding a copy of the input, and planning would weigh a thousand copies of every split. */
const DISK = arg('disk-id', 'fleet-shared')

type Phase = 'join' | 'idle' | 'load' | 'after'
let phase: Phase = 'join'
const latencies: Record<Phase, number[]> = { join: [], idle: [], load: [], after: [] }
let hbFailures = 0
let reportFailures = 0
let launches = 0
/** of the launches, those that came with the answer to a report */
let taken = 0
let staleLaunches = 0
const launchTimes: number[] = []
let reportsAcked = 0
// This process's own event-loop lag, per phase: the part of a measured latency that is the tool's.
const lags: Record<Phase, number[]> = { join: [], idle: [], load: [], after: [] }
let tick = performance.now()
const lagTimer = setInterval(() => { const now = performance.now(); lags[phase].push(Math.max(0, now - tick - 10)); tick = now }, 10)

type Fake = {
  id: string; address: string; incarnation: string; running: Set<string>; server: ReturnType<typeof Bun.serve>; timer?: ReturnType<typeof setTimeout>
  /** reports waiting for the one on its way */
  outbox: TaskReport[]; reporting: boolean
}
const fakes: Fake[] = []

const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

/** "fleet/50000" lists one file of 50 000 bytes: with split_bytes 1, 50 000 tasks. */
function listing(req: ListRequest): ListAnswer {
  return {
    inputs: req.inputs.map(i => ({ node_id: i.node_id, files: [{ path: `${i.path}.txt`, size: Number(/(\d+)$/.exec(i.path)?.[1] ?? '1') }] })),
    errors: [],
  }
}

function reportOf(f: Fake, spec: TaskSpec): TaskReport {
  const nodes = new Map(spec.stage.nodes.map(n => [n.id, n]))
  return {
    worker_id: f.id, incarnation: spec.incarnation, attempt_id: spec.attempt_id, state: 'SUCCEEDED',
    metrics: { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
    shuffle_outputs: spec.stage.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: new Array<number>(w.partitions).fill(0) })),
    sinks: spec.stage.sinks.map(id => {
      const op = nodes.get(id)?.op ?? 'count'
      return op === 'collect' ? { node_id: id, op, records: 0, values: [] } : { node_id: id, op, records: 0 }
    }),
  }
}

function report(f: Fake, spec: TaskSpec): void {
  f.outbox.push(reportOf(f, spec))
  if (!f.reporting) void drain(f)
}

async function drain(f: Fake): Promise<void> {
  f.reporting = true
  while (f.outbox.length > 0) {
    const batch = f.outbox.splice(0, 256)
    // As a real worker: the answer may carry the next tasks for this worker (take_tasks).
    let ok = await send('/tasks/reports', JSON.stringify({ reports: batch, take_tasks: true }), tasks => { for (const spec of tasks) accept(f, spec) })
    // A master without the batch route (an older version) takes them one by one.
    if (ok === 404) ok = (await Promise.all(batch.map(r => send('/tasks/report', JSON.stringify(r))))).every(x => x === true)
    if (ok === true) reportsAcked += batch.length
    else reportFailures += batch.length
    for (const r of batch) f.running.delete(r.attempt_id)
  }
  f.reporting = false
}

async function send(path: string, body: string, onTasks?: (tasks: TaskSpec[]) => void): Promise<boolean | 404> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const res = await fetch(`${master}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      const answer = await res.text()
      if (res.ok) {
        const tasks = onTasks === undefined ? undefined : (JSON.parse(answer) as { tasks?: TaskSpec[] }).tasks
        if (tasks !== undefined) { taken += tasks.length; onTasks!(tasks) }
        return true
      }
      if (res.status === 404) return 404
    } catch { /* retried */ }
    await Bun.sleep(100 * 2 ** attempt)
  }
  return false
}

/** Takes one task as a worker's POST /tasks does; a refusal is the error answer's body. */
function accept(f: Fake, spec: TaskSpec): { code: string; message: string } | null {
  launches++
  launchTimes.push(performance.now())
  if (spec.incarnation !== f.incarnation) { staleLaunches++; return { code: 'STALE_INCARNATION', message: 'stale' } }
  f.running.add(spec.attempt_id)
  setImmediate(() => report(f, spec))
  return null
}

function startFake(i: number): Fake {
  const f = { id: `fleet-${String(i).padStart(4, '0')}`, address: '', incarnation: '', running: new Set<string>(), outbox: [], reporting: false } as unknown as Fake
  f.server = Bun.serve({
    hostname: '127.0.0.1', port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname
      if (req.method === 'POST' && path === '/tasks') {
        const refused = accept(f, await req.json() as TaskSpec)
        return refused === null ? json({ accepted: true }, 202) : json({ error: refused }, 400)
      }
      if (req.method === 'POST' && path === '/tasks/batch') {
        const { tasks } = await req.json() as TaskBatch
        return json({ results: tasks.map(spec => { const refused = accept(f, spec); return refused === null ? { attempt_id: spec.attempt_id, accepted: true } : { attempt_id: spec.attempt_id, accepted: false, error: refused } }) })
      }
      if (req.method === 'POST' && path === '/inputs/list') return json(listing(await req.json() as ListRequest))
      if (req.method === 'POST' && (path === '/outputs/clear' || path === '/outputs/finalize')) { await req.arrayBuffer(); return json({ ok: true }) }
      if (req.method === 'POST' && path.startsWith('/jobs/') && path.endsWith('/drop')) { await req.arrayBuffer(); return json({ killed: 0 }) }
      if (req.method === 'DELETE' && path.startsWith('/tasks/')) return json({ killed: false })
      if (path === '/health') return json({ ok: true })
      return json({ error: { code: 'NOT_FOUND', message: path } }, 404)
    },
  })
  f.address = `127.0.0.1:${f.server.port}`
  return f
}

async function beat(f: Fake): Promise<void> {
  const hb: Heartbeat = {
    worker_id: f.id, address: f.address, status: f.running.size > 0 ? 'BUSY' : 'IDLE', active_tasks: f.running.size,
    mem_usage_mb: 50, last_heartbeat: Math.floor(Date.now() / 1000), slots: SLOTS, incarnation: f.incarnation, running: [...f.running], disk_id: DISK,
  }
  const p = phase
  const t0 = performance.now()
  try {
    const res = await fetch(`${master}/heartbeat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hb), signal: AbortSignal.timeout(10_000) })
    const ack = await res.json() as HeartbeatAck
    if (!res.ok) throw new Error(`heartbeat answered ${res.status}`)
    latencies[p].push(performance.now() - t0)
    // A new incarnation means the master dropped us: nothing we run counts any more.
    if (f.incarnation !== '' && ack.incarnation !== f.incarnation) f.running.clear()
    f.incarnation = ack.incarnation
  } catch {
    hbFailures++
  }
}

function loop(f: Fake, delayMs: number): void {
  f.timer = setTimeout(async () => {
    await beat(f)
    loop(f, INTERVAL_MS * (2 / 3 + (2 / 3) * Math.random()))
  }, delayMs)
}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(master + path)
  return await res.json() as T
}

const pct = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}
const summary = (xs: number[]) => ({ n: xs.length, p50_ms: pct(xs, 0.5), p99_ms: pct(xs, 0.99), max_ms: pct(xs, 1) })

const t0 = performance.now()
for (let i = 0; i < N; i++) fakes.push(startFake(i))
// A fleet that starts together would beat in step; real workers start over time. Spread the first beats.
for (const f of fakes) loop(f, Math.random() * INTERVAL_MS)
for (;;) {
  const live = (await getJson<WorkerInfo[]>('/workers')).filter(w => w.status !== 'DEAD').length
  if (live >= N) break
  if (performance.now() - t0 > 60_000) { console.error(`fleet: only ${live} of ${N} workers registered after 60 s`); break }
  await Bun.sleep(200)
}
const joinedS = (performance.now() - t0) / 1000
// The probe's own process: in this one, a fake's heartbeat can wait behind every other fake's work.
// It reads phase names on stdin ("stop" ends it) and prints its latencies by phase as JSON.
const probeCode = `
let phase = 'load', inc = '', stop = false
const lat = { load: [], after: [] }
;(async () => { for await (const chunk of Bun.stdin.stream()) for (const w of new TextDecoder().decode(chunk).split('\\n')) { if (w === 'stop') stop = true; else if (w in lat) phase = w } })()
const master = ${JSON.stringify(master)}
;(async () => {
  while (!stop) {
    const body = JSON.stringify({ worker_id: 'fleet-probe', address: '127.0.0.1:9', status: 'PAUSED', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 1, incarnation: inc, running: [] })
    const p = phase, t0 = performance.now()
    try {
      const res = await fetch(master + '/heartbeat', { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      inc = (await res.json()).incarnation
      lat[p]?.push(performance.now() - t0)
    } catch {}
    await Bun.sleep(50)
  }
  console.log(JSON.stringify(lat))
  process.exit(0)
})()`
let probe: ReturnType<typeof spawnProbe> | undefined
const spawnProbe = () => Bun.spawn([process.execPath, '-e', probeCode], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' })
const probeSays = (m: { phase?: Phase; stop?: boolean }): void => { probe?.stdin.write(`${m.stop ? 'stop' : m.phase}\n`); void probe?.stdin.flush() }
phase = 'idle'
await Bun.sleep(IDLE_S * 1000)

phase = 'load'
const job: JobRequest = {
  name: `fleet-${TASKS}`, split_bytes: 1,
  nodes: [{ id: 'noop', op: 'read_text', path: `fleet/${TASKS}` }, { id: 'n', op: 'count', input: 'noop' }],
}
const submitT = performance.now()
const submitRes = await fetch(`${master}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job) })
const accepted = await submitRes.json() as { job_id?: string; error?: unknown }
const submittedT = performance.now()
probe = spawnProbe()
let status: JobStatus | null = null
if (accepted.job_id !== undefined) {
  for (;;) {
    status = await getJson<JobStatus>(`/jobs/${accepted.job_id}`)
    if (status.state === 'SUCCEEDED' || status.state === 'FAILED' || status.state === 'CANCELLED') break
    if (performance.now() - submitT > 30 * 60_000) break
    await Bun.sleep(50)
  }
}
const doneT = performance.now()
phase = 'after'
probeSays({ phase })
await Bun.sleep(Math.min(IDLE_S, 3) * 1000)

const jobS = (doneT - submitT) / 1000
const lt = launchTimes.filter(t => t >= submitT)
// Steady state: the middle 80 % of launches, free of the start-up burst and the tail.
const a = pct(lt, 0.1), b = pct(lt, 0.9)
probeSays({ stop: true })
const probeOut = probe === undefined ? '' : await new Response(probe.stdout).text()
const probeLat = JSON.parse(probeOut.trim().split('\n').pop() || '{"load":[]}') as { load: number[] }
const result = {
  workers: N, slots_per_worker: SLOTS, tasks: TASKS, interval_ms: INTERVAL_MS, joined_s: joinedS,
  heartbeat: {
    idle: summary(latencies.idle), load: summary(latencies.load), join: summary(latencies.join), failures: hbFailures,
    probe: { load: summary(probeLat.load) },
  },
  tool_event_loop_lag: { idle: summary(lags.idle), load: summary(lags.load) },
  job: {
    state: status?.state ?? `not accepted: ${JSON.stringify(accepted.error ?? accepted).slice(0, 300)}`,
    submit_s: (submittedT - submitT) / 1000, seconds: jobS, tasks_per_s: TASKS / jobS,
    steady_tasks_per_s: a !== null && b !== null && b > a ? (0.8 * lt.length) / ((b - a) / 1000) : null,
    launches, launches_with_report_answers: taken, stale_launches: staleLaunches, reports_acked: reportsAcked, report_failures: reportFailures,
  },
}
clearInterval(lagTimer)
for (const f of fakes) { if (f.timer) clearTimeout(f.timer); f.server.stop(true) }
const line = JSON.stringify(result)
if (OUT !== '') writeFileSync(OUT, line + '\n')
console.log(line)
process.exit(0)
