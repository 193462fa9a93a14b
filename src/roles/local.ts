// `minispark local`: the embedded cluster. A master and N worker processes on loopback, free
// ports, state in a temporary SQLite file; runs one job, prints its result, stops everything.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { MasterClient } from '../api/client'
import type { JobRequest, JobResult, JobStatus } from '../api/jobs'
import { LOCAL_DIR_ENV, selfCommand, spawnRole, type Role } from './spawn'

export type LocalOptions = {
  workers: number; slots: number; maxMem: string; dataDir: string; keep: boolean; json: boolean
  heartbeatTimeout?: string; onStatus?: (s: JobStatus) => void
  /** the roles' --log-level (their lines go to this process's stderr) */
  logLevel?: string
  /** called once the job is accepted, e.g. to show where to watch it */
  onSubmitted?: (id: string, client: MasterClient) => void
}

export type LocalCluster = {
  url: string; client: MasterClient; dir: string; roles: Role[]
  /** the cluster's own token, also in `dir/token` */
  token: string
  /** stops the roles (SIGTERM, then SIGKILL after a bound) and removes the temp dir; once */
  stop(): Promise<void>
  /** the same at once, synchronously: for a program that is exiting */
  killNow(): void
}

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const
const STOP_GRACE_MS = 3000

/**
 * Starts the roles with a random token of their own (given by environment, never on a command
 * line: without one, any local user or web page could submit code to them). The cluster dies
 * with this process: SIGINT and SIGTERM stop it (and then end the process with the signal's
 * exit code, unless the program listens to that signal itself), and the roles leave by themselves
 * when this process is gone, however it ended (their stdin pipe closes).
 */
export async function startLocalCluster(o: Omit<LocalOptions, 'keep' | 'json'> & {
  token?: string
  /** the program that runs the roles, such as ['/usr/local/bin/minispark'] (default: this one) */
  command?: readonly string[]
}): Promise<LocalCluster> {
  const role = (args: string[]): string[] => o.command === undefined ? selfCommand(args) : [...o.command, ...args]
  const dir = mkdtempSync(join(tmpdir(), 'minispark-local-'))
  const token = o.token ?? randomBytes(32).toString('base64url')
  writeFileSync(join(dir, 'token'), token + '\n', { mode: 0o600 })
  const roles: Role[] = []
  // Every process from the moment it is spawned: a signal during start-up stops those starting too.
  const procs: Role['proc'][] = []
  const onSpawn = (p: Role['proc']): void => { procs.push(p) }
  let stopping: Promise<void> | undefined
  const onSignal = (signal: keyof typeof SIGNAL_NUMBERS): void => {
    void stop().finally(() => { if (process.listenerCount(signal) === 0) process.exit(128 + SIGNAL_NUMBERS[signal]) })
  }
  const onInt = (): void => onSignal('SIGINT')
  const onTerm = (): void => onSignal('SIGTERM')
  process.once('SIGINT', onInt)
  process.once('SIGTERM', onTerm)
  const stop = (): Promise<void> => stopping ??= (async () => {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
    for (const p of procs) p.kill('SIGTERM')
    await allExited(procs, STOP_GRACE_MS)
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    // Only once no role can write there any more (a dying worker may still create folders).
    await allExited(procs, STOP_GRACE_MS)
    await removeDir(dir)
  })()
  const killNow = (): void => {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    try { rmSync(dir, { recursive: true, force: true }) } catch { /* the roles' master removes it when it notices this process is gone */ }
  }
  const env = { MINISPARK_TOKEN: token }
  const logLevel = o.logLevel === undefined ? [] : ['--log-level', o.logLevel]
  try {
    const master = await spawnRole(role(['master', '--port', '0', '--state-db', join(dir, 'master.db'),
      ...(o.heartbeatTimeout ? ['--heartbeat-timeout', o.heartbeatTimeout] : []), ...logLevel]), { env: { ...env, [LOCAL_DIR_ENV]: dir }, onSpawn })
    roles.push(master)
    const started = await Promise.allSettled(Array.from({ length: o.workers }, (_, i) => spawnRole(role([
      'worker', '--master', master.url, '--port', '0', '--id', `local-${i + 1}`, '--slots', String(o.slots),
      '--max-mem', o.maxMem, '--data-dir', resolve(o.dataDir), '--work-dir', join(dir, 'work'), ...logLevel]), { env, onSpawn })))
    for (const s of started) if (s.status === 'fulfilled') roles.push(s.value)
    const failed = started.find(s => s.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
    const client = new MasterClient(master.url, token)
    await waitForWorkers(client, o.workers, 20_000)
    return { url: master.url, client, dir, roles, token, stop, killNow }
  } catch (e) {
    await stop()
    throw e
  }
}

/** Waits until every role has exited, or `ms` has passed; the timer goes either way. */
async function allExited(procs: readonly Role['proc'][], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([Promise.all(procs.map(p => p.exited)), new Promise(res => { timer = setTimeout(res, ms) })])
  clearTimeout(timer)
}

// A folder created inside while it is being removed makes the removal fail (not empty): again.
async function removeDir(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try { rmSync(dir, { recursive: true, force: true }); return } catch (e) {
      if (i >= 3) throw e
      await Bun.sleep(100)
    }
  }
}

async function waitForWorkers(client: MasterClient, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await client.workers()).filter(w => w.status !== 'DEAD').length < n) {
    if (Date.now() > deadline) throw new Error(`only some of the ${n} workers registered within ${timeoutMs} ms`)
    await Bun.sleep(50)
  }
}

/** Runs the job on a fresh local cluster; returns the final status and result, and with `keep`
 *  the cluster, still up (it stops with this process). */
export async function runLocal(job: JobRequest, o: LocalOptions): Promise<{ status: JobStatus; result: JobResult | null; url: string; kept: LocalCluster | null }> {
  const cluster = await startLocalCluster(o)
  let keep = false
  try {
    const id = await cluster.client.submit(job)
    o.onSubmitted?.(id, cluster.client)
    const status = await cluster.client.waitDone(id, { timeoutMs: 24 * 3600_000, pollMs: 50, ...(o.onStatus ? { onStatus: o.onStatus } : {}) })
    const result = status.state === 'SUCCEEDED' ? await cluster.client.result(id) : null
    keep = o.keep
    return { status, result, url: cluster.url, kept: keep ? cluster : null }
  } finally {
    if (!keep) await cluster.stop()
  }
}

/** The contract's text rendering of results: one block per sink. */
export function renderResult(result: JobResult): string {
  const lines: string[] = []
  for (const [node, r] of Object.entries(result.sinks)) {
    if (r.op === 'count') lines.push(`${node}: ${r.value}`)
    else if (r.op === 'collect') { lines.push(`${node}:`); for (const v of r.values) lines.push(JSON.stringify(v)) }
    else lines.push(`${node}: wrote ${r.records} records to ${r.path} (${r.files} files)`)
  }
  return lines.join('\n')
}
