// Processes under measurement: wall time, and the peak RSS (VmHWM) of every process of the tree,
// read from /proc while they live. A benchmark never fails: a process that exits non-zero is
// reported with its code and the tail of its stderr.
import { readFileSync, readdirSync } from 'node:fs'

/** Children of every thread of a process (a child forked from another thread is listed there). */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  let tasks: string[]
  try { tasks = readdirSync(`/proc/${pid}/task`) } catch { return out }
  for (const t of tasks) {
    try {
      const kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim()
      if (kids) for (const k of kids.split(/\s+/)) out.push(Number(k))
    } catch { /* the thread or process has just exited */ }
  }
  return out
}

export function descendants(pid: number): number[] {
  const out = [pid]
  for (let i = 0; i < out.length; i++) for (const k of childrenOf(out[i]!)) if (!out.includes(k)) out.push(k)
  return out
}

/** VmHWM (peak resident set) in bytes, or null when the process is gone. */
export function hwmBytes(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : null
  } catch { return null }
}

/** CPU time (user + system, in clock ticks) a process has used so far, or null when it is gone. */
export function cpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12])
  } catch { return null }
}

/** Busy CPU time of the whole machine so far, in clock ticks (all CPUs). */
export function machineBusyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal: all but idle and iowait
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)
}

const CLK_TCK = 100

export function cmdline(pid: number): string[] {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(s => s !== '') } catch { return [] }
}

/** Names a process of a measured tree: minispark roles by their command line, others by `name`. */
export type Namer = (pid: number, argv: string[], isRoot: boolean) => string

export const minisparkNamer: Namer = (_pid, argv, isRoot) => {
  const id = argv.indexOf('--id')
  if (argv.includes('worker')) return id >= 0 ? argv[id + 1] ?? 'worker' : 'worker'
  if (argv.includes('master')) return 'master'
  if (argv.includes('local')) return 'local'
  return isRoot ? 'main' : (argv[0]?.split('/').at(-1) ?? '?')
}

/** Peaks of a process tree, polled every `everyMs`. A process is named by its last command line
 *  seen (a child seen between fork and exec still shows its parent's); two of one name are told
 *  apart as `name#2`. */
export class TreeWatch {
  private readonly seen = new Map<number, { argv: string[]; root: boolean; hwm: number; cpu: number }>()
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly t0 = performance.now()
  private readonly busy0 = machineBusyTicks()
  /** CPUs that processes outside the watched tree kept busy meanwhile (set by stop()) */
  otherCpus: number | null = null

  /** `since`: CPU time the roots had used when the watch began (for roots started earlier), by pid */
  constructor(private readonly roots: () => number[], private readonly namer: Namer, everyMs = 50, private readonly since = new Map<number, number>()) {
    this.timer = setInterval(() => this.poll(), everyMs)
  }

  poll(): void {
    const roots = new Set(this.roots())
    for (const root of roots) {
      for (const pid of descendants(root)) {
        const argv = cmdline(pid)
        const h = hwmBytes(pid)
        const cpu = cpuTicks(pid)
        if (argv.length === 0 || h === null || cpu === null) continue
        const p = this.seen.get(pid)
        if (p === undefined) this.seen.set(pid, { argv, root: roots.has(pid), hwm: h, cpu: cpu - (this.since.get(pid) ?? 0) })
        else { p.argv = argv; p.hwm = Math.max(p.hwm, h); p.cpu = cpu - (this.since.get(pid) ?? 0) }
      }
    }
  }

  /** pid → name, in the order the processes were first seen */
  get names(): Map<number, string> {
    const out = new Map<number, string>()
    const count = new Map<string, number>()
    for (const [pid, p] of this.seen) {
      const base = this.namer(pid, p.argv, p.root)
      const n = (count.get(base) ?? 0) + 1
      count.set(base, n)
      out.set(pid, n === 1 ? base : `${base}#${n}`)
    }
    return out
  }

  /** name → peak RSS in bytes */
  get peaks(): Map<string, number> {
    const names = this.names
    return new Map([...this.seen].map(([pid, p]) => [names.get(pid)!, p.hwm]))
  }

  stop(): Map<string, number> {
    this.poll()
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    // What the machine did meanwhile, less what the watched processes did (a process is read
    // every poll, so at most one poll of an exiting process's time is missed): others' share.
    const seconds = (performance.now() - this.t0) / 1000
    const ours = [...this.seen.values()].reduce((n, p) => n + p.cpu, 0)
    if (seconds > 0.2) this.otherCpus = Math.max(0, (machineBusyTicks() - this.busy0 - ours) / CLK_TCK / seconds)
    return this.peaks
  }
}

export type Run = {
  seconds: number
  code: number
  stdout: string
  stderr: string
  /** peak RSS in bytes by process name */
  peaks: Map<string, number>
  /** every pid seen in the tree, by name (still alive for `local --keep`) */
  pids: Map<string, number>
  /** CPUs kept busy by other processes of the machine during the run: above ~0.2 on 2 cores, timings suffer */
  otherCpus: number | null
}

export type RunOptions = {
  cwd: string
  namer?: Namer
  env?: Record<string, string | undefined>
  /** stop waiting after this long: the tree is killed and the run reported as timed out (code 124) */
  timeoutMs?: number
  /** the run is over when stderr matches this, though the processes live on (`local --keep`
   *  stays in the foreground, holding its cluster, until it is signalled) */
  doneWhen?: (stdout: string, stderr: string) => boolean
  /** processes started before the run that work for it (the cluster a program submits to): their
   *  CPU meanwhile is the run's own, not other processes' */
  also?: number[]
}

/** Runs several commands at once (e.g. the two halves of a baseline) and waits for all of them. */
export async function measure(cmds: string[][], o: RunOptions): Promise<Run> {
  const t0 = performance.now()
  const procs = cmds.map(cmd => Bun.spawn(cmd, {
    cwd: o.cwd, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, ...o.env },
  }))
  const also = o.also ?? []
  const since = new Map(also.map(pid => [pid, cpuTicks(pid) ?? 0]))
  const watch = new TreeWatch(() => [...procs.filter(p => p.exitCode === null).map(p => p.pid), ...also.filter(alive)], o.namer ?? minisparkNamer, 50, since)
  watch.poll()
  let timedOut = false
  const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true
    for (const p of procs) for (const pid of descendants(p.pid).reverse()) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  }, o.timeoutMs)
  // Output is read as it comes, but never waited for to its end: a process may leave children
  // that still hold the pipe (`local --keep`).
  const outs = procs.map(p => collect(p.stdout))
  const errs = procs.map(p => collect(p.stderr))
  const exited = Promise.all(procs.map(p => p.exited))
  let codes: (number | null)[]
  if (o.doneWhen === undefined) codes = await exited
  else {
    const done = o.doneWhen
    const said = new Promise<(number | null)[]>(resolve => {
      const check = setInterval(() => {
        if (done(outs.map(c => c.text()).join(''), errs.map(c => c.text()).join(''))) { clearInterval(check); resolve(procs.map(() => 0)) }
      }, 20)
      void exited.then(c => { clearInterval(check); resolve(c) })
    })
    codes = await said
  }
  const seconds = (performance.now() - t0) / 1000
  if (timer) clearTimeout(timer)
  const peaks = watch.stop()
  const pids = new Map<string, number>()
  for (const [pid, name] of watch.names) pids.set(name, pid)
  await Bun.sleep(20)
  return {
    seconds, code: timedOut ? 124 : codes.find(c => c !== 0) ?? 0,
    stdout: outs.map(c => c.text()).join(''), stderr: errs.map(c => c.text()).join(''), peaks, pids, otherCpus: watch.otherCpus,
  }
}

function collect(stream: ReadableStream<Uint8Array>): { text(): string } {
  const chunks: string[] = []
  const decoder = new TextDecoder()
  void (async () => {
    try { for await (const c of stream) chunks.push(decoder.decode(c, { stream: true })) } catch { /* closed */ }
  })()
  return { text: () => chunks.join('') }
}

/** SIGTERM, a moment, then SIGKILL: for processes this bench started (by their pids). */
export async function stopPids(pids: number[], graceMs = 3000): Promise<void> {
  for (const pid of pids) { try { process.kill(pid, 'SIGTERM') } catch { /* gone */ } }
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && pids.some(alive)) await Bun.sleep(50)
  for (const pid of pids) if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
}

export function alive(pid: number): boolean {
  try {
    // A zombie still answers kill(0): read its state.
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) Z/.test(s)
  } catch { return false }
}

/** Runs a short command to completion and returns its stdout (or null when it failed). */
export function run(cmd: string[], cwd: string): { ok: boolean; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: 'pipe', stderr: 'pipe' })
  return { ok: r.exitCode === 0, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}
