// The only impure loop of the master: stamps events with the clock, runs step(), persists its
// changes, then performs its actions; their outcomes come back as events.
// JS runs one callback at a time and step() never awaits, so no lock is needed.
//
// Events are stepped at once, but what they change is written, and what they ask for is sent, once
// per turn of the event loop (setImmediate), and under load at most once per COMMIT_EVERY_MS:
// every event handled meanwhile shares one SQLite transaction. A job of many small tasks would otherwise pay a transaction per report and per
// launch. Callers that must not answer before the state is durable (a submitted job, a report, the
// right to commit an output) wait for `persisted()`.
import type { AttemptId, JobId, WorkerId } from '../../api/ids'
import { FINAL_JOB_STATES } from '../../api/jobs'
import type { AttemptRun, JobRun, Overwrite, Replica } from './state'
import type { DatasetRecord, OutputRecord } from './catalog'
import { overwritesKept } from './worker-events'
import type { Clock } from '../clock'
import { silentLogger, type Logger } from '../log'
import { step, type MasterAction, type MasterEvent, type Step, type StoreChange } from './scheduler'
import type { MasterState } from './state'
import { jobStatus } from './status'
import type { Store } from './store'

/** An event before the driver stamps it with the time. */
export type PendingEvent = MasterEvent extends infer E ? E extends { nowMs: number } ? Omit<E, 'nowMs'> : never : never
export type Sender = (a: MasterAction) => Promise<PendingEvent | null>

export type Driver = {
  post(e: PendingEvent): void
  /** resolves once everything posted so far is in the store */
  persisted(): Promise<void>
  /** writes what is pending now, and sends its actions (before a read of the store, say) */
  flush(): void
  state: MasterState
  stop(): void
}

const STORE_RETRY_MS = 1_000
/** Under load, at most one transaction per this long (group commit): a transaction's fixed cost
 *  (its WAL frames, a checkpoint now and then) is a few hundred microseconds of blocked event loop
 *  on a busy disk, and one per report request would cost more than the tasks themselves. An idle
 *  master still writes in the very next turn; a busy one adds at most this to a report's answer,
 *  which workers do not wait on idle (tasks are queued ahead: queue-ahead.ts). */
export const COMMIT_EVERY_MS = 2

export function startDriver(deps: {
  clock: Clock; store: Store; send: Sender; state: MasterState; leaseCheckMs: number
  /** told of each step as it is taken, with its event (for the log); must not change the state */
  onStep?: (e: MasterEvent, out: Step) => void
  logger?: Logger
  /** the group-commit pacing (default COMMIT_EVERY_MS) */
  commitEveryMs?: number
}): Driver {
  const state = deps.state
  const commitEveryMs = deps.commitEveryMs ?? COMMIT_EVERY_MS
  const logger = deps.logger ?? silentLogger()
  let changes: StoreChange[] = []
  let actions: MasterAction[] = []
  let waiters: (() => void)[] = []
  let due = false
  let stopped = false
  let lastFlushMs = -Infinity

  const flush = (): void => {
    due = false
    lastFlushMs = performance.now()
    if (changes.length === 0 && actions.length === 0 && waiters.length === 0) return
    const [c, a, w] = [changes, actions, waiters]
    changes = []
    actions = []
    waiters = []
    // Persist before sending: after a crash, a restarted master would rather find an attempt it
    // never launched than a running task nobody remembers.
    try {
      persist(deps.store, state, c)
    } catch (e) {
      // A full disk or an I/O error: keep everything for another try rather than answer or send
      // what is not stored, and never leave a waiter behind.
      changes = [...c, ...changes]
      actions = [...a, ...actions]
      waiters = [...w, ...waiters]
      logger.error({ event: 'store-write-failed', error: (e as Error).message, retry_ms: STORE_RETRY_MS }, `cannot write the state file: ${(e as Error).message}; trying again`)
      if (!stopped) setTimeout(retry, STORE_RETRY_MS)
      return
    }
    for (const resolve of w) resolve()
    for (const action of a) void deps.send(action).then(next => { if (next !== null) post(next) })
  }
  // The retry of a failed write is paced by STORE_RETRY_MS already.
  const retry = (): void => {
    if (due || stopped) return
    due = true
    flush()
  }
  const later = (): void => {
    if (due || stopped) return
    due = true
    const waitMs = untilNextCommit()
    if (waitMs <= 0) setImmediate(flush)
    else setTimeout(paced, Math.ceil(waitMs))
  }
  const untilNextCommit = (): number => lastFlushMs + commitEveryMs - performance.now()
  // Timers count whole milliseconds on a clock of their own and may fire a fraction early: wait out
  // the rest rather than commit twice within COMMIT_EVERY_MS.
  const paced = (): void => {
    const waitMs = untilNextCommit()
    if (waitMs > 0 && !stopped) setTimeout(paced, Math.ceil(waitMs))
    else flush()
  }
  const post = (e: PendingEvent): void => {
    const event = { ...e, nowMs: deps.clock.now() } as MasterEvent
    const out = step(state, event)
    deps.onStep?.(event, out)
    for (const c of out.changes) changes.push(c)
    for (const a of out.actions) actions.push(a)
    if (out.changes.length > 0 || out.actions.length > 0) later()
    // A step that launched its most goes on in a later turn: what waits meanwhile is answered.
    if (state.scheduleMore === true && !moreDue) { moreDue = true; setImmediate(more) }
  }
  let moreDue = false
  const more = (): void => {
    moreDue = false
    if (!stopped && state.scheduleMore === true) post({ kind: 'schedule-due' })
  }
  const persisted = (): Promise<void> => {
    // Stopped: nothing more is written (the store may be closed), as after a crash.
    if (changes.length === 0 || stopped) return Promise.resolve()
    later()
    return new Promise(resolve => waiters.push(resolve))
  }
  deps.clock.every(deps.leaseCheckMs, () => post({ kind: 'lease-check-due' }))
  return {
    post, persisted, flush, state,
    // What is decided is kept; what is not sent yet is dropped, as a crash would (a restarted
    // master finds those attempts missing on their workers and runs them again).
    stop: () => { deps.clock.cancelAll(); stopped = true; actions = []; flush() },
  }
}

function persist(store: Store, s: MasterState, changes: readonly StoreChange[]): void {
  if (changes.length === 0) return
  const created = new Set<JobId>()
  const jobs = new Set<JobId>()
  const attempts = new Map<AttemptId, AttemptRun>()
  const workers = new Set<string>()
  const overwrites: Overwrite[] = []
  const outputs = new Map<string, OutputRecord>()
  const replicas = new Map<string, Replica[]>()
  const datasets = new Map<string, DatasetRecord | null>()
  for (const c of changes) {
    if (c.kind === 'job-created') created.add(c.job)
    else if (c.kind === 'job') jobs.add(c.job)
    else if (c.kind === 'attempt') attempts.set(c.attempt.id, c.attempt)
    else if (c.kind === 'overwrite') overwrites.push(c.overwrite)
    else if (c.kind === 'output') outputs.set(c.output.path, c.output)
    else if (c.kind === 'replicas') replicas.set(c.task, c.replicas)
    else if (c.kind === 'dataset') datasets.set(c.name, c.dataset)
    else workers.add(c.worker)
  }
  const live = (ids: Set<JobId>): JobRun[] => [...ids].flatMap(id => { const j = s.jobs.get(id); return j ? [j] : [] })
  const changed = live(jobs)
  store.commit(
    live(created),
    changed.map(job => ({ job, status: JSON.stringify(jobStatus(job)) })),
    [...attempts.values()],
    [...workers].flatMap(id => { const w = s.workers.get(id as WorkerId); return w ? [w] : [] }),
    overwrites, overwrites.length > 0 ? overwritesKept(overwrites[overwrites.length - 1]!.atMs) : undefined,
    [...outputs.values()], replicas, datasets,
  )
  // An ended job leaves memory once its final status and result are stored: from then on it is
  // read from the store, and no event walks it. Never before: a failed write keeps it here.
  for (const job of changed) if (FINAL_JOB_STATES.includes(job.state)) s.jobs.delete(job.id)
}
