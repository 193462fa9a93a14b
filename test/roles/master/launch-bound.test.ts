// A step launches at most MAX_LAUNCHES_PER_STEP tasks; the driver goes on in later turns
// (schedule-due), so a burst of launches never holds the master's event loop in one turn.
import { describe, expect, test } from 'bun:test'
import type { JobId } from '../../../src/api/ids'
import type { JobRequest } from '../../../src/api/jobs'
import type { ListAnswer } from '../../../src/api/tasks'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterAction } from '../../../src/roles/master/scheduler'
import { MAX_LAUNCHES_PER_STEP } from '../../../src/roles/master/events'
import { startDriver } from '../../../src/roles/master/driver'
import { newState, type MasterState } from '../../../src/roles/master/state'
import type { Store } from '../../../src/roles/master/store'

const WORKERS = 600
function job(tasks: number) {
  const request: JobRequest = { name: 'burst', nodes: [{ id: 'lines', op: 'read_text', path: 'in/*.txt' }, { id: 'n', op: 'count', input: 'lines' }] }
  const listing: ListAnswer = { inputs: [{ node_id: 'lines', files: Array.from({ length: tasks }, (_, i) => ({ path: `in/p-${i}.txt`, size: 10 })) }], errors: [] }
  return buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), listing, defaultPartitions: 2, nowMs: 0 })
}
const beat = (s: MasterState, i: number) => step(s, { kind: 'heartbeat-received', nowMs: 0, hb: { worker_id: `w${i}`, address: `w${i}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 1, incarnation: '' } })

describe('launches per step', () => {
  test('a stage starting on 600 free slots: 256 launches a step, the rest in schedule-due steps, every slot filled once', () => {
    const s = newState(10_000)
    for (let i = 0; i < WORKERS; i++) beat(s, i)
    const counts: number[] = []
    let out = step(s, { kind: 'job-submitted', nowMs: 0, job: job(1000) })
    const launched: string[] = []
    for (;;) {
      const l = out.actions.filter(a => a.kind === 'launch') as Extract<MasterAction, { kind: 'launch' }>[]
      counts.push(l.length)
      launched.push(...l.map(x => x.worker))
      if (s.scheduleMore !== true) break
      out = step(s, { kind: 'schedule-due', nowMs: 1 })
    }
    expect(counts).toEqual([MAX_LAUNCHES_PER_STEP, MAX_LAUNCHES_PER_STEP, WORKERS - 2 * MAX_LAUNCHES_PER_STEP])
    expect(new Set(launched).size).toBe(WORKERS)
  })

  test('the driver goes on by itself in later turns, answering what comes between', async () => {
    const store = { commit() {} } as unknown as Store
    const sent: string[] = []
    const d = startDriver({ clock: { now: () => 0, every: () => {}, cancelAll: () => {} }, store, state: newState(10_000), leaseCheckMs: 250,
      send: async a => { if (a.kind === 'launch') sent.push(a.worker); return null } })
    for (let i = 0; i < WORKERS; i++) d.post({ kind: 'heartbeat-received', hb: { worker_id: `w${i}`, address: `w${i}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 1, incarnation: '' } })
    d.post({ kind: 'job-submitted', job: job(1000) })
    expect(d.state.attempts.size).toBe(MAX_LAUNCHES_PER_STEP)
    for (let i = 0; i < 20 && sent.length < WORKERS; i++) await Bun.sleep(5)
    expect(sent.length).toBe(WORKERS)
    expect(d.state.scheduleMore).toBe(false)
    d.stop()
  })
})
