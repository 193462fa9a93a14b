// Mini-Spark on the test bed: a master on one host and workers on others, each role started from
// source in its host's namespace with its own address, its own directories and the token, and a
// client that talks to the master the way a user on the master's machine would: the CLI
// (`minispark submit/status/workers`), plus test/multihost/api.ts for what the CLI does not print.
// It does not judge results: outputs are collected here and compared by the test.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { WorkerInfo } from '../../src/api/heartbeat'
import type { JobRequest, JobResult, JobStatus, JobSummary, TaskInfo } from '../../src/api/jobs'
import type { OutputInfo } from '../../src/api/outputs'
import { CLI, waitUntil } from '../support/cluster'
import type { HostProc, Result, TestBed } from './netns'

const API = join(import.meta.dir, 'api.ts')
// Every host has its own network stack, so every role can take the well-known port.
export const MASTER_PORT = 7077
export const WORKER_PORT = 7078
const BUN = process.execPath

export type WatchAnswer = { sent: number; received: number; workers?: WorkerInfo[]; error?: string }
export type WorkerWatch = { answers: WatchAnswer[]; stop(): Promise<void> }

export type ClusterTiming = { heartbeatTimeout: string; heartbeatInterval: string }

export class MultiHostCluster {
  master!: HostProc
  readonly workers = new Map<string, HostProc>()
  readonly masterUrl: string

  constructor(readonly bed: TestBed, readonly masterHost: string, readonly workerHosts: readonly string[], readonly token: string,
    readonly timing: ClusterTiming) {
    this.masterUrl = `http://${bed.host(masterHost).ip}:${MASTER_PORT}`
    // One copy of the token on each machine, as an operator would put it there.
    for (const h of [masterHost, ...workerHosts]) writeFileSync(join(bed.host(h).dir, 'token'), `${token}\n`, { mode: 0o600 })
  }

  /** A worker host's --data-dir: its own copy of the input, and where it writes the parts it ran. */
  dataDir = (host: string): string => join(this.bed.host(host).dir, 'data')

  async startMaster(name = 'master'): Promise<HostProc> {
    const h = this.bed.host(this.masterHost)
    this.master = await this.bed.spawn(h.name, name, [BUN, CLI, 'master', '--host', h.ip, '--port', String(MASTER_PORT),
      '--state-db', join(h.dir, 'master.db'), '--token-file', join(h.dir, 'token'), '--heartbeat-timeout', this.timing.heartbeatTimeout])
    return this.master
  }

  async startWorker(host: string): Promise<HostProc> {
    const h = this.bed.host(host)
    const w = await this.bed.spawn(h.name, host, [BUN, CLI, 'worker', '--master', this.masterUrl, '--host', h.ip, '--port', String(WORKER_PORT),
      '--advertise', `${h.ip}:${WORKER_PORT}`, '--id', host, '--slots', '1', '--data-dir', this.dataDir(host),
      '--work-dir', join(h.dir, 'work'), '--token-file', join(h.dir, 'token'), '--heartbeat-interval', this.timing.heartbeatInterval])
    this.workers.set(host, w)
    return w
  }

  async start(): Promise<void> {
    await this.startMaster()
    await Promise.all(this.workerHosts.map(h => this.startWorker(h)))
    await waitUntil(`${this.workerHosts.length} live workers`, async () => {
      const live = (await this.workerList()).filter(w => w.status !== 'DEAD').map(w => w.worker_id)
      return this.workerHosts.every(h => live.includes(h)) ? true : undefined
    }, { timeoutMs: 20_000, pollMs: 100 })
  }

  logs(): string { return [this.master, ...this.workers.values()].filter(Boolean).map(p => p.log()).join('\n') }

  // ---- the client, run on the master's host ----

  /** `minispark ARGS --master URL` on the master's host, with the token in MINISPARK_TOKEN. */
  async cli(args: readonly string[], timeoutMs = 30_000): Promise<Result> {
    return this.bed.run(this.masterHost, [BUN, CLI, ...args, '--master', this.masterUrl], { timeoutMs, env: { MINISPARK_TOKEN: this.token } })
  }

  private async cliJson<T>(args: readonly string[]): Promise<T> {
    const r = await this.cli(args)
    if (r.code !== 0) throw new Error(`minispark ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
    return JSON.parse(r.stdout) as T
  }

  /** Writes the job file on the master's host and submits it with `minispark submit`. */
  async submit(job: JobRequest, file: string): Promise<string> {
    const path = join(this.bed.host(this.masterHost).dir, `${file}.json`)
    writeFileSync(path, JSON.stringify(job, null, 2))
    return (await this.cliJson<{ job_id: string }>(['submit', path, '--json'])).job_id
  }

  status = (id: string): Promise<JobStatus> => this.cliJson<JobStatus>(['status', id, '--json'])
  jobs = (): Promise<JobSummary[]> => this.cliJson<JobSummary[]>(['status', '--json'])
  workerList = (): Promise<WorkerInfo[]> => this.cliJson<WorkerInfo[]>(['workers', '--json'])

  private async api<T>(what: 'tasks' | 'result' | 'outputs', id: string): Promise<T> {
    const r = await this.bed.run(this.masterHost, [BUN, API, what, id], { env: { MINISPARK_TOKEN: this.token, MINISPARK_MASTER: this.masterUrl } })
    if (r.code !== 0) throw new Error(`api.ts ${what} ${id} exited ${r.code}: ${r.stderr.trim()}`)
    return JSON.parse(r.stdout) as T
  }
  tasks = (id: string): Promise<TaskInfo[]> => this.api<TaskInfo[]>('tasks', id)
  result = (id: string): Promise<JobResult> => this.api<JobResult>('result', id)
  /** GET /outputs?path=P: the catalog's view of an output */
  output = async (path: string): Promise<OutputInfo> => (await this.api<OutputInfo[]>('outputs', path))[0]!

  /** Starts a watch of GET /workers on the master's host (every 100 ms, one long-lived process):
   *  answers accumulate, each bracketed by the times its request was sent and answered. */
  async watchWorkers(): Promise<WorkerWatch> {
    const answers: WatchAnswer[] = []
    const proc = await this.bed.spawn(this.masterHost, 'watch-workers', [BUN, API, 'watch-workers'], {
      env: { MINISPARK_TOKEN: this.token, MINISPARK_MASTER: this.masterUrl }, ready: /^watching$/m,
      onLine: line => { if (line.startsWith('{')) answers.push(JSON.parse(line) as WatchAnswer) },
    })
    return { answers, stop: () => this.bed.kill(proc.proc) }
  }

  async waitDone(id: string, timeoutMs: number): Promise<JobStatus> {
    return waitUntil(`job ${id} to finish`, async () => {
      const s = await this.status(id)
      return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(s.state) ? s : undefined
    }, { timeoutMs, pollMs: 200 })
  }
}

// ---- outputs spread over the workers' disks ----

export type Collected = {
  /** part number → the hosts whose data dir holds that part */
  parts: Map<number, string[]>
  /** hosts whose output dir holds _SUCCESS */
  success: string[]
  /** what each of those _SUCCESS files says: the parts on that disk and the total */
  successOf: Map<string, { job_id: string; parts: number[]; total: number }>
  /** anything else found in an output dir, as HOST:NAME */
  stray: string[]
  /** every line of every part found, part by part */
  lines: string[]
}

/** Reads an output dir on every worker host's disk: each worker holds the parts it committed. */
export function collectOutput(c: MultiHostCluster, out: string): Collected {
  const got: Collected = { parts: new Map(), success: [], successOf: new Map(), stray: [], lines: [] }
  for (const host of c.workerHosts) {
    const dir = join(c.dataDir(host), out)
    if (!existsSync(dir)) continue
    for (const name of readdirSync(dir).sort()) {
      const m = /^part-(\d{5})$/.exec(name)
      if (m !== null) {
        const n = Number(m[1])
        got.parts.set(n, [...(got.parts.get(n) ?? []), host])
        const text = readFileSync(join(dir, name), 'utf8')
        const ls = text === '' ? [] : text.split('\n')
        if (ls[ls.length - 1] === '') ls.pop()
        got.lines.push(...ls)
      } else if (name === '_SUCCESS') {
        got.success.push(host)
        got.successOf.set(host, JSON.parse(readFileSync(join(dir, name), 'utf8')) as { job_id: string; parts: number[]; total: number })
      }
      else got.stray.push(`${host}:${name}`)
    }
  }
  return got
}

/** Waits (bounded) until no worker's copy of the output holds `_temporary`: the master asks every
 *  live worker to drop a finished job's temporary files, just after the job is reported done. */
export async function collectSettled(c: MultiHostCluster, out: string): Promise<Collected> {
  return waitUntil(`the temporary files of ${out} to be removed on every worker`, () => {
    const got = collectOutput(c, out)
    return got.stray.some(s => s.endsWith(':_temporary')) ? undefined : got
  }, { timeoutMs: 10_000, pollMs: 100 }).catch(() => collectOutput(c, out))
}
