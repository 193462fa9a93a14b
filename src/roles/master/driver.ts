// The only impure loop of the master: stamps events with the clock, runs step(), persists its
// changes, then performs its actions; their outcomes come back as events.
// JS runs one callback at a time and step() never awaits, so no lock is needed.
import type { AttemptId, JobId } from '../../api/ids'
import type { AttemptRun, JobRun } from './state'
import type { Clock } from '../clock'
import { step, type MasterAction, type MasterEvent, type StoreChange } from './scheduler'
import type { MasterState } from './state'
import { jobStatus } from './status'
import type { Store } from './store'

/** An event before the driver stamps it with the time. */
export type PendingEvent = MasterEvent extends infer E ? E extends { nowMs: number } ? Omit<E, 'nowMs'> : never : never
export type Sender = (a: MasterAction) => Promise<PendingEvent | null>

export type Driver = { post(e: PendingEvent): void; state: MasterState; stop(): void }

export function startDriver(deps: { clock: Clock; store: Store; send: Sender; state: MasterState; leaseCheckMs: number }): Driver {
  const state = deps.state
  const post = (e: PendingEvent): void => {
    const event = { ...e, nowMs: deps.clock.now() } as MasterEvent
    const out = step(state, event)
    // Persist before sending: after a crash, a restarted master would rather find an attempt it
    // never launched than a running task nobody remembers.
    persist(deps.store, state, out.changes)
    for (const a of out.actions) {
      void deps.send(a).then(next => { if (next !== null) post(next) })
    }
  }
  deps.clock.every(deps.leaseCheckMs, () => post({ kind: 'lease-check-due' }))
  return { post, state, stop: () => deps.clock.cancelAll() }
}

function persist(store: Store, s: MasterState, changes: readonly StoreChange[]): void {
  if (changes.length === 0) return
  const created = new Set<JobId>()
  const jobs = new Set<JobId>()
  const attempts = new Map<AttemptId, AttemptRun>()
  const workers = new Set<string>()
  for (const c of changes) {
    if (c.kind === 'job-created') created.add(c.job)
    else if (c.kind === 'job') jobs.add(c.job)
    else if (c.kind === 'attempt') attempts.set(c.attempt.id, c.attempt)
    else workers.add(c.worker)
  }
  const live = (ids: Set<JobId>): JobRun[] => [...ids].flatMap(id => { const j = s.jobs.get(id); return j ? [j] : [] })
  store.commit(
    live(created),
    live(jobs).map(job => ({ job, status: JSON.stringify(jobStatus(job)) })),
    [...attempts.values()],
    [...s.workers.values()].filter(w => workers.has(w.id)),
  )
}
