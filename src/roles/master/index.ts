// The master: wiring only. Store, scheduler driver, worker client, routes.
import type { Elysia } from 'elysia'
import { realClock } from '../clock'
import { listen, roleApp } from '../http'
import { MasterCore } from './core'
import { startDriver, type PendingEvent, type Sender } from './driver'
import type { AttemptId } from '../../api/ids'
import type { MasterAction } from './scheduler'
import { newState } from './state'
import { Store } from './store'
import { WorkerClient } from './worker-client'
import { jobRoutes } from './routes/jobs'
import { clusterRoutes } from './routes/cluster'

export type MasterOptions = { host: string; port: number; stateDb: string; heartbeatTimeoutMs: number; token?: string }

export function startMaster(o: MasterOptions): { url: string; stop(): void } {
  const clock = realClock()
  const store = new Store(o.stateDb)
  const workers = new WorkerClient(o.token)
  markInterrupted(store, clock.now())
  const send: Sender = action => perform(workers, action)
  const driver = startDriver({ clock, store, send, state: newState(o.heartbeatTimeoutMs), leaseCheckMs: 250 })
  const core = new MasterCore(driver, store, clock, workers, o.heartbeatTimeoutMs)
  const app = roleApp('Mini-Spark master', 'Submit jobs, follow them, read their results; workers register by heartbeat.', o.token)
    .use(jobRoutes(core))
    .use(clusterRoutes(core))
  const { url } = listen(app as unknown as Elysia, 'master', o.host, o.port)
  return {
    url,
    stop() { driver.stop(); app.stop(); store.close() },
  }
}

async function perform(workers: WorkerClient, a: MasterAction): Promise<PendingEvent | null> {
  try {
    switch (a.kind) {
      case 'launch': await workers.launch(a.address, a.spec); return null
      case 'kill': await workers.kill(a.address, a.attempt); return null
      case 'drop-job-data': await workers.dropJob(a.address, a.job); return null
      case 'finalize-output': await workers.finalize(a.address, a.job, a.paths); return { kind: 'output-finalized', job: a.job }
    }
  } catch (e) {
    const message = (e as Error).message
    if (a.kind === 'launch') return { kind: 'launch-failed', attempt: a.spec.attempt_id as AttemptId, message }
    if (a.kind === 'finalize-output') return { kind: 'finalize-failed', job: a.job, message }
    // A kill or clean-up that misses a dead worker is harmless: it has nothing left to stop.
    return null
  }
}

// Until jobs resume after a restart, a job the previous master left unfinished is marked FAILED
// so that nobody waits on it for ever.
function markInterrupted(store: Store, nowMs: number): void {
  store.failUnfinished(nowMs, 'the master restarted while this job ran: submit it again')
}
