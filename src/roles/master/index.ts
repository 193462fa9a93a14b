// The master: wiring only. Store, scheduler driver, worker client, routes.
import { resolve } from 'node:path'
import type { Elysia } from 'elysia'
import { realClock } from '../clock'
import { listen, roleApp } from '../http'
import { silentLogger, type Logger } from '../log'
import { ProcessMetrics } from '../process-metrics'
import { StepLog, recoveryLine } from './step-log'
import { MasterCore } from './core'
import { startDriver, type PendingEvent, type Sender } from './driver'
import type { AttemptId } from '../../api/ids'
import type { MasterAction } from './scheduler'
import { recoverState } from './recovery'
import { Store } from './store'
import { DEFAULT_RETENTION, type Retention } from './retention'
import { startPruner } from './pruner'
import { WorkerClient, refused } from './worker-client'
import { Launcher } from './launcher'
import { jobRoutes } from './routes/jobs'
import { clusterRoutes } from './routes/cluster'
import { outputRoutes } from './routes/outputs'
import { datasetRoutes } from './routes/datasets'
import { dagRoutes } from './routes/dag'
import { metricsRoutes } from './routes/metrics'
import { uiRoutes } from './routes/ui'
import { schemaRoutes } from './routes/schema'

export type MasterOptions = {
  host: string; port: number; stateDb: string; heartbeatTimeoutMs: number; token?: string
  /** how long ended jobs stay in the store (`--keep-jobs`); default 7 days or 10 000 jobs */
  retention?: Retention
  /** where the master tells what happens (jobs, workers, retries); default: nowhere */
  logger?: Logger
}

/** The master's parts and its app, not yet listening: tests drive `app.handle` directly. */
export function createMaster(o: MasterOptions) {
  const clock = realClock()
  const store = new Store(o.stateDb)
  const workers = new WorkerClient(o.token)
  const launcher = new Launcher(workers)
  const send: Sender = action => perform(workers, launcher, action)
  const state = recoverState(store, clock.now(), o.heartbeatTimeoutMs)
  const logger = o.logger ?? silentLogger()
  const recovered = recoveryLine(state)
  if (recovered !== null) logger[recovered.level]({ event: recovered.event, ...recovered.fields }, recovered.msg)
  const stepLog = new StepLog(state, logger.isLevelEnabled('debug'))
  const onStep: Parameters<typeof startDriver>[0]['onStep'] = (e, out) => {
    for (const l of stepLog.linesOf(e, out, state)) logger[l.level]({ event: l.event, ...l.fields }, l.msg)
  }
  const driver = startDriver({ clock, store, send, state, leaseCheckMs: 250, onStep, logger })
  const pruner = startPruner({ store, clock, retention: o.retention ?? DEFAULT_RETENTION, logger })
  const processMetrics = new ProcessMetrics()
  // No job may touch the state db or its SQLite journals: the workers check it when they list.
  const reserved = ['', '-wal', '-shm', '-journal'].map(suffix => ({ path: resolve(o.stateDb) + suffix, what: "the master's state db (--state-db)" }))
  const core = new MasterCore(driver, store, clock, workers, o.heartbeatTimeoutMs, reserved, address => launcher.hold(address))
  const app = roleApp('Mini-Spark master', 'Submit jobs, follow them, read their results; workers register by heartbeat.', o.token, processMetrics, logger)
    .use(jobRoutes(core))
    .use(clusterRoutes(core))
    .use(outputRoutes(driver.state))
    .use(datasetRoutes(driver.state, core))
    .use(dagRoutes(core, store, driver.state))
    .use(metricsRoutes({ state: driver.state, store, clock, process: processMetrics, flush: driver.flush }))
    .use(uiRoutes(clock))
    .use(schemaRoutes())
  return { app, core, store, pruner, stop() { pruner.stop(); driver.stop(); if (app.server) void app.stop(); store.close() } }
}

export function startMaster(o: MasterOptions): { url: string; stop(): void } {
  const m = createMaster(o)
  const { url } = listen(m.app as unknown as Elysia, 'master', o.host, o.port)
  o.logger?.info({ event: 'listening', url, state_db: resolve(o.stateDb) }, `listening on ${url}`)
  return { url, stop: m.stop }
}

async function perform(workers: WorkerClient, launcher: Launcher, a: MasterAction): Promise<PendingEvent | null> {
  try {
    switch (a.kind) {
      case 'launch': {
        const o = await launcher.launch(a.address, a.spec)
        return o.ok ? null : { kind: 'launch-failed', attempt: a.spec.attempt_id as AttemptId, message: o.message, unreachable: o.unreachable, permanent: o.permanent === true }
      }
      case 'kill': await workers.kill(a.address, a.attempt); return null
      case 'drop-job-data': await workers.dropJob(a.address, a.job, a.outputs, a.keepOutputs); return null
      case 'finalize-output':
        await workers.finalize(a.address, a.job, a.paths, a.swaps, a.settle)
        return { kind: 'output-finalized', job: a.job, worker: a.worker, incarnation: a.incarnation }
      case 'replicate':
        await workers.replicate(a.address, a.file, a.from)
        return { kind: 'replica-made', job: a.job, stage: a.stage, partition: a.partition, node: a.node, worker: a.worker, incarnation: a.incarnation }
      case 'clear-stale-outputs':
        await workers.finalize(a.address, '', [], a.swaps, a.settle)
        return { kind: 'stale-outputs-cleared', worker: a.worker, incarnation: a.incarnation, ok: true }
    }
  } catch (e) {
    const message = (e as Error).message
    if (a.kind === 'launch') return { kind: 'launch-failed', attempt: a.spec.attempt_id as AttemptId, message, unreachable: refused(e) }
    if (a.kind === 'finalize-output') return { kind: 'finalize-failed', job: a.job, message, worker: a.worker, incarnation: a.incarnation, unreachable: refused(e) }
    if (a.kind === 'replicate') return { kind: 'replica-failed', job: a.job, stage: a.stage, partition: a.partition, node: a.node, worker: a.worker, incarnation: a.incarnation, message }
    if (a.kind === 'clear-stale-outputs') return { kind: 'stale-outputs-cleared', worker: a.worker, incarnation: a.incarnation, ok: false }
    // A kill or clean-up that misses a dead worker is harmless: it has nothing left to stop.
    return null
  }
}

