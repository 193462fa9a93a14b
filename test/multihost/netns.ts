// A test bed of real hosts on one machine: one network namespace per host, all on a bridge that
// lives in a namespace of its own, each host with its own address on a private subnet and its own
// directory (its "disk"). Processes of a host see the other hosts' directories as empty read-only
// mounts, so a role cannot read or write another host's files by accident.
// It does not run a cluster: it builds hosts, starts processes in them and cuts links; the test
// decides what runs where. Nothing here touches the machine's own interfaces or routes: every link
// is created inside the namespaces, and deleting the namespaces removes every one of them.
import type { Subprocess } from 'bun'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Namespaces and temp dirs are named PREFIX-<pid of the test process>-<random>-...: a leftover of
 *  a crashed run is recognised by its dead creator, and a run in progress is never touched. */
const PREFIX = 'msmh'
/** The private test subnet: it exists only on the bridge inside the bed's own namespace. */
const SUBNET = '10.213.0'

type Run = { code: number; stdout: string; stderr: string }

function runSync(argv: readonly string[], timeoutMs = 15_000): Run {
  const r = Bun.spawnSync([...argv], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', timeout: timeoutMs })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

function ip(...args: string[]): string {
  const r = runSync(['ip', ...args])
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
  return r.stdout
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch (e) { return (e as { code?: string }).code === 'EPERM' }
}

// ---- can this machine do it? ----

export type Probe = { ok: true } | { ok: false; reason: string }

/** Whether namespaces can be made here: root, iproute2, `ip netns add`, and a mount inside
 *  `ip netns exec` (used to hide the other hosts' directories). Leaves nothing behind. */
export function probeNetns(): Probe {
  if (process.platform !== 'linux') return { ok: false, reason: `not Linux (${process.platform})` }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root' }
  if (Bun.which('ip') === null) return { ok: false, reason: 'no `ip` command (apt-get install iproute2)' }
  if (Bun.which('mount') === null) return { ok: false, reason: 'no `mount` command' }
  const ns = `${PREFIX}-${process.pid}-probe`
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}-${process.pid}-probe-`))
  try {
    runSync(['ip', 'netns', 'del', ns])   // a leftover of an earlier process with this pid
    const add = runSync(['ip', 'netns', 'add', ns])
    if (add.code !== 0) return { ok: false, reason: `\`ip netns add\` is not permitted: ${add.stderr.trim().split('\n')[0]}` }
    const m = runSync(['ip', 'netns', 'exec', ns, 'mount', '-t', 'tmpfs', '-o', 'ro,size=16k', `${PREFIX}-hidden`, dir])
    if (m.code !== 0) return { ok: false, reason: `a mount inside \`ip netns exec\` is not permitted: ${m.stderr.trim().split('\n')[0]}` }
    return { ok: true }
  } finally {
    runSync(['ip', 'netns', 'del', ns])
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Removes what crashed earlier runs left: namespaces and temp dirs whose creator process is gone,
 *  after killing (by pid) the processes still running inside those namespaces. */
export function removeLeftovers(): string[] {
  const removed: string[] = []
  const creatorOf = (name: string): number | undefined => {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name)
    return m ? Number(m[1]) : undefined
  }
  const list = runSync(['ip', 'netns', 'list'])
  for (const line of list.stdout.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? ''
    const pid = creatorOf(name)
    if (pid === undefined || pid === process.pid || alive(pid)) continue
    for (const p of runSync(['ip', 'netns', 'pids', name]).stdout.split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(p), 'SIGKILL') } catch { /* already gone */ }
    }
    runSync(['ip', 'netns', 'del', name])
    removed.push(name)
  }
  for (const d of readdirSync(tmpdir())) {
    const pid = creatorOf(d)
    if (pid === undefined || pid === process.pid || alive(pid)) continue
    rmSync(join(tmpdir(), d), { recursive: true, force: true })
    removed.push(join(tmpdir(), d))
  }
  return removed
}

// ---- the bed ----

export type Host = {
  name: string
  /** the network namespace */
  ns: string
  /** its address on the private subnet */
  ip: string
  /** its own directory, its "disk" */
  dir: string
  /** its end of the link to the bridge, inside ns */
  dev: string
}

export type HostProc = { name: string; host: Host; proc: Subprocess<'ignore', 'pipe', 'pipe'>; pid: number; url: string; log(): string }
export type Result = Run

const LOG_KEEP = 64 * 1024

/** Drains a stream into a bounded tail buffer; calls onText with all read so far, onLine per line. */
function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }, onText?: (all: string) => void, onLine?: (line: string) => void): void {
  void (async () => {
    const decoder = new TextDecoder()
    let partial = ''
    try {
      for await (const chunk of stream) {
        const text = decoder.decode(chunk, { stream: true })
        sink.text += text
        onText?.(sink.text)
        if (onLine !== undefined) {
          const lines = (partial + text).split('\n')
          partial = lines.pop()!
          for (const l of lines) onLine(l)
        }
        if (sink.text.length > LOG_KEEP * 2) sink.text = sink.text.slice(-LOG_KEEP)
      }
    } catch { /* the process was killed */ }
  })()
}

// Runs "$@" after mounting an empty read-only tmpfs over each of the first $1 paths. `ip netns exec`
// gives the process a mount namespace of its own (a slave of the machine's), so these mounts are
// seen by this process and its children only, and vanish with them. `exec` keeps the pid: the
// pid we hold is the role's own, so kill(pid) reaches it.
const HIDE_AND_EXEC = 'n=$1; shift; while [ "$n" -gt 0 ]; do mount -t tmpfs -o ro,size=16k,mode=0555 msmh-hidden "$1" || exit 97; shift; n=$((n - 1)); done; exec "$@"'

// The parent-death signal survives the execs down to the role: if the test process is killed
// outright (no 'exit' handler runs), its roles die with it; the namespaces and dirs it leaves are
// removed by removeLeftovers() on the next run.
const DIE_WITH_TEST = Bun.which('setpriv') === null ? [] : ['setpriv', '--pdeathsig', 'KILL']

const beds = new Set<TestBed>()
let signalsHooked = false
function onFatalSignal(sig: NodeJS.Signals): void {
  for (const b of beds) b.destroySync()
  process.exit(sig === 'SIGINT' ? 130 : 143)
}
process.on('exit', () => { for (const b of beds) b.destroySync() })

export class TestBed {
  readonly hosts = new Map<string, Host>()
  private readonly bridgeNs: string
  private readonly procs = new Set<Subprocess>()
  private destroyed = false

  private constructor(readonly id: string, readonly base: string, names: readonly string[]) {
    this.bridgeNs = `${id}-bridge`
    names.forEach((name, i) => {
      const dir = join(base, name)
      mkdirSync(dir, { recursive: true })
      this.hosts.set(name, { name, ns: `${id}-${name}`, ip: `${SUBNET}.${i + 1}`, dir, dev: 'eth0' })
    })
  }

  /** Builds the bridge and one namespace per name, addresses .1, .2, ... in name order. On any
   *  failure it removes what it made before throwing. */
  static create(names: readonly string[]): TestBed {
    const id = `${PREFIX}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`
    const bed = new TestBed(id, mkdtempSync(join(tmpdir(), `${id}-`)), names)
    beds.add(bed)
    if (!signalsHooked) {
      signalsHooked = true
      process.once('SIGINT', onFatalSignal)
      process.once('SIGTERM', onFatalSignal)
    }
    try {
      bed.build()
    } catch (e) {
      bed.destroySync()
      throw e
    }
    return bed
  }

  private build(): void {
    const br = this.bridgeNs
    ip('netns', 'add', br)
    ip('-n', br, 'link', 'set', 'lo', 'up')
    ip('-n', br, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', br, 'link', 'set', 'br0', 'up')
    for (const h of this.hosts.values()) {
      ip('netns', 'add', h.ns)
      ip('-n', h.ns, 'link', 'set', 'lo', 'up')
      // Both ends are created inside namespaces: the machine's own namespace never holds a link.
      const port = `p-${h.name}`.slice(0, 15)
      ip('-n', br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', h.dev, 'netns', h.ns)
      ip('-n', br, 'link', 'set', port, 'master', 'br0')
      ip('-n', br, 'link', 'set', port, 'up')
      ip('-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', h.dev)
      ip('-n', h.ns, 'link', 'set', h.dev, 'up')
    }
  }

  host(name: string): Host {
    const h = this.hosts.get(name)
    if (h === undefined) throw new Error(`no host ${name} in the test bed`)
    return h
  }

  /** Takes the host's link down (its side of the veth): it can reach no one and no one reaches it;
   *  its processes keep running. */
  cut(name: string): void { const h = this.host(name); ip('-n', h.ns, 'link', 'set', h.dev, 'down') }
  /** Brings the link back up; the address and its route come back with it. */
  restore(name: string): void { const h = this.host(name); ip('-n', h.ns, 'link', 'set', h.dev, 'up') }
  linkUp(name: string): boolean { const h = this.host(name); return /state UP/.test(ip('-n', h.ns, 'link', 'show', h.dev)) }

  /** argv to run a command on a host: in its namespace, with the other hosts' dirs hidden. */
  private wrap(h: Host, argv: readonly string[]): string[] {
    const hidden = [...this.hosts.values()].filter(o => o.name !== h.name).map(o => o.dir)
    return [...DIE_WITH_TEST, 'ip', 'netns', 'exec', h.ns, 'sh', '-c', HIDE_AND_EXEC, 'sh', String(hidden.length), ...hidden, ...argv]
  }

  private env(extra: Record<string, string> = {}): Record<string, string> {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MINISPARK_')) env[k] = v
    return { ...env, ...extra }
  }

  /** Starts a long-running process on a host and waits (bounded) for its ready line on stdout: by
   *  default a role's "listening on URL" (the URL is returned). onLine sees every stdout line. */
  async spawn(hostName: string, name: string, argv: readonly string[],
    o: { timeoutMs?: number; env?: Record<string, string>; ready?: RegExp; onLine?: (line: string) => void } = {}): Promise<HostProc> {
    const h = this.host(hostName)
    const proc = Bun.spawn(this.wrap(h, argv), { cwd: h.dir, env: this.env(o.env), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
    this.procs.add(proc)
    const out = { text: '' }
    const err = { text: '' }
    const log = (): string => `--- ${name} on ${h.name} (${h.ip}) stdout ---\n${out.text.slice(-4000)}\n--- ${name} stderr ---\n${err.text.slice(-4000)}`
    const timeoutMs = o.timeoutMs ?? 20_000
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      const url = await new Promise<string>((res, rej) => {
        const ready = o.ready ?? /listening on (\S+)/
        timer = setTimeout(() => rej(new Error(`${name}: no line matching ${ready} within ${timeoutMs} ms\n${log()}`)), timeoutMs)
        drain(proc.stdout, out, all => { const m = ready.exec(all); if (m) res(m[1] ?? '') }, o.onLine)
        drain(proc.stderr, err)
        void proc.exited.then(code => rej(new Error(`${name} exited with ${code} before listening\n${log()}`)))
      })
      return { name, host: h, proc, pid: proc.pid, url, log }
    } catch (e) {
      await this.kill(proc)
      throw e
    } finally {
      clearTimeout(timer)
    }
  }

  /** Runs a command on a host to its end, with a bound; killed by pid if it overruns. */
  async run(hostName: string, argv: readonly string[], o: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<Result> {
    const h = this.host(hostName)
    const proc = Bun.spawn(this.wrap(h, argv), { cwd: h.dir, env: this.env(o.env), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
    this.procs.add(proc)
    const timeoutMs = o.timeoutMs ?? 30_000
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL') }, timeoutMs)
    try {
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
      if (timedOut) throw new Error(`on ${h.name}: ${argv.join(' ')} ran over ${timeoutMs} ms\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`)
      return { code, stdout, stderr }
    } finally {
      clearTimeout(timer)
      this.procs.delete(proc)
    }
  }

  /** SIGKILLs one process by its pid and waits (bounded) for it to be gone. */
  async kill(p: Subprocess): Promise<void> {
    try { p.kill('SIGKILL') } catch { /* gone */ }
    await Promise.race([p.exited, Bun.sleep(5000)])
    this.procs.delete(p)
  }

  /** The namespaces that exist now with this bed's name (for the clean-up check). */
  namespaces(): string[] {
    return runSync(['ip', 'netns', 'list']).stdout.split('\n').map(l => l.trim().split(/\s+/)[0] ?? '').filter(n => n.startsWith(`${this.id}-`))
  }

  /** Kills every process started here, then deletes the namespaces (their links go with them) and
   *  the directories. Safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all([...this.procs].map(p => this.kill(p)))
    this.destroySync()
  }

  /** The same, synchronously: for process 'exit' and fatal signals. */
  destroySync(): void {
    if (this.destroyed) return
    for (const p of this.procs) { try { p.kill('SIGKILL') } catch { /* gone */ } }
    this.procs.clear()
    // Hosts first: deleting a host's namespace deletes its veth, and so the bridge's end of it.
    for (const h of this.hosts.values()) runSync(['ip', 'netns', 'del', h.ns])
    runSync(['ip', 'netns', 'del', this.bridgeNs])
    if (existsSync(this.base)) rmSync(this.base, { recursive: true, force: true })
    this.destroyed = true
    beds.delete(this)
  }
}
