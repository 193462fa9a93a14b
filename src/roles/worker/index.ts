// A worker: serves task dispatch, the shuffle data service and file questions over HTTP, beats to
// the master, and runs tasks on its task threads. Wiring only; the parts live beside it: the
// decisions in step.ts, the threads in driver.ts, file work in files/.
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs'
import { hostname } from 'node:os'
import { diskIdOf } from './disk-id'
import { join, resolve } from 'node:path'
import type { Elysia } from 'elysia'
import { PeerClient } from '../../api/peers'
import { SharedBudget, laneBytes, newBudgetBuffer, newPressureBuffer, reservedBytes } from '../../engine/spill/budget'
import { CacheKeeper } from './cache/keeper'
import { listen } from '../http'
import { silentLogger, type Logger } from '../log'
import { ProcessMetrics } from '../process-metrics'
import { workerApp } from './app'
import { BlockStore } from './block-store'
import { HELD_BLOCKS_MAX } from '../../api/heartbeat'
import { WorkerDriver } from './driver'
import { FileWork } from './files/work'
import { startHeartbeats } from './heartbeat'
import { pathName } from './layout'
import { SPILL_FRACTION, pauseMarks } from './memory'
import { WorkerMetrics } from './metrics'
import { Reporter } from './reporter'
import { takeTasks } from './taken-tasks'
import { workerMetricsRoutes } from './routes/metrics'
import { LANES_PER_SLOT } from './state'

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
  /** where the worker tells what happens (joining, failed tasks, memory); default: nowhere */
  logger?: Logger
}

type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** The parts' log calls (`{ level, cause, message, ...ids }`) as lines of `logger`: `cause` is the
 *  line's event name. */
const logTo = (logger: () => Logger) => (m: Record<string, unknown>): void => {
  const { level, cause, message, ...fields } = m
  const lvl: LogLevel = level === 'debug' || level === 'warn' || level === 'error' ? level : 'info'
  logger()[lvl]({ event: cause, ...fields }, typeof message === 'string' ? message : String(cause))
}

/** How often memory is sampled and task time limits are checked. */
const SAMPLE_MS = 100

/** At most this many persisted blocks are listed in a heartbeat (the schema's bound). */
const HELD_BLOCKS_LISTED = HELD_BLOCKS_MAX
const HELD_LISTING_EVERY = 10

export async function startWorker(o: WorkerOptions): Promise<{ url: string; id: string; stop(): Promise<void> }> {
  const dataDir = resolve(o.dataDir)
  mkdirSync(dataDir, { recursive: true })
  const diskId = diskIdOf(dataDir)
  let id = o.id ?? ''
  // Every line names the worker once its id is known (it may come from the port it got).
  let logger = o.logger ?? silentLogger()
  const log = logTo(() => logger)
  let driver: WorkerDriver | undefined
  // One memory counter for all task threads, with a lane per thread: tasks spill past
  // SPILL_FRACTION of --max-mem together, and each may always hold a small working set. Cached
  // blocks kept in memory are counted on one more lane, the last, never refused: the cache gives
  // way by eviction (cache/keeper.ts), not by refusal.
  const cacheLane = o.slots * LANES_PER_SLOT
  const budget = newBudgetBuffer(cacheLane + 1)
  const blocks = new BlockStore(new SharedBudget(budget, 2 ** 40, 0, cacheLane))
  // No job may read, write or contain the work dir (every worker's folder in it): the file work judges it.
  const own = [{ path: resolve(o.workDir), what: "the worker's work dir (--work-dir)" }]
  const files = new FileWork(own)
  const peers = new PeerClient(o.token)
  // Attempts whose report the master has not acknowledged yet: still listed in heartbeats, so the
  // master does not take them for lost.
  const unreported = new Set<string>()
  const reporter: Reporter = new Reporter({
    masterUrl: o.masterUrl, peers, onSettled: a => unreported.delete(a), log,
    // The master hands over the next tasks with the answer to a report (taken-tasks.ts).
    onTasks: tasks => takeTasks(tasks, { submit: spec => driver!.submit(spec), report: r => { unreported.add(r.attempt_id); reporter.add(r) }, workerId: () => id, log }),
  })
  const processMetrics = new ProcessMetrics()
  const metrics = new WorkerMetrics({ workerId: () => id, slots: o.slots, active: () => driver?.active ?? 0, process: processMetrics,
    budgetBytes: () => reservedBytes(budget) - laneBytes(budget, cacheLane), cachedBytes: () => blocks.cachedBytes(), paused: () => driver?.paused ?? false })

  // The app's logger is the root one: the worker's id is not known before it listens.
  const app = workerApp({ tasks: () => driver!, blocks: () => blocks, files: () => files, dataDir, own, peers }, o.token, processMetrics, logger).use(workerMetricsRoutes(metrics))

  const { url, port } = listen(app as unknown as Elysia, 'worker', o.host, o.port)
  const address = o.advertise ?? `${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`
  if (id === '') id = `${hostname()}-${port}`
  logger = logger.child({ worker: id })
  logger.info({ event: 'listening', url, address, master: o.masterUrl, slots: o.slots, max_mem_bytes: o.maxMemBytes }, `listening on ${url} as ${id}`)
  // Each worker has its own folder in the work dir, so workers sharing one --work-dir never
  // delete each other's files; stale files of an earlier run of this worker go at start-up.
  // The stale folder is renamed aside at once (its name has a ".", which no worker folder has) and
  // removed by the file thread: removing it scales with what the last run left.
  const workRoot = resolve(o.workDir)
  const workDir = join(workRoot, pathName(id))
  if (existsSync(workDir)) renameSync(workDir, `${workDir}.stale-${process.pid}-${Date.now()}`)
  mkdirSync(workDir, { recursive: true })
  // Also those an earlier run renamed and did not live to remove (the root holds a folder a worker).
  for (const f of readdirSync(workRoot)) {
    if (!f.startsWith(`${pathName(id)}.stale-`)) continue
    files.remove(join(workRoot, f)).catch(e => log({ level: 'warn', cause: 'stale-work-dir', message: (e as Error).message }))
  }
  const spillAtBytes = Math.floor(SPILL_FRACTION * o.maxMemBytes)
  const floorBytes = Math.min(4 << 20, Math.floor(spillAtBytes / (2 * o.slots)))
  driver = new WorkerDriver({
    slots: o.slots, maxMemBytes: o.maxMemBytes, blocks, files, log, now: Date.now, workerId: () => id,
    env: { dataDir, workDir, masterUrl: o.masterUrl, workerId: id, token: o.token, budget, pressure: newPressureBuffer(), spillAtBytes, floorBytes },
    taskEnded: r => metrics.taskEnded(r),
    report: r => { unreported.add(r.attempt_id); reporter.add(r) },
  })
  // The persisted blocks held go in a heartbeat when they changed, and in every HELD_LISTING_EVERY-th
  // one whatever happened (a master that restarted, or missed one, learns them): not in all, where a
  // worker holding many would send them twice a second.
  let beats = 0
  let listedChanges = -1
  const heldListing = (): { datasets?: ReturnType<BlockStore['datasetBlocks']> } => {
    if (blocks.datasetChanges === listedChanges && beats++ % HELD_LISTING_EVERY !== 0) return {}
    listedChanges = blocks.datasetChanges
    return { datasets: blocks.datasetBlocks(HELD_BLOCKS_LISTED) }
  }
  const heartbeats = startHeartbeats({
    masterUrl: o.masterUrl, peers, intervalMs: o.heartbeatIntervalMs, rng: Math.random, log,
    ...(o.onRefused === undefined ? {} : { onRefused: o.onRefused }), hasToken: o.token !== undefined,
    body: () => {
      const active = driver!.active
      // Backpressure: past the pause threshold no new task comes until spilling (or tasks ending)
      // brings what tasks hold back under the resume threshold (decided in step.ts, sampled below).
      return {
        worker_id: id, address, status: driver!.paused ? 'PAUSED' : active > 0 ? 'BUSY' : 'IDLE', active_tasks: active,
        mem_usage_mb: Math.round(process.memoryUsage.rss() / 1048576), last_heartbeat: Math.floor(Date.now() / 1000),
        slots: o.slots, disk_id: diskId,
        running: [...driver!.runningAttempts(), ...unreported],
        cached_memory_bytes: blocks.cachedBytes().memory, cached_disk_bytes: blocks.cachedBytes().disk,
        ...heldListing(),
      }
    },
    onAck: (ack, previous) => {
      metrics.heartbeatAcked(Date.now())
      // A later new incarnation is told by step (it drops what the old one held).
      if (previous === undefined) logger.info({ event: 'registered', incarnation: ack.incarnation, master: o.masterUrl }, `registered with the master at ${o.masterUrl}`)
      // A new incarnation (the master declared us DEAD, or we restarted): step drops what we hold.
      driver!.post({ kind: 'incarnation-given', incarnation: ack.incarnation })
    },
  })
  const keeper = new CacheKeeper({ blocks, workDir, spillAtBytes, log })
  const marks = pauseMarks(o.maxMemBytes, o.slots)
  let wasPaused = false
  let lastEarlyBeatMs = 0
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss()
    // Cached data gives way first: to the tasks' budget, and before the worker pauses.
    keeper.sample(reservedBytes(budget) - laneBytes(budget, cacheLane), rss, marks.pauseAtBytes, Date.now())
    driver!.sampleMemory(rss, blocks.cachedBytes().memory)
    // The master hears of a pause (and of its end) at once, not at the next beat: it sends no task
    // to a PAUSED worker, and the sooner it knows, the fewer wait in this worker's queue.
    if (driver!.paused !== wasPaused) {
      wasPaused = driver!.paused
      log({ level: 'info', cause: wasPaused ? 'paused' : 'resumed', rss_mib: Math.round(rss / 1048576) })
      // At most one extra beat a second, however often the worker pauses and resumes.
      const now = Date.now()
      if (now - lastEarlyBeatMs >= 1000) { lastEarlyBeatMs = now; void heartbeats.beatNow() }
    }
  }, SAMPLE_MS)
  return {
    url, id,
    async stop() {
      clearInterval(sampler)
      heartbeats.stop()
      driver?.stop()
      await reporter.idle()
      app.stop()
      await files.remove(workDir).catch(() => {})
      files.stop()
    },
  }
}
