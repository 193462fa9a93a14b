// `minispark local`: the embedded cluster. A master and N worker processes on loopback, free
// ports, state in a temporary SQLite file; runs one job, prints its result, stops everything.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { MasterClient } from '../api/client'
import type { JobRequest, JobResult, JobStatus } from '../api/jobs'
import { selfCommand, spawnRole, type Role } from './spawn'

export type LocalOptions = {
  workers: number; slots: number; maxMem: string; dataDir: string; keep: boolean; json: boolean
  heartbeatTimeout?: string; onStatus?: (s: JobStatus) => void
  /** called once the job is accepted, e.g. to show where to watch it */
  onSubmitted?: (id: string, client: MasterClient) => void
}

export type LocalCluster = { url: string; client: MasterClient; dir: string; roles: Role[]; stop(): Promise<void> }

export async function startLocalCluster(o: Omit<LocalOptions, 'keep' | 'json'>): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'minispark-local-'))
  const roles: Role[] = []
  const stop = async (): Promise<void> => {
    for (const r of roles) r.proc.kill('SIGTERM')
    await Promise.race([Promise.all(roles.map(r => r.proc.exited)), Bun.sleep(3000)])
    for (const r of roles) r.proc.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const master = await spawnRole(selfCommand(['master', '--port', '0', '--state-db', join(dir, 'master.db'),
      ...(o.heartbeatTimeout ? ['--heartbeat-timeout', o.heartbeatTimeout] : [])]))
    roles.push(master)
    const started = await Promise.all(Array.from({ length: o.workers }, (_, i) => spawnRole(selfCommand([
      'worker', '--master', master.url, '--port', '0', '--id', `local-${i + 1}`, '--slots', String(o.slots),
      '--max-mem', o.maxMem, '--data-dir', resolve(o.dataDir), '--work-dir', join(dir, 'work')]))))
    roles.push(...started)
    const client = new MasterClient(master.url, process.env.MINISPARK_TOKEN?.trim() || undefined)
    await waitForWorkers(client, o.workers, 20_000)
    return { url: master.url, client, dir, roles, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

async function waitForWorkers(client: MasterClient, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await client.workers()).filter(w => w.status !== 'DEAD').length < n) {
    if (Date.now() > deadline) throw new Error(`only some of the ${n} workers registered within ${timeoutMs} ms`)
    await Bun.sleep(50)
  }
}

/** Runs the job on a fresh local cluster; returns the final status and result. */
export async function runLocal(job: JobRequest, o: LocalOptions): Promise<{ status: JobStatus; result: JobResult | null; url: string }> {
  const cluster = await startLocalCluster(o)
  try {
    const id = await cluster.client.submit(job)
    o.onSubmitted?.(id, cluster.client)
    const status = await cluster.client.waitDone(id, { timeoutMs: 24 * 3600_000, pollMs: 50, ...(o.onStatus ? { onStatus: o.onStatus } : {}) })
    const result = status.state === 'SUCCEEDED' ? await cluster.client.result(id) : null
    return { status, result, url: cluster.url }
  } finally {
    if (!o.keep) await cluster.stop()
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
