// The driver's batching (src/roles/master/driver.ts), with a fake clock and a fake store: the store
// writes of every event posted in one turn of the event loop go in one commit, actions are sent
// only after that commit, and persisted() resolves once what was posted is stored.
import { describe, expect, test } from 'bun:test'
import type { Heartbeat } from '../../../src/api/heartbeat'
import type { JobId } from '../../../src/api/ids'
import type { Clock } from '../../../src/roles/clock'
import { startDriver } from '../../../src/roles/master/driver'
import type { MasterAction } from '../../../src/roles/master/scheduler'
import { newState, type AttemptRun, type JobRun, type WorkerRun } from '../../../src/roles/master/state'
import type { Store } from '../../../src/roles/master/store'
import { buildJobRun } from '../../../src/roles/master/planning'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'

const fakeClock = (): Clock => ({ now: () => 1_000, every: () => {}, cancelAll: () => {} })

type Commit = { created: string[]; attempts: string[]; workers: string[] }
function fakeStore(log: string[]): { store: Store; commits: Commit[] } {
  const commits: Commit[] = []
  const store = {
    commit(created: readonly JobRun[], _jobs: unknown, attempts: readonly AttemptRun[], workers: readonly WorkerRun[]) {
      commits.push({ created: created.map(j => j.id), attempts: attempts.map(a => `${a.id}:${a.state}`), workers: workers.map(w => w.id) })
      log.push('commit')
    },
  } as unknown as Store
  return { store, commits }
}

const hb = (id: string): Heartbeat => ({ worker_id: id, address: `${id}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 1 })

function job(): JobRun {
  const request = { name: 'j', nodes: [{ id: 'in', op: 'read_text', path: 'in/*.txt' }, { id: 'n', op: 'count', input: 'in' }] }
  const listing = { inputs: [{ node_id: 'in', files: [{ path: 'in/a.txt', size: 10 }, { path: 'in/b.txt', size: 10 }] }], errors: [] }
  return buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), listing, defaultPartitions: 2, nowMs: 0 })
}

const turn = () => new Promise(r => setImmediate(r))

describe('driver', () => {
  test('events of one turn share one commit; actions go out after it; persisted() waits for it', async () => {
    const log: string[] = []
    const { store, commits } = fakeStore(log)
    const sent: MasterAction[] = []
    const d = startDriver({ clock: fakeClock(), store, state: newState(10_000), leaseCheckMs: 250,
      send: async a => { sent.push(a); log.push(`send ${a.kind}`); return null } })
    d.post({ kind: 'heartbeat-received', hb: hb('w1') })
    d.post({ kind: 'heartbeat-received', hb: hb('w2') })
    d.post({ kind: 'job-submitted', job: job() })
    // Decided at once (the state is current), but neither written nor sent yet.
    expect(d.state.jobs.get('j1' as JobId)?.state).toBe('RUNNING')
    expect(commits).toEqual([])
    expect(sent).toEqual([])
    let stored = false
    const p = d.persisted().then(() => { stored = true })
    await turn()
    expect(commits).toEqual([{ created: ['j1'], attempts: ['j1:0:0#0:RUNNING', 'j1:0:1#0:RUNNING'], workers: ['w1', 'w2'] }])
    expect(log).toEqual(['commit', 'send launch', 'send launch'])
    await p
    expect(stored).toBe(true)
    d.stop()
  })

  test('persisted() resolves at once when nothing is pending; flush() writes now; stop() writes but sends nothing more', async () => {
    const log: string[] = []
    const { store, commits } = fakeStore(log)
    const d = startDriver({ clock: fakeClock(), store, state: newState(10_000), leaseCheckMs: 250, send: async a => { log.push(`send ${a.kind}`); return null } })
    await d.persisted()
    expect(commits).toEqual([])
    d.post({ kind: 'heartbeat-received', hb: hb('w1') })
    d.flush()
    expect(commits).toHaveLength(1)
    d.post({ kind: 'job-submitted', job: job() })
    d.stop()
    expect(commits).toHaveLength(2)
    await turn()
    expect(log).toEqual(['commit', 'commit'])
  })

  test('under load, events of consecutive turns share one commit, at most one per COMMIT_EVERY_MS; an idle driver commits in the next turn', async () => {
    const log: string[] = []
    const { store, commits } = fakeStore(log)
    const commitTimes: number[] = []
    const timed = { commit: (...a: Parameters<Store['commit']>) => { commitTimes.push(performance.now()); store.commit(...a) } } as unknown as Store
    // A pacing far longer than a turn, so that a slow machine does not split the batch.
    const COMMIT_EVERY_MS = 100
    const d = startDriver({ clock: fakeClock(), store: timed, state: newState(10_000), leaseCheckMs: 250, send: async () => null, commitEveryMs: COMMIT_EVERY_MS })
    d.post({ kind: 'heartbeat-received', hb: hb('w1') })
    await d.persisted()
    expect(commits).toHaveLength(1)
    // Three more workers, one per turn, right after that commit: one commit for the three.
    const stored: Promise<void>[] = []
    for (const w of ['w2', 'w3', 'w4']) { d.post({ kind: 'heartbeat-received', hb: hb(w) }); stored.push(d.persisted()); await turn() }
    await Promise.all(stored)
    expect(commits.map(c => c.workers)).toEqual([['w1'], ['w2', 'w3', 'w4']])
    expect(commitTimes[1]! - commitTimes[0]!).toBeGreaterThanOrEqual(COMMIT_EVERY_MS)
    // Idle for a while: the next event is written in the very next turn.
    await Bun.sleep(3 * COMMIT_EVERY_MS)
    const before = performance.now()
    d.post({ kind: 'heartbeat-received', hb: hb('w5') })
    await turn()
    expect(commits).toHaveLength(3)
    expect(commitTimes[2]! - before).toBeLessThan(COMMIT_EVERY_MS)
    d.stop()
  })
})
