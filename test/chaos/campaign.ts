// The fault campaign: seeded schedules of faults against a real local cluster running a mix of jobs
// (random DAGs with mutating functions, a word count, a sort that spills, collects). Faults:
// SIGKILL of a worker (replaced under the same id), SIGSTOP/SIGCONT of a worker (a peer that
// hangs, short or past its lease), SIGKILL and restart of the master on its state file, a work dir
// that fills up (one worker's work dir is a small tmpfs when the campaign runs as root), and
// cancels. After each schedule, with the faults stopped: every job that SUCCEEDED is exact, every
// job ended, no worker is left PAUSED or with a busy slot, no temporary file is left behind, and the
// master's memory is back near where it started.
//
//   bun test/chaos/campaign.ts --seeds N --minutes M     (npm run chaos -- --seeds N --minutes M)
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MasterClient } from '../../src/api/client'
import type { JobRequest, JobStatus } from '../../src/api/jobs'
import { generateText, killAll, plainWordcount, readParts, spawnRoleProc, tempDir, textFiles, waitUntil, type RoleProc } from '../support/cluster'
import { seeded } from '../support/oracle'
import { generate, problemsOf, writeSources, type Case, type Pair } from '../support/random-dag'

export type CampaignOptions = {
  seeds: number
  firstSeed?: number
  /** stop starting schedules after this long */
  minutes?: number
  /** how long each schedule injects faults */
  faultSeconds?: number
  log?: (line: string) => void
}

export type ScheduleReport = {
  seed: number
  faults: Record<string, number>
  jobs: number
  succeeded: number
  failed: number
  cancelled: number
  wrong: string[]
  stuck: string[]
  /** why each FAILED job failed: allowed (a full disk, say), but worth reading */
  failures: string[]
  leaks: string[]
}

const HEARTBEAT = ['--heartbeat-interval', '300ms']
const TIMEOUT = '2s'
const WORKERS = 3

type Live = {
  dir: string
  /** a small file system of its own for the last worker's work dir, or null where none can be mounted */
  smallDisk: string | null
  data: string
  port: string
  master: RoleProc
  workers: Map<string, RoleProc>
  client: MasterClient
}

function masterArgs(l: { dir: string; port: string }): string[] {
  return ['master', '--port', l.port, '--state-db', join(l.dir, 'm.db'), '--heartbeat-timeout', TIMEOUT]
}

function workerArgs(l: Live, id: string): string[] {
  const work = id === `w${WORKERS}` && l.smallDisk !== null ? l.smallDisk : join(l.dir, 'work')
  return ['worker', '--master', `http://127.0.0.1:${l.port}`, '--port', '0', '--id', id, '--slots', '2', '--max-mem', '48MiB',
    '--data-dir', l.data, '--work-dir', work, ...HEARTBEAT]
}

/** Mounts a 32 MiB tmpfs at DIR/small-disk when this process may (root); null otherwise. */
function mountSmallDisk(dir: string): string | null {
  const at = join(dir, 'small-disk')
  mkdirSync(at, { recursive: true })
  if (process.getuid?.() !== 0) return null
  const r = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', at], { stdout: 'pipe', stderr: 'pipe' })
  return r.exitCode === 0 ? at : null
}

function unmountSmallDisk(at: string | null): void {
  if (at !== null) Bun.spawnSync(['umount', '-l', at], { stdout: 'pipe', stderr: 'pipe' })
}

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : 0
}

async function startLive(dir: string, data: string, smallDisk: string | null): Promise<Live> {
  const first = await spawnRoleProc('master', ['master', '--port', '0', '--state-db', join(dir, 'm.db'), '--heartbeat-timeout', TIMEOUT])
  const port = new URL(first.url).port
  const l: Live = { dir, smallDisk, data, port, master: first, workers: new Map(), client: new MasterClient(first.url) }
  for (let i = 1; i <= WORKERS; i++) l.workers.set(`w${i}`, await spawnRoleProc(`w${i}`, workerArgs(l, `w${i}`)))
  await waitUntil('every worker live', async () => (await l.client.workers()).filter(w => w.status !== 'DEAD').length === WORKERS ? true : undefined, { timeoutMs: 15_000 })
  return l
}

// ---- the job mix ------------------------------------------------------------------------------

type Check = (status: JobStatus) => Promise<string[]>

type Submitted = { id: string; name: string; check: Check }

function wordcount(out: string): JobRequest {
  return {
    name: 'chaos-wordcount', split_bytes: 256 * 1024,
    nodes: [
      { id: 'lines', op: 'read_text', path: 'text' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'out', op: 'write_jsonl', input: 'counts', path: out, overwrite: true },
    ],
  }
}

function sortJob(): JobRequest {
  return {
    name: 'chaos-sort', split_bytes: 512 * 1024, partitions: 4,
    nodes: [
      { id: 'lines', op: 'read_text', path: 'text' },
      { id: 'sorted', op: 'sort', input: 'lines' },
      { id: 'n', op: 'count', input: 'sorted' },
      { id: 'firsts', op: 'collect', input: 'sorted', limit: 50 },
    ],
  }
}

class Mix {
  private n = 0
  private readonly reference: Map<string, number>
  private readonly sortedLines: string[]

  constructor(private readonly data: string, private readonly sources: Record<string, Pair[]>, private readonly client: () => MasterClient) {
    this.reference = plainWordcount(textFiles(join(data, 'text')))
    const lines: string[] = []
    for (const f of textFiles(join(data, 'text'))) {
      const ls = readFileSync(f, 'utf8').split('\n')
      if (ls.at(-1) === '') ls.pop()
      lines.push(...ls)
    }
    this.sortedLines = lines.sort()
  }

  /** The next job of the mix, with the check of its outcome. */
  next(r: ReturnType<typeof seeded>, seed: number): { job: JobRequest; check: (id: string) => Check } {
    const k = this.n++
    const kind = r.int(6)
    if (kind === 0) {
      const out = `out/chaos-${seed}-${k}`
      return { job: wordcount(out), check: () => async () => {
        const got = new Map<string, number>()
        for (const line of readParts(join(this.data, out))) {
          const [w, c] = JSON.parse(line) as [string, number]
          if (got.has(w)) return [`${out}: word ${w} twice`]
          got.set(w, c)
        }
        if (got.size !== this.reference.size) return [`${out}: ${got.size} words, want ${this.reference.size}`]
        for (const [w, c] of this.reference) if (got.get(w) !== c) return [`${out}: ${w} counted ${got.get(w)}, want ${c}`]
        return []
      } }
    }
    if (kind === 1) {
      return { job: sortJob(), check: id => async () => {
        const res = await this.client().result(id)
        const n = res.sinks.n
        const firsts = res.sinks.firsts
        if (n?.op !== 'count' || n.value !== this.sortedLines.length) return [`sort: count ${JSON.stringify(n)}, want ${this.sortedLines.length}`]
        if (firsts?.op !== 'collect' || JSON.stringify(firsts.values) !== JSON.stringify(this.sortedLines.slice(0, 50))) return ['sort: the first 50 lines are not the smallest, in order']
        return []
      } }
    }
    const cs: Case = generate(seed * 1000 + k, { sourceDir: 'prop', sources: this.sources, outDir: `out/chaos-dag-${seed}-${k}`, mutate: true })
    return { job: cs.job, check: id => async status => {
      const result = await this.client().result(id)
      return problemsOf(cs, this.data, status, result)
    } }
  }
}

// ---- faults -----------------------------------------------------------------------------------

type Fault = 'kill-worker' | 'stop-worker' | 'kill-master' | 'fill-disk' | 'cancel'

const FILLER = 'filler.bin'

async function inject(l: Live, f: Fault, r: ReturnType<typeof seeded>, running: Submitted[]): Promise<void> {
  const ids = [...l.workers.keys()]
  switch (f) {
    case 'kill-worker': {
      const id = r.pick(ids)
      const p = l.workers.get(id)!
      p.proc.kill('SIGKILL')
      await p.proc.exited
      await Bun.sleep(r.int(1500))
      l.workers.set(id, await spawnRoleProc(id, workerArgs(l, id)))
      break
    }
    case 'stop-worker': {
      // A peer that hangs: shorter than its lease, or long enough to be declared DEAD.
      const p = l.workers.get(r.pick(ids))!
      process.kill(p.pid, 'SIGSTOP')
      await Bun.sleep(r.chance(0.5) ? 500 + r.int(1000) : 2500 + r.int(2500))
      process.kill(p.pid, 'SIGCONT')
      break
    }
    case 'kill-master': {
      l.master.proc.kill('SIGKILL')
      await l.master.proc.exited
      await Bun.sleep(r.int(1000))
      l.master = await spawnRoleProc('master', masterArgs(l))
      l.client = new MasterClient(l.master.url)
      break
    }
    case 'fill-disk': {
      // The small disk fills up for a while, then frees: tasks there fail on a full disk.
      if (l.smallDisk === null) break
      const free = statfsSync(l.smallDisk).bavail * statfsSync(l.smallDisk).bsize
      try { writeFileSync(join(l.smallDisk, FILLER), new Uint8Array(Math.max(0, free - 4096))) } catch { /* full already */ }
      await Bun.sleep(1000 + r.int(3000))
      rmSync(join(l.smallDisk, FILLER), { force: true })
      break
    }
    case 'cancel': {
      const victim = running.length > 0 ? r.pick(running) : undefined
      if (victim !== undefined) await l.client.cancel(victim.id).catch(() => undefined)
      break
    }
  }
}

// ---- one schedule -----------------------------------------------------------------------------

const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED']

async function runSchedule(l: Live, mix: Mix, seed: number, faultSeconds: number): Promise<ScheduleReport> {
  const r = seeded(seed)
  const report: ScheduleReport = { seed, faults: {}, jobs: 0, succeeded: 0, failed: 0, cancelled: 0, wrong: [], stuck: [], leaks: [], failures: [] }
  const submitted: Submitted[] = []
  const submitOne = async (): Promise<void> => {
    const { job, check } = mix.next(r, seed)
    for (let tries = 0; tries < 20; tries++) {
      try {
        const id = await l.client.submit(job)
        submitted.push({ id, name: job.name ?? '', check: check(id) })
        return
      } catch (e) {
        // the master is restarting: submit again when it is back
        if ((e as { code?: string }).code !== 'UNREACHABLE' && (e as { status?: number }).status !== 503) throw e
        await Bun.sleep(250)
      }
    }
  }
  const end = Date.now() + faultSeconds * 1000
  for (let i = 0; i < 3; i++) await submitOne()
  while (Date.now() < end) {
    await Bun.sleep(300 + r.int(1200))
    const f = r.pick<Fault>(['kill-worker', 'kill-worker', 'stop-worker', 'stop-worker', 'kill-master', 'fill-disk', 'cancel'])
    const running = submitted.filter(s => !s.name.startsWith('chaos-sort'))
    await inject(l, f, r, running)
    report.faults[f] = (report.faults[f] ?? 0) + 1
    for (let k = r.int(3); k > 0; k--) await submitOne()
  }
  report.jobs = submitted.length
  // Faults stop: every job must end, and without a minute of no progress.
  for (const s of submitted) {
    let last = { progress: -1, at: Date.now() }
    let status: JobStatus | null = null
    for (;;) {
      try { status = await l.client.status(s.id) } catch { status = null }
      if (status !== null && FINAL.includes(status.state)) break
      if (status !== null && status.progress !== last.progress) last = { progress: status.progress, at: Date.now() }
      if (Date.now() - last.at > 60_000) break
      await Bun.sleep(200)
    }
    if (status === null || !FINAL.includes(status.state)) { report.stuck.push(`${s.id} (${s.name}) ${status?.state ?? 'unknown'} with no progress for 60 s`); continue }
    if (status.state === 'SUCCEEDED') {
      report.succeeded++
      const problems = await s.check(status).catch(e => [`checking failed: ${(e as Error).message}`])
      for (const p of problems) report.wrong.push(`${s.id} (${s.name}): ${p}`)
    } else if (status.state === 'FAILED') {
      report.failed++
      report.failures.push(`${s.id} (${s.name}) FAILED: ${(status.error?.message ?? '').slice(0, 300)}`)
    }
    else report.cancelled++
  }
  // What the cluster holds once every job ended.
  try {
    await waitUntil('every live worker idle, none PAUSED', async () => {
      const ws = (await l.client.workers()).filter(w => w.status !== 'DEAD')
      return ws.length === WORKERS && ws.every(w => w.status === 'IDLE' && w.active_tasks === 0) ? true : undefined
    }, { timeoutMs: 20_000, pollMs: 200 })
  } catch (e) {
    report.leaks.push(`workers: ${(e as Error).message}: ${JSON.stringify(await l.client.workers().catch(() => []))}`)
  }
  const leftovers = await waitUntil('no job files left in the work dirs or _temporary in outputs', () => {
    const left = leftBehind(l)
    return left.length === 0 ? [] : undefined
  }, { timeoutMs: 15_000, pollMs: 250 }).catch(() => leftBehind(l))
  for (const p of leftovers.slice(0, 10)) report.leaks.push(`left behind: ${p}`)
  return report
}

/** Job files still in a work dir, and attempts' temporary folders still in outputs. */
function leftBehind(l: Live): string[] {
  const work = [...filesUnder(join(l.dir, 'work'), 4), ...(l.smallDisk === null ? [] : filesUnder(l.smallDisk, 4))]
  return [...work.filter(p => !p.endsWith(FILLER)), ...filesUnder(join(l.data, 'out'), 3).filter(p => p.includes('_temporary'))]
}

/** Files (not folders) at most `depth` levels below `dir`. */
function filesUnder(dir: string, depth: number): string[] {
  if (!existsSync(dir)) return []
  const out: string[] = []
  const walk = (d: string, left: number): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      const st = statSync(p, { throwIfNoEntry: false })
      if (st === undefined) continue
      if (st.isDirectory()) { if (left > 0) walk(p, left - 1) } else out.push(p)
    }
  }
  walk(dir, depth)
  return out
}

// ---- the campaign -----------------------------------------------------------------------------

export type CampaignReport = { schedules: ScheduleReport[]; masterRssStartMiB: number; masterRssEndMiB: number; memoryLeak: boolean }

export async function runCampaign(o: CampaignOptions): Promise<CampaignReport> {
  const log = o.log ?? ((line: string) => console.log(line))
  const dir = tempDir('ms-chaos-')
  const data = join(dir, 'data')
  generateText(join(data, 'text'), 3, 4, 11)
  const sources = writeSources(data, 'prop')
  const smallDisk = mountSmallDisk(dir)
  if (smallDisk === null) log('no tmpfs could be mounted (not root?): the full-disk fault is left out')
  let l: Live | undefined
  const schedules: ScheduleReport[] = []
  const deadline = Date.now() + (o.minutes ?? Infinity) * 60_000
  let rssStart = 0
  try {
    l = await startLive(dir, data, smallDisk)
    const live = l
    const mix = new Mix(data, sources, () => live.client)
    for (let i = 0; i < o.seeds && Date.now() < deadline; i++) {
      const seed = (o.firstSeed ?? 1) + i
      const rep = await runSchedule(l, mix, seed, o.faultSeconds ?? 20)
      // The master's memory after the first schedule is the baseline: start-up and first jobs grow it.
      if (i === 0) rssStart = rssMiB(l.master.pid)
      schedules.push(rep)
      log(`schedule ${seed}: faults ${JSON.stringify(rep.faults)}, jobs ${rep.jobs} (${rep.succeeded} ok, ${rep.failed} failed, ${rep.cancelled} cancelled), wrong ${rep.wrong.length}, stuck ${rep.stuck.length}, leaks ${rep.leaks.length}`)
      for (const x of [...rep.wrong, ...rep.stuck, ...rep.leaks, ...rep.failures]) log(`  ${x}`)
    }
    const rssEnd = rssMiB(l.master.pid)
    // The master restarts during the campaign: compare like with like only when it did not, else
    // the end size alone against a fixed ceiling.
    const memoryLeak = rssEnd > Math.max(rssStart, 150) + 150
    return { schedules, masterRssStartMiB: rssStart, masterRssEndMiB: rssEnd, memoryLeak }
  } finally {
    const procs = l === undefined ? [] : [l.master, ...l.workers.values()]
    for (const p of procs) { try { process.kill(p.pid, 'SIGCONT'); p.proc.kill('SIGKILL') } catch { /* gone */ } }
    await Promise.all(procs.map(p => Promise.race([p.proc.exited, Bun.sleep(3000)])))
    unmountSmallDisk(smallDisk)
    killAll()
  }
}

export function table(rep: CampaignReport): string {
  const sum = (f: (s: ScheduleReport) => number): number => rep.schedules.reduce((n, s) => n + f(s), 0)
  const faults = sum(s => Object.values(s.faults).reduce((a, b) => a + b, 0))
  const rows = [
    ['schedules run', rep.schedules.length],
    ['faults injected', faults],
    ['jobs', sum(s => s.jobs)],
    ['succeeded / failed / cancelled', `${sum(s => s.succeeded)} / ${sum(s => s.failed)} / ${sum(s => s.cancelled)}`],
    ['wrong answers', sum(s => s.wrong.length)],
    ['stuck jobs', sum(s => s.stuck.length)],
    ['leaks (workers, files)', sum(s => s.leaks.length)],
    ['master RSS after schedule 1 / at end (MiB)', `${rep.masterRssStartMiB.toFixed(0)} / ${rep.masterRssEndMiB.toFixed(0)}${rep.memoryLeak ? ' (leak)' : ''}`],
  ]
  return ['| what | count |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n')
}

if (import.meta.main) {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(`--${name}`)
    return i >= 0 ? Number(process.argv[i + 1]) : dflt
  }
  const rep = await runCampaign({ seeds: arg('seeds', 1_000_000), minutes: arg('minutes', 5), faultSeconds: arg('fault-seconds', 20), firstSeed: arg('first-seed', 1) })
  console.log(table(rep))
  const bad = rep.schedules.some(s => s.wrong.length + s.stuck.length + s.leaks.length > 0) || rep.memoryLeak
  process.exit(bad ? 1 : 0)
}
