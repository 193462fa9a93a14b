// The catalog of where output parts live (catalog.ts), through step(): recorded on commit, kept
// exact across a worker lost after committing, told to a worker that returns, kept by the store.
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AttemptId, JobId, WorkerId } from '../../../src/api/ids'
import type { Heartbeat } from '../../../src/api/heartbeat'
import type { JobRequest } from '../../../src/api/jobs'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterAction, type Step } from '../../../src/roles/master/scheduler'
import { newState, type MasterState } from '../../../src/roles/master/state'
import { Store } from '../../../src/roles/master/store'
import { recoverState } from '../../../src/roles/master/recovery'

const W = (id: string) => id as WorkerId
let s: MasterState
const hb = (id: string, disk: string, nowMs: number, incarnation?: string): Step => {
  const h: Heartbeat = { worker_id: id, address: `${id}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 1, disk_id: disk,
    ...(incarnation === undefined ? { incarnation: s.workers.get(W(id))?.incarnation ?? '' } : { incarnation }) }
  return step(s, { kind: 'heartbeat-received', nowMs, hb: h })
}
type Launch = Extract<MasterAction, { kind: 'launch' }>
const ofKind = <K extends MasterAction['kind']>(out: Step, kind: K) => out.actions.filter((a): a is Extract<MasterAction, { kind: K }> => a.kind === kind)

/** Two map splits (one on each disk, or both on both), a write of 2 parts. */
function submit(overwrite = false, everywhere = false): Step {
  const request: JobRequest = { name: 'w', partitions: 2, nodes: [
    { id: 'lines', op: 'read_text', path: 'in' },
    { id: 'kv', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
    { id: 'sum', op: 'reduce_by_key', input: 'kv', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_text', input: 'sum', path: 'out/x', ...(overwrite ? { overwrite: true } : {}) },
  ] }
  const job = buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), defaultPartitions: 2, nowMs: 0,
    listing: { inputs: [{ node_id: 'lines', files: [{ path: 'in/a', size: 10, disks: everywhere ? ['d1', 'd2'] : ['d1'] }, { path: 'in/b', size: 10, disks: everywhere ? ['d1', 'd2'] : ['d2'] }] }] } })
  return step(s, { kind: 'job-submitted', nowMs: 0, job })
}
const report = (attempt: Launch, nowMs: number): Step => {
  const a = attempt.spec
  const write = a.stage.nodes.some(n => n.op === 'write_text')
  return step(s, { kind: 'task-reported', nowMs, report: {
    worker_id: attempt.worker, incarnation: a.incarnation, attempt_id: a.attempt_id, state: 'SUCCEEDED',
    metrics: { records_in: 1, records_out: 1, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
    shuffle_outputs: a.stage.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: [1, 1] })),
    sinks: write ? [{ node_id: 'out', op: 'write_text', records: 5 + a.partition, part: a.partition, bytes: 100 + a.partition }] : [],
  } })
}
const commit = (l: Launch, nowMs: number): void => { step(s, { kind: 'commit-requested', nowMs, attempt: l.spec.attempt_id as AttemptId }) }

describe('the catalog of output parts', () => {
  test('on commit: each part is recorded on the disk of the attempt that committed it; each disk is told what counts there', () => {
    s = newState(10_000)
    hb('w1', 'd1', 0)
    hb('w2', 'd2', 0)
    const maps = ofKind(submit(), 'launch')
    const reduces = [...ofKind(report(maps[0]!, 10), 'launch'), ...ofKind(report(maps[1]!, 20), 'launch')]
    expect(reduces).toHaveLength(2)
    for (const r of reduces) commit(r, 30)
    report(reduces[0]!, 40)
    const asks = ofKind(report(reduces[1]!, 50), 'finalize-output')
    expect(asks).toHaveLength(1)
    const on = (w: string): number[] => reduces.filter(r => r.worker === W(w)).map(r => r.spec.partition)
    expect(asks[0]!.settle).toEqual([{ path: 'out/x', dir: 'out/x', keep: on(asks[0]!.worker).map(p => `part-0000${p}`), success: { parts: on(asks[0]!.worker), total: 2 } }])
    const next = ofKind(step(s, { kind: 'output-finalized', nowMs: 60, job: 'j1' as JobId, worker: asks[0]!.worker, incarnation: asks[0]!.incarnation }), 'finalize-output')
    const done = step(s, { kind: 'output-finalized', nowMs: 70, job: 'j1' as JobId, worker: next[0]!.worker, incarnation: next[0]!.incarnation })
    expect(done.changes.filter(c => c.kind === 'output')).toHaveLength(1)
    const o = s.outputs.get('out/x')!
    expect(o.parts.map(p => [p.part, p.file, p.bytes, p.records, p.copies.map(c => c.disk)]))
      .toEqual(reduces.map(r => r.spec.partition).sort().map(p => [p, `out/x/part-0000${p}`, 100 + p, 5 + p, [reduces.find(r => r.spec.partition === p)!.worker === W('w1') ? 'd1' : 'd2']]))
  })

  test('a worker lost after committing: its part is written again on a live disk; back, it is told its copy does not count', () => {
    s = newState(1_000)
    hb('w1', 'd1', 0)
    hb('w2', 'd2', 0)
    const maps = ofKind(submit(false, true), 'launch')
    const reduces = [...ofKind(report(maps[0]!, 10), 'launch'), ...ofKind(report(maps[1]!, 20), 'launch')]
    const onW1 = reduces.find(r => r.worker === W('w1'))!
    const onW2 = reduces.find(r => r.worker === W('w2'))!
    commit(onW1, 30)
    report(onW1, 40)                                   // w1's part is committed on d1
    hb('w2', 'd2', 900)
    const lost = step(s, { kind: 'lease-check-due', nowMs: 1_200 })  // w1 lost: its part runs again (and its map output)
    const launchedSpecs = new Map(ofKind(lost, 'launch').map(l => [l.spec.attempt_id, l.spec]))
    for (const r of reduces) launchedSpecs.set(r.spec.attempt_id, r.spec)
    expect(s.workers.get(W('w1'))!.status).toBe('DEAD')
    const task = s.jobs.get('j1' as JobId)!.stages[1]!.tasks[onW1.spec.partition]!
    expect(task.state).not.toBe('SUCCEEDED')
    expect(task.home).toBeUndefined()
    // Drive the job to its end on w2 alone.
    commit(onW2, 1_210)
    // Every launch and finalize request is answered, in order, until the job ends.
    const todo: MasterAction[] = [...report(onW2, 1_220).actions, ...s.jobs.get('j1' as JobId)!.stages.flatMap(() => [])]
    for (const w of s.workers.values()) for (const id of w.running) todo.push({ kind: 'launch', worker: w.id, address: w.address, spec: { attempt_id: id } as never })
    for (let i = 0; i < 50 && todo.length > 0 && s.jobs.get('j1' as JobId)?.state === 'RUNNING'; i++) {
      const a = todo.shift()!
      const nowMs = 1_300 + i
      if (a.kind === 'launch') {
        const spec = a.spec.stage === undefined ? launchedSpecs.get(a.spec.attempt_id)! : a.spec
        if (spec.stage.nodes.some(n => n.op === 'write_text')) commit({ ...a, spec }, nowMs)
        todo.push(...report({ ...a, spec }, nowMs).actions)
      } else if (a.kind === 'finalize-output') {
        todo.push(...step(s, { kind: 'output-finalized', nowMs, job: 'j1' as JobId, worker: a.worker, incarnation: a.incarnation }).actions)
      }
    }
    const o = s.outputs.get('out/x')!
    expect(o.parts.map(p => p.copies.map(c => c.disk))).toEqual([['d2'], ['d2']])
    // w1 comes back: before any task, it settles the output (its copy is a stray there).
    const back = hb('w1', 'd1', 2_000, '')
    const clears = ofKind(back, 'clear-stale-outputs')
    expect(clears.map(c => c.settle)).toEqual([[{ path: 'out/x', dir: 'out/x', keep: [], job_id: 'j1' }]])
    expect(ofKind(back, 'launch')).toEqual([])
  })

  test('an overwrite settles where the job committed (its staged folder), before the swap', () => {
    s = newState(10_000)
    hb('w1', 'd1', 0)
    hb('w2', 'd2', 0)
    const maps = ofKind(submit(true), 'launch')
    const reduces = [...ofKind(report(maps[0]!, 10), 'launch'), ...ofKind(report(maps[1]!, 20), 'launch')]
    for (const r of reduces) commit(r, 30)
    report(reduces[0]!, 40)
    const ask = ofKind(report(reduces[1]!, 50), 'finalize-output')[0]!
    expect(ask.settle[0]!.dir).toBe('out/x/_temporary/j1')
    expect(ask.swaps.map(w => w.staged)).toEqual(['out/x/_temporary/j1'])
  })

  test('the store keeps the catalog and each worker\'s disk across a master restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-catalog-'))
    afterAll(() => rmSync(dir, { recursive: true, force: true }))
    const store = new Store(join(dir, 'm.db'))
    s = newState(10_000)
    hb('w1', 'd1', 0)
    const record = { path: 'out/x', job: 'j1' as JobId, atMs: 5, replicas: 2, parts: [{ part: 0, file: 'out/x/part-00000', bytes: 3, records: 1, copies: [{ disk: 'd1', worker: W('w1') }, { disk: 'd2', worker: W('w2') }] }] }
    store.commit([], [], [], [s.workers.get(W('w1'))!], [], undefined, [record])
    store.close()
    const again = new Store(join(dir, 'm.db'))
    const r = recoverState(again, 100, 10_000)
    again.close()
    expect(r.outputs.get('out/x')).toEqual(record)
    expect(r.workers.get(W('w1'))!.disk).toBe('d1')
  })
})
