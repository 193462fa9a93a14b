// Real-process test support: a master and N workers as separate processes on free ports, the
// text generator, and helpers to read outputs and run the CLI. Every wait is bounded, every
// process is killed by its pid, and a module-level registry cleans up even after a crash in a
// beforeAll (call killAll() in afterAll; it also runs when the test process exits).
import type { Subprocess } from 'bun'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { MasterClient } from '../../src/api/client'

export const ROOT = resolve(import.meta.dir, '../..')
export const CLI = join(ROOT, 'src/cli.ts')
export const GEN_TEXT = join(ROOT, 'bench/gen/gen-text.mjs')

/** argv that runs the CLI from source with the Bun running the tests. */
export const cliCommand = (args: readonly string[]): string[] => [process.execPath, CLI, ...args]

// ---- cleanup registry ----

const liveProcs = new Set<Subprocess>()
const tempDirs = new Set<string>()

/** SIGKILLs every process started here that is still registered and removes every temp dir. */
export function killAll(): void {
  for (const p of liveProcs) { try { p.kill('SIGKILL') } catch { /* already gone */ } }
  liveProcs.clear()
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
  tempDirs.clear()
}
process.on('exit', killAll)

/** A fresh temp dir, removed by killAll() or by the cluster that owns it. */
export function tempDir(prefix = 'ms-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(d)
  return d
}

export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true })
  tempDirs.delete(d)
}

// ---- processes ----

export type RoleProc = {
  name: string; proc: Subprocess<'ignore', 'pipe', 'pipe'>; url: string; pid: number; log(): string
  /** everything on stderr so far (the last LOG_KEEP characters at least) */
  stderr(): string
}

const LOG_KEEP = 64 * 1024

/** Drains a stream into a bounded tail buffer; calls onText with everything read so far. */
function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }, onText?: (all: string) => void): void {
  void (async () => {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of stream) {
        sink.text += decoder.decode(chunk, { stream: true })
        onText?.(sink.text)
        if (sink.text.length > LOG_KEEP * 2) sink.text = sink.text.slice(-LOG_KEEP)
      }
    } catch { /* the process was killed */ }
  })()
}

/** Spawns one role and waits (bounded) for its "listening on URL" line on stdout. */
export async function spawnRoleProc(name: string, args: readonly string[], o: { timeoutMs?: number; cwd?: string } = {}): Promise<RoleProc> {
  const proc = Bun.spawn(cliCommand(args), { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', cwd: o.cwd ?? ROOT })
  liveProcs.add(proc)
  const out = { text: '' }
  const err = { text: '' }
  const log = (): string => `--- ${name} stdout ---\n${out.text.slice(-4000)}\n--- ${name} stderr ---\n${err.text.slice(-4000)}`
  const timeoutMs = o.timeoutMs ?? 20_000
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const url = await new Promise<string>((res, rej) => {
      timer = setTimeout(() => rej(new Error(`${name}: no "listening on" line within ${timeoutMs} ms\n${log()}`)), timeoutMs)
      drain(proc.stdout, out, all => { const m = /listening on (\S+)/.exec(all); if (m) res(m[1]!) })
      drain(proc.stderr, err)
      void proc.exited.then(code => rej(new Error(`${name} exited with ${code} before listening\n${log()}`)))
    })
    return { name, proc, url, pid: proc.pid, log, stderr: () => err.text }
  } catch (e) {
    proc.kill('SIGKILL')
    liveProcs.delete(proc)
    throw e
  } finally {
    clearTimeout(timer)
  }
}

async function killProc(p: Subprocess): Promise<void> {
  try { p.kill('SIGKILL') } catch { /* gone */ }
  await Promise.race([p.exited, Bun.sleep(3000)])
  liveProcs.delete(p)
}

/** Polls `check` until it returns a non-undefined value or the deadline passes. */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined> | T | undefined, o: { timeoutMs: number; pollMs?: number }): Promise<T> {
  const deadline = Date.now() + o.timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (e) { last = e }
    if (Date.now() > deadline) throw new Error(`timed out after ${o.timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await Bun.sleep(o.pollMs ?? 50)
  }
}

// ---- the cluster ----

export type ClusterOptions = {
  workers: number
  slots?: number
  heartbeatTimeout?: string
  heartbeatInterval?: string
  /** each worker's --max-mem (default: the worker's default) */
  maxMem?: string
  dataDir: string
}

export type Cluster = {
  url: string
  client: MasterClient
  /** the cluster's own temp dir (state db, work dirs) */
  dir: string
  dataDir: string
  master: RoleProc
  workers: RoleProc[]
  procs: RoleProc[]
  workerIds: string[]
  /** the last lines every process wrote, for failure messages */
  logs(): string
  stop(): Promise<void>
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const dir = tempDir('ms-cluster-')
  const procs: RoleProc[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map(p => killProc(p.proc)))
    removeTempDir(dir)
  }
  try {
    const master = await spawnRoleProc('master', ['master', '--port', '0', '--state-db', join(dir, 'm.db'),
      '--heartbeat-timeout', o.heartbeatTimeout ?? '5s'])
    procs.push(master)
    const workerIds = Array.from({ length: o.workers }, (_, i) => `w${i + 1}`)
    const started = await Promise.allSettled(workerIds.map(id => spawnRoleProc(id, ['worker', '--master', master.url, '--port', '0',
      '--id', id, '--slots', String(o.slots ?? 1), '--data-dir', o.dataDir, '--work-dir', join(dir, 'work'),
      '--heartbeat-interval', o.heartbeatInterval ?? '500ms', ...(o.maxMem === undefined ? [] : ['--max-mem', o.maxMem])])))
    for (const s of started) if (s.status === 'fulfilled') procs.push(s.value)
    const failed = started.find(s => s.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
    const workers = procs.slice(1)
    const client = new MasterClient(master.url)
    await waitUntil(`${o.workers} live workers in GET /workers`, async () => {
      const live = (await client.workers()).filter(w => w.status !== 'DEAD').map(w => w.worker_id)
      return workerIds.every(id => live.includes(id)) ? true : undefined
    }, { timeoutMs: 15_000 })
    const logs = (): string => procs.map(p => p.log()).join('\n')
    return { url: master.url, client, dir, dataDir: o.dataDir, master, workers, procs, workerIds, logs, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

// ---- data and outputs ----

/** Runs the deterministic text generator: DIR/part-00000.txt .. part-(files-1).txt, `mb` MiB in all. */
export function generateText(dir: string, mb: number, files: number, seed: number): void {
  const r = Bun.spawnSync(['node', GEN_TEXT, '--out', dir, '--mb', String(mb), '--files', String(files), '--seed', String(seed)],
    { stdout: 'pipe', stderr: 'pipe', timeout: 60_000 })
  if (r.exitCode !== 0) throw new Error(`gen-text failed (${r.exitCode}): ${r.stderr.toString()}`)
}

/** The part-* files of an output dir, in name order. */
export function partFiles(dir: string): string[] {
  return readdirSync(dir).filter(f => f.startsWith('part-')).sort()
}

/** Every line of the part-* files of an output dir, in part order (no trailing empty line). */
export function readParts(dir: string): string[] {
  const lines: string[] = []
  for (const f of partFiles(dir)) {
    const text = readFileSync(join(dir, f), 'utf8')
    if (text === '') continue
    const ls = text.split('\n')
    if (ls[ls.length - 1] === '') ls.pop()
    lines.push(...ls)
  }
  return lines
}

// ---- plain sequential references (no engine code) ----

/** The text files of a dir, in name order. */
export function textFiles(dir: string): string[] {
  return readdirSync(dir).filter(f => f.endsWith('.txt')).sort().map(f => join(dir, f))
}

/** Every line of the files, split as read_text does (\n, then a trailing \r removed). */
export function plainLines(files: readonly string[]): string[] {
  const out: string[] = []
  for (const f of files) {
    const text = readFileSync(f, 'utf8')
    const ls = text.split('\n')
    if (ls[ls.length - 1] === '') ls.pop()
    for (const l of ls) out.push(l.endsWith('\r') ? l.slice(0, -1) : l)
  }
  return out
}

export function plainWordcount(files: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const line of plainLines(files)) {
    for (const w of line.toLowerCase().split(/[^a-z0-9]+/)) {
      if (w === '') continue
      counts.set(w, (counts.get(w) ?? 0) + 1)
    }
  }
  return counts
}

// ---- running the CLI ----

export type CliRun = { code: number | null; stdout: string; stderr: string }

/** Runs a command to its end with a bound; the process is killed by pid if it overruns. */
export async function runCommand(cmd: readonly string[], o: { cwd?: string; timeoutMs?: number; env?: Record<string, string>; onlyEnv?: boolean } = {}): Promise<CliRun> {
  const env = o.onlyEnv ? { ...o.env } : { ...process.env, ...o.env }
  const proc = Bun.spawn([...cmd], { cwd: o.cwd ?? ROOT, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env })
  liveProcs.add(proc)
  const timeoutMs = o.timeoutMs ?? 30_000
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL') }, timeoutMs)
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    if (timedOut) throw new Error(`${cmd.join(' ')} ran over ${timeoutMs} ms\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`)
    return { code, stdout, stderr }
  } finally {
    clearTimeout(timer)
    liveProcs.delete(proc)
  }
}

export const runCli = (args: readonly string[], o: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliRun> =>
  runCommand(cliCommand(args), o)
