// Inputs where they are (CONTRACT section 6): the listings of every disk merged, each split placed
// on a holder of its file, and the catalog's parts read where their committed copies are. Pure.
import { describe, expect, test } from 'bun:test'
import type { JobId, WorkerId } from '../../../src/api/ids'
import type { Heartbeat } from '../../../src/api/heartbeat'
import type { JobRequest } from '../../../src/api/jobs'
import type { ListAnswer } from '../../../src/api/tasks'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { mergeListings, type DiskListing } from '../../../src/roles/master/inputs'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterAction, type Step } from '../../../src/roles/master/scheduler'
import { newState, type MasterState } from '../../../src/roles/master/state'
import { trackedParts, type OutputRecord } from '../../../src/roles/master/catalog'
import { unavailableAfterMs } from '../../../src/roles/master/placement'

const W = (id: string) => id as WorkerId
const listing = (disk: string, workers: string[], files: [string, number][], errors: ListAnswer['errors'] = []): DiskListing =>
  ({ disk, workers: workers.map(W), answer: { inputs: files.length === 0 && errors.length > 0 ? [] : [{ node_id: 'lines', files: files.map(([path, size]) => ({ path, size })) }], errors } })
const INPUTS = [{ node_id: 'lines', path: 'logs/*.log' }]
const notFound = { node_id: 'lines', code: 'INPUT_NOT_FOUND', message: 'node "lines": input "logs/*.log" matches no file' }

describe('merging the listings of every disk', () => {
  test('disjoint files: each is held by the disk that listed it, in name order across disks', () => {
    const got = mergeListings([listing('d1', ['w1'], [['logs/b.log', 10], ['logs/d.log', 5]]), listing('d2', ['w2'], [['logs/a.log', 7], ['logs/c.log', 3]])], INPUTS)
    expect(got).toEqual([{ node_id: 'lines', files: [
      { path: 'logs/a.log', size: 7, disks: ['d2'] }, { path: 'logs/b.log', size: 10, disks: ['d1'] },
      { path: 'logs/c.log', size: 3, disks: ['d2'] }, { path: 'logs/d.log', size: 5, disks: ['d1'] },
    ] }])
  })

  test('same path and size on two disks: replicas, held by both', () => {
    const got = mergeListings([listing('d1', ['w1'], [['logs/a.log', 7]]), listing('d2', ['w2'], [['logs/a.log', 7]])], INPUTS)
    expect(got[0]!.files).toEqual([{ path: 'logs/a.log', size: 7, disks: ['d1', 'd2'] }])
  })

  test('same path, different sizes: INPUT_CONFLICT naming the file and both workers', () => {
    let err: { code?: string; message?: string } = {}
    try { mergeListings([listing('d1', ['w1'], [['logs/a.log', 7]]), listing('d2', ['w2', 'w3'], [['logs/a.log', 9]])], INPUTS) } catch (e) { err = e as typeof err }
    expect(err.code).toBe('INPUT_CONFLICT')
    expect(err.message).toContain('logs/a.log')
    expect(err.message).toContain('w1')
    expect(err.message).toContain('w2')
  })

  test('a glob that matches on one disk only is fine; on none it is INPUT_NOT_FOUND saying so', () => {
    const got = mergeListings([listing('d1', ['w1'], [], [notFound]), listing('d2', ['w2'], [['logs/a.log', 7]])], INPUTS)
    expect(got[0]!.files.map(f => f.path)).toEqual(['logs/a.log'])
    let err: { code?: string; message?: string } = {}
    try { mergeListings([listing('d1', ['w1'], [], [notFound]), listing('d2', ['w2'], [], [notFound])], INPUTS) } catch (e) { err = e as typeof err }
    expect(err.code).toBe('INPUT_NOT_FOUND')
    expect(err.message).toContain('none of the 2 disks')
  })

  test('any other listing error is the user\'s to fix, whichever disk found it', () => {
    const escape = { node_id: 'lines', code: 'PATH_OUTSIDE_DATA_DIR', message: 'node "lines": a link leaves the data dir' }
    expect(() => mergeListings([listing('d1', ['w1'], [['logs/a.log', 7]]), listing('d2', ['w2'], [], [escape])], INPUTS)).toThrow('a link leaves the data dir')
  })

  test('a tracked output\'s part listed on a disk with no committed copy is a stray, and is not read', () => {
    const tracked = { holders: (f: string) => f.startsWith('out/wc/') ? ['d2'] : undefined, readBy: () => [] }
    const got = mergeListings([listing('d1', ['w1'], [['out/wc/part-00000', 30]]), listing('d2', ['w2'], [['out/wc/part-00000', 30]])],
      [{ node_id: 'lines', path: 'out/wc' }], tracked)
    expect(got[0]!.files).toEqual([{ path: 'out/wc/part-00000', size: 30, disks: ['d2'] }])
  })
})

// ---- placement through step() ----

const hb = (id: string, disk: string, nowMs: number, slots = 2): Step => {
  const h: Heartbeat = { worker_id: id, address: `${id}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots, disk_id: disk }
  return step(s, { kind: 'heartbeat-received', nowMs, hb: h })
}
let s: MasterState
const launched = (out: Step): string[] => out.actions.filter((a): a is Extract<MasterAction, { kind: 'launch' }> => a.kind === 'launch')
  .map(a => `${a.spec.split?.path}@${a.worker}`)

function submit(files: [string, number, string[]][]): Step {
  const request: JobRequest = { name: 'wc', nodes: [{ id: 'lines', op: 'read_text', path: 'logs' }, { id: 'n', op: 'count', input: 'lines' }] }
  const job = buildJobRun({
    id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), defaultPartitions: 2, nowMs: 0,
    listing: { inputs: [{ node_id: 'lines', files: files.map(([path, size, disks]) => ({ path, size, disks })) }] },
  })
  return step(s, { kind: 'job-submitted', nowMs: 0, job })
}

describe('placing splits on the disks that hold them', () => {
  test('disjoint: each split runs on its holder only, even when another worker is idle', () => {
    s = newState(10_000)
    hb('w1', 'd1', 0)
    hb('w2', 'd2', 0)
    const out = submit([['logs/a', 1, ['d1']], ['logs/b', 1, ['d1']], ['logs/c', 1, ['d1']], ['logs/d', 1, ['d2']]])
    expect(launched(out).sort()).toEqual(['logs/a@w1', 'logs/b@w1', 'logs/d@w2'])
    // w2 has a free slot, yet logs/c waits for w1
    expect(s.workers.get(W('w2'))!.running.size).toBe(1)
  })

  test('replicated: round-robin among the holders', () => {
    s = newState(10_000)
    hb('w1', 'd1', 0, 1)
    hb('w2', 'd2', 0, 1)
    hb('w3', 'd3', 0, 1)
    const out = submit([['logs/a', 1, ['d1', 'd2']], ['logs/b', 1, ['d1', 'd2']], ['logs/c', 1, ['d1', 'd2']]])
    expect(launched(out).map(l => l.split('@')[1]).sort()).toEqual(['w1', 'w2'])   // never w3
  })

  test('a shared volume: every worker holds every file', () => {
    s = newState(10_000)
    hb('w1', 'shared', 0, 1)
    hb('w2', 'shared', 0, 1)
    const out = submit([['logs/a', 1, ['shared']], ['logs/b', 1, ['shared']]])
    expect(launched(out).map(l => l.split('@')[1]).sort()).toEqual(['w1', 'w2'])
  })

  test('all holders DEAD: the split waits for a bound, then the job fails with INPUT_UNAVAILABLE naming file and holder', () => {
    s = newState(1_000)
    hb('w1', 'd1', 0)
    hb('w2', 'd2', 0)
    submit([['logs/a', 1, ['d1']], ['logs/b', 1, ['d2']]])
    hb('w2', 'd2', 900)
    step(s, { kind: 'lease-check-due', nowMs: 1_500 })   // w1 lost: logs/a back to PENDING
    expect(s.workers.get(W('w1'))!.status).toBe('DEAD')
    const job = s.jobs.get('j1' as JobId)!
    expect(job.state).toBe('RUNNING')
    hb('w2', 'd2', 1_800)
    step(s, { kind: 'lease-check-due', nowMs: 1_900 })
    hb('w2', 'd2', 1_500 + unavailableAfterMs(s))
    step(s, { kind: 'lease-check-due', nowMs: 1_500 + unavailableAfterMs(s) - 50 })
    expect(job.state).toBe('RUNNING')                      // still within the bound
    hb('w2', 'd2', 1_600 + unavailableAfterMs(s))
    step(s, { kind: 'lease-check-due', nowMs: 1_700 + unavailableAfterMs(s) })
    expect(job.state).toBe('FAILED')
    expect(job.error?.message).toContain('INPUT_UNAVAILABLE')
    expect(job.error?.message).toContain('logs/a')
    expect(job.error?.message).toContain('w1 (DEAD)')
  })

  test('a holder that returns in time runs the split', () => {
    s = newState(1_000)
    hb('w1', 'd1', 0)
    hb('w2', 'd2', 0)
    submit([['logs/a', 1, ['d1']]])
    hb('w2', 'd2', 900)
    step(s, { kind: 'lease-check-due', nowMs: 1_500 })
    const back = hb('w1', 'd1', 2_000)
    expect(launched(back)).toEqual(['logs/a@w1'])
  })
})

describe('the catalog read by input planning', () => {
  const record = (copies: [string, string][]): OutputRecord => ({
    path: 'out/wc', job: 'j0' as JobId, atMs: 0, replicas: copies.length,
    parts: [{ part: 0, file: 'out/wc/part-00000', bytes: 12, records: 3, copies: copies.map(([disk, worker]) => ({ disk, worker: W(worker) })) }],
  })

  test('a part whose every holder is away is still planned (its task waits); one with a live holder comes from the listing', () => {
    s = newState(10_000)
    hb('w2', 'd2', 0)
    s.outputs.set('out/wc', record([['d1', 'w1']]))
    expect(trackedParts(s).readBy('out/wc')).toEqual([{ path: 'out/wc/part-00000', size: 12, disks: ['d1'] }])
    expect(trackedParts(s).readBy('out/*/part-*')).toHaveLength(1)
    expect(trackedParts(s).readBy('other')).toEqual([])
    s.outputs.set('out/wc', record([['d1', 'w1'], ['d2', 'w2']]))
    expect(trackedParts(s).readBy('out/wc')).toEqual([])
    expect(trackedParts(s).holders('out/wc/part-00000')).toEqual(['d1', 'd2'])
    expect(trackedParts(s).holders('out/wc/part-00007')).toEqual([])        // not a part of it: a stray
    expect(trackedParts(s).holders('out/wc/notes.txt')).toBeUndefined()    // not a part file
  })
})
