// Ended jobs leave the master's memory (src/roles/master/driver.ts): the real driver and a real
// store on a SQLite file, a fake clock, and workers answered at the driver's edge (a launch gets a
// successful report, a finalize its answer). Once a job's end is stored it is read from the store
// (status, result, attempts) and the scheduler's events no longer walk it; a job whose end could
// not be stored stays in memory until it is.
import { createLogger } from '../../../src/roles/log'
import { afterEach, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import type { JobId } from '../../../src/api/ids'
import type { JobRequest } from '../../../src/api/jobs'
import type { TaskReport } from '../../../src/api/tasks'
import type { Clock } from '../../../src/roles/clock'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { COMMIT_EVERY_MS, startDriver, type Driver, type PendingEvent } from '../../../src/roles/master/driver'
import { buildJobRun } from '../../../src/roles/master/planning'
import type { MasterAction } from '../../../src/roles/master/scheduler'
import { newState } from '../../../src/roles/master/state'
import { Store } from '../../../src/roles/master/store'
import { removeTempDir, tempDir } from '../../support/cluster'

const request: JobRequest = {
  name: 'tiny',
  nodes: [
    { id: 'lines', op: 'read_text', path: 'in/*.txt' },
    { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', partitions: 2 },
    { id: 'n', op: 'count', input: 'counts' },
  ],
}
const valid = validateJob(request, SUPPORTED_OPS)
const listing = { inputs: [{ node_id: 'lines', files: [{ path: 'in/a.txt', size: 10 }, { path: 'in/b.txt', size: 10 }] }], errors: [] }

/** Launches answered with success, except those of jobs in `hold` (they stay RUNNING). */
function worker(hold: Set<string>): { send: (a: MasterAction) => Promise<PendingEvent | null> } {
  return {
    send: async a => {
      if (a.kind === 'finalize-output') return { kind: 'output-finalized', job: a.job, worker: a.worker, incarnation: a.incarnation }
      if (a.kind !== 'launch' || hold.has(a.spec.job_id)) return null
      const report: TaskReport = {
        worker_id: a.worker, incarnation: a.spec.incarnation, attempt_id: a.spec.attempt_id, state: 'SUCCEEDED',
        metrics: { records_in: 1, records_out: 1, shuffle_bytes_written: 1, shuffle_bytes_read: 0, spilled_bytes: 0 },
        shuffle_outputs: a.spec.stage.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: Array<number>(w.partitions).fill(1) })),
        sinks: a.spec.stage.sinks.map(id => ({ node_id: id, op: 'count', records: 3 })),
      }
      return { kind: 'task-reported', report }
    },
  }
}

const clock: Clock = { now: () => 5_000, every: () => {}, cancelAll: () => {} }
const turn = () => new Promise(r => setImmediate(r))

let dir = ''
afterEach(() => { if (dir !== '') removeTempDir(dir); dir = '' })

async function settle(d: Driver, until: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !until(); i++) { await d.persisted(); await turn() }
  expect(until()).toBe(true)
}

describe('ended jobs leave memory', () => {
  test('after 60 tiny jobs end, memory holds only the one still running; the others are read from the store', async () => {
    dir = tempDir('ms-history-mem-')
    const store = new Store(join(dir, 'm.db'))
    const hold = new Set(['job-60'])
    const d = startDriver({ clock, store, send: worker(hold).send, state: newState(60_000), leaseCheckMs: 250 })
    d.post({ kind: 'heartbeat-received', hb: { worker_id: 'w1', address: 'w1.test:1', status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 4 } })
    for (let i = 1; i <= 60; i++) {
      d.post({ kind: 'job-submitted', job: buildJobRun({ id: `job-${i}` as JobId, seq: i, request, valid, listing, defaultPartitions: 2, nowMs: 5_000 }) })
    }
    const ended = () => Array.from({ length: 59 }, (_, i) => store.job(`job-${i + 1}` as JobId)?.state).every(st => st === 'SUCCEEDED')
    await settle(d, ended)
    await settle(d, () => d.state.jobs.size === 1)
    expect([...d.state.jobs.keys()]).toEqual(['job-60' as JobId])
    // No attempt of an ended job is left either: only job-60's running ones.
    expect(new Set([...d.state.attempts.values()].map(a => a.job))).toEqual(new Set(['job-60' as JobId]))
    // What left memory is whole in the store: final status, result, every attempt.
    const row = store.job('job-7' as JobId)!
    expect(JSON.parse(row.status!).state).toBe('SUCCEEDED')
    expect(JSON.parse(row.result!)).toEqual({ sinks: { n: { op: 'count', value: 6 } } })
    expect(store.tasks('job-7' as JobId).map(t => t.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED'])
    // A cancel of the running job ends it: it leaves memory too; one of an ended job changes nothing.
    d.post({ kind: 'job-cancel-requested', job: 'job-60' as JobId })
    d.post({ kind: 'job-cancel-requested', job: 'job-7' as JobId })
    await settle(d, () => d.state.jobs.size === 0)
    expect(store.job('job-60' as JobId)!.state).toBe('CANCELLED')
    expect(store.job('job-7' as JobId)!.state).toBe('SUCCEEDED')
    expect(d.state.attempts.size).toBe(0)
    d.stop()
    store.close()
  })

  test('a job whose end could not be stored stays in memory, and leaves once a later write succeeds', async () => {
    dir = tempDir('ms-history-mem-')
    const real = new Store(join(dir, 'm.db'))
    let failing = false
    // The real store, with writes refused while `failing` (a full disk, say).
    const store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'commit') return (...args: Parameters<Store['commit']>) => { if (failing) throw new Error('disk I/O error'); return target.commit(...args) }
        const v = Reflect.get(target, prop, receiver)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    const hold = new Set(['job-1'])
    const timers: (() => void)[] = []
    const errors: string[] = []
    const origError = console.error
    console.error = (m: string) => { errors.push(m) }
    const origSetTimeout = globalThis.setTimeout
    try {
      // The driver retries a failed write after a second: run that retry by hand.
      globalThis.setTimeout = ((fn: () => void) => { timers.push(fn); return 0 }) as unknown as typeof setTimeout
      // The driver's log, captured: it says why the write failed.
      const logger = createLogger({ role: 'master', level: 'info', destination: { write: (line: string) => { errors.push(line) } } })
      const d = startDriver({ clock, store, send: worker(hold).send, state: newState(60_000), leaseCheckMs: 250, logger })
      d.post({ kind: 'heartbeat-received', hb: { worker_id: 'w1', address: 'w1.test:1', status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 4 } })
      d.post({ kind: 'job-submitted', job: buildJobRun({ id: 'job-1' as JobId, seq: 1, request, valid, listing, defaultPartitions: 2, nowMs: 5_000 }) })
      await d.persisted()
      // Past the group-commit pacing (driver.ts COMMIT_EVERY_MS): the next write goes in the next turn.
      await Bun.sleep(COMMIT_EVERY_MS + 3)
      failing = true
      d.post({ kind: 'job-cancel-requested', job: 'job-1' as JobId })
      await turn()
      expect(errors.some(e => e.includes('store-write-failed'))).toBe(true)
      expect(d.state.jobs.get('job-1' as JobId)?.state).toBe('CANCELLED')
      expect(real.job('job-1' as JobId)!.state).not.toBe('CANCELLED')
      failing = false
      for (const fn of timers.splice(0)) fn()
      await turn()
      expect(real.job('job-1' as JobId)!.state).toBe('CANCELLED')
      expect(d.state.jobs.size).toBe(0)
      d.stop()
    } finally {
      globalThis.setTimeout = origSetTimeout
      console.error = origError
      real.close()
    }
  })
})
