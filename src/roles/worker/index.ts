// A worker: serves task dispatch, the shuffle data service and file questions over HTTP, beats to
// the master, and runs tasks on its executor pool. Wiring only; the parts live beside it.
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import type { Elysia } from 'elysia'
import type { TaskReport, TaskSpec } from '../../api/tasks'
import { listen } from '../http'
import { BlockStore, safe } from './block-store'
import { startHeartbeats } from './heartbeat'
import { RUNAWAY_MARGIN_BYTES, SPILL_FRACTION, pauseDecision, runawayDecision } from './memory'
import { newBudgetBuffer, reservedBytes } from '../../engine/spill/budget'
import { ExecutorPool } from './pool'
import { workerApp } from './app'
import { WorkerMetrics } from './metrics'
import { workerMetricsRoutes } from './routes/metrics'
import { partitionSizes, type ThreadResult } from './thread-protocol'
import { Reporter } from './reporter'

export type WorkerOptions = {
  masterUrl: string
  host: string
  port: number
  advertise?: string
  id?: string
  slots: number
  maxMemBytes: number
  dataDir: string
  workDir: string
  heartbeatIntervalMs: number
  token?: string
  /** the master refused the token: the worker can never join */
  onRefused?: (message: string) => void
}

const log = (m: Record<string, unknown>): void => console.error(JSON.stringify({ role: 'worker', ...m }))

export async function startWorker(o: WorkerOptions): Promise<{ url: string; id: string; stop(): Promise<void> }> {
  const dataDir = resolve(o.dataDir)
  mkdirSync(dataDir, { recursive: true })
  let id = o.id ?? ''
  let workDir = ''
  let pool: ExecutorPool | undefined
  let blocks: BlockStore | undefined
  let heartbeats: ReturnType<typeof startHeartbeats> | undefined
  // Attempts whose report the master has not acknowledged yet: still listed in heartbeats, so the
  // master does not take them for lost.
  const unreported = new Set<string>()
  const reporter = new Reporter({ masterUrl: o.masterUrl, token: o.token, onSettled: a => unreported.delete(a), log })
  const metrics = new WorkerMetrics({ workerId: () => id, slots: o.slots, active: () => pool?.active ?? 0, startedMs: Date.now() })

  const onDone = (spec: TaskSpec, r: ThreadResult): void => {
    metrics.taskEnded(r)
    for (const b of r.blocks) blocks!.register(spec.job_id, spec.attempt_id, b)
    const report: TaskReport = {
      worker_id: id, incarnation: spec.incarnation, attempt_id: r.attempt_id, state: r.state, metrics: r.metrics,
      shuffle_outputs: r.blocks.map(b => ({ shuffle_id: b.shuffle_id, sizes: partitionSizes(b) })),
      sinks: r.sinks, ...(r.failure ? { failure: r.failure } : {}),
    }
    unreported.add(r.attempt_id)
    reporter.add(report)
  }

  const app = workerApp({
    pool: () => pool!, blocks: () => blocks!, incarnation: () => heartbeats?.incarnation(), dataDir,
  }, o.token).use(workerMetricsRoutes(metrics))

  const { url, port } = listen(app as unknown as Elysia, 'worker', o.host, o.port)
  const address = o.advertise ?? `${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`
  if (id === '') id = `${hostname()}-${port}`
  // Each worker has its own folder in the work dir, so workers sharing one --work-dir never
  // delete each other's files; stale files of an earlier run of this worker go at start-up.
  workDir = join(resolve(o.workDir), safe(id))
  rmSync(workDir, { recursive: true, force: true })
  mkdirSync(workDir, { recursive: true })
  blocks = new BlockStore(workDir)
  // One memory counter for all task threads: tasks spill past SPILL_FRACTION of --max-mem
  // together, and each may always hold a small working set.
  const budget = newBudgetBuffer()
  const spillAtBytes = Math.floor(SPILL_FRACTION * o.maxMemBytes)
  const floorBytes = Math.min(4 << 20, Math.floor(spillAtBytes / (2 * o.slots)))
  pool = new ExecutorPool(o.slots, { dataDir, workDir, masterUrl: o.masterUrl, workerId: id, token: o.token, budget, spillAtBytes, floorBytes }, onDone)
  let paused = false
  heartbeats = startHeartbeats({
    masterUrl: o.masterUrl, token: o.token, intervalMs: o.heartbeatIntervalMs, rng: Math.random, log,
    ...(o.onRefused === undefined ? {} : { onRefused: o.onRefused }),
    body: () => {
      const active = pool!.active
      // Backpressure: past the pause threshold no new task comes until spilling (or tasks ending)
      // brings what tasks hold back under the resume threshold. It is the tasks' accounted
      // memory, not the resident size, so that there is always a way out: a worker with nothing
      // running holds nothing.
      paused = pauseDecision(reservedBytes(budget), o.maxMemBytes, paused)
      return {
        worker_id: id, address, status: paused ? 'PAUSED' : active > 0 ? 'BUSY' : 'IDLE', active_tasks: active,
        mem_usage_mb: Math.round(process.memoryUsage.rss() / 1048576), last_heartbeat: Math.floor(Date.now() / 1000),
        slots: o.slots,
        running: [...pool!.runningAttempts(), ...unreported],
      }
    },
    onAck: (ack, previous) => {
      metrics.heartbeatAcked(Date.now())
      // The master gave us a new incarnation (it declared us DEAD, or we restarted): nothing we
      // hold counts any more, so free the threads and the disk.
      if (previous !== undefined && previous !== '' && ack.incarnation !== previous) {
        for (const job of new Set(pool!.runningAttempts().map(a => a.slice(0, a.indexOf(':'))))) pool!.killJob(job)
        for (const job of blocks!.jobs()) blocks!.dropJob(job)
        log({ level: 'warn', cause: 'new-incarnation', message: `rejoined as ${ack.incarnation}; dropped the work of ${previous}` })
      }
    },
  })
  let lastStopMs = -Infinity
  const watchdog = setInterval(() => {
    const rss = process.memoryUsage.rss()
    if (runawayDecision(rss, o.maxMemBytes, Date.now(), lastStopMs) !== 'stop-running-tasks') return
    lastStopMs = Date.now()
    const stopped = pool!.failRunning(`the worker's memory reached ${Math.round(rss / 1048576)} MiB, past --max-mem ${Math.round(o.maxMemBytes / 1048576)} MiB + ${RUNAWAY_MARGIN_BYTES >> 20} MiB, while this task ran: a function keeps too much data (allocate less, or give the worker a larger --max-mem)`)
    log({ level: 'warn', cause: 'memory-runaway', rss_mb: Math.round(rss / 1048576), stopped })
  }, 100)
  return {
    url, id,
    async stop() {
      clearInterval(watchdog)
      heartbeats?.stop()
      pool?.stop()
      await reporter.idle()
      app.stop()
      if (existsSync(workDir)) rmSync(workDir, { recursive: true, force: true })
    },
  }
}
