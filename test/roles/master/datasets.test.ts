// Persisted datasets in the master's catalog (catalog.ts), through step() with a fake clock: a
// persisting job records where each block is; a reading job runs each task on its block's holder;
// a worker's heartbeat that no longer lists a block marks it lost (not within the grace after it
// was recorded), and a job reading it fails at once naming the dataset and partition; owners the
// catalog does not know are dropped unless a running job is producing them; names are checked at
// submit; the store keeps the catalog.
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobId, WorkerId } from '../../../src/api/ids'
import type { Heartbeat } from '../../../src/api/heartbeat'
import type { JobRequest } from '../../../src/api/jobs'
import { datasetOwner } from '../../../src/api/datasets'
import { ApiError } from '../../../src/api/errors'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { HELD_GRACE_MS } from '../../../src/roles/master/catalog'
import { buildJobRun } from '../../../src/roles/master/planning'
import { step, type MasterAction, type Step } from '../../../src/roles/master/scheduler'
import { newState, type MasterState } from '../../../src/roles/master/state'
import { Store } from '../../../src/roles/master/store'
import { recoverState } from '../../../src/roles/master/recovery'

const W = (id: string) => id as WorkerId
let s: MasterState
type Held = NonNullable<Heartbeat['datasets']>
const hb = (id: string, nowMs: number, datasets?: Held): Step => {
  const h: Heartbeat = { worker_id: id, address: `${id}:1`, status: 'IDLE', active_tasks: 0, mem_usage_mb: 1, last_heartbeat: 0, slots: 1,
    incarnation: s.workers.get(W(id))?.incarnation ?? '', ...(datasets === undefined ? {} : { datasets }) }
  return step(s, { kind: 'heartbeat-received', nowMs, hb: h })
}
type Launch = Extract<MasterAction, { kind: 'launch' }>
const ofKind = <K extends MasterAction['kind']>(out: Step, kind: K) => out.actions.filter((a): a is Extract<MasterAction, { kind: K }> => a.kind === kind)

const persistJob: JobRequest = { nodes: [
  { id: 'lines', op: 'read_text', path: 'in' },
  { id: 'keep', op: 'persist', input: 'lines', name: 'ds', level: 'memory' },
] }
const readJob: JobRequest = { nodes: [{ id: 'r', op: 'read_dataset', name: 'ds' }, { id: 'n', op: 'count', input: 'r' }] }

function build(id: string, request: JobRequest, nowMs: number) {
  return buildJobRun({ id: id as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), defaultPartitions: 2, nowMs, datasets: s.datasets,
    listing: { inputs: [{ node_id: 'lines', files: [{ path: 'in/a', size: 10 }, { path: 'in/b', size: 10 }] }] } })
}
const submit = (id: string, request: JobRequest, nowMs: number): Step => step(s, { kind: 'job-submitted', nowMs, job: build(id, request, nowMs) })
const report = (l: Launch, nowMs: number): Step => {
  const a = l.spec
  const persist = a.stage.shuffle_writes.find(w => w.persist !== undefined)
  return step(s, { kind: 'task-reported', nowMs, report: {
    worker_id: l.worker, incarnation: a.incarnation, attempt_id: a.attempt_id, state: 'SUCCEEDED',
    metrics: { records_in: 1, records_out: 1, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
    shuffle_outputs: a.stage.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: [100 + a.partition] })),
    sinks: persist === undefined ? [] : [{ node_id: 'keep', op: 'persist', records: 10 + a.partition, bytes: 100 + a.partition, kept: a.partition === 0 ? 'memory' : 'disk' }],
  } })
}

/** Two workers; job j1 persists "ds" (2 partitions, one on each worker) at time 100. */
function persisted(): Launch[] {
  s = newState(10_000)
  hb('w1', 0)
  hb('w2', 0)
  const maps = ofKind(submit('j1', persistJob, 0), 'launch')
  expect(maps).toHaveLength(2)
  report(maps[0]!, 50)
  const done = report(maps[1]!, 100)
  expect(s.jobs.get('j1' as JobId)?.state ?? 'gone').toBe('SUCCEEDED')
  expect(done.changes.filter(c => c.kind === 'dataset')).toHaveLength(1)
  return maps
}

describe('persisted datasets in the catalog', () => {
  test('a persisting job records each block: holder, incarnation, where, bytes, records; its end does not drop them', () => {
    const maps = persisted()
    const d = s.datasets.get('ds')!
    expect(d).toMatchObject({ name: 'ds', job: 'j1', owner: datasetOwner('j1', 'ds'), level: 'memory', atMs: 100 })
    expect(d.blocks.map(b => [b.partition, b.worker, b.attempt, b.where, b.bytes, b.records])).toEqual(
      maps.map(m => [m.spec.partition, m.worker, m.spec.attempt_id, m.spec.partition === 0 ? 'memory' : 'disk', 100 + m.spec.partition, 10 + m.spec.partition]))
    expect(d.blocks.every(b => b.incarnation === s.workers.get(b.worker)!.incarnation)).toBe(true)
  })

  test('a reading job: one task per block, each launched on its holder, fetching it under the dataset\'s owner', () => {
    const maps = persisted()
    const reads = ofKind(submit('j2', readJob, 200), 'launch')
    expect(reads).toHaveLength(2)
    for (const r of reads) {
      expect(r.worker).toBe(maps[r.spec.partition]!.worker)
      expect(r.spec.stage.root.kind === 'cached' && r.spec.stage.root.dataset?.owner).toBe(datasetOwner('j1', 'ds'))
      // Each spec carries its own block only, not every block of the dataset.
      expect(r.spec.stage.root.kind === 'cached' && r.spec.stage.root.dataset?.blocks).toEqual([])
      expect(r.spec.shuffle_inputs[0]!.map_outputs).toEqual([{ map_partition: r.spec.partition, attempt_id: maps[r.spec.partition]!.spec.attempt_id,
        worker_id: r.worker, address: `${r.worker}:1`, bytes: 100 + r.spec.partition }])
    }
  })

  test('a block missing from its holder\'s heartbeat is lost (not within the grace); a reading job recomputes only that partition from its lineage and reads it', () => {
    const maps = persisted()
    const holder0 = maps[0]!.worker
    const owner = datasetOwner('j1', 'ds')
    const held1 = [{ owner, attempt: maps[1]!.spec.attempt_id, where: 'disk' as const }]
    // Within the grace: a heartbeat that left before the block was registered changes nothing.
    hb(holder0, 100 + HELD_GRACE_MS - 1, holder0 === maps[1]!.worker ? held1 : [])
    expect(s.datasets.get('ds')!.blocks.some(b => b.lost === true)).toBe(false)
    const later = 100 + HELD_GRACE_MS + 10
    const out = hb(holder0, later, holder0 === maps[1]!.worker ? held1 : [])
    expect(out.changes.filter(c => c.kind === 'dataset')).toHaveLength(1)
    expect(s.datasets.get('ds')!.blocks.map(b => b.lost === true)).toEqual([true, false])
    const sub = submit('j3', readJob, later + 1)
    const job = s.jobs.get('j3' as JobId)!
    expect(job.state).toBe('RUNNING')
    const launched = ofKind(sub, 'launch')
    // Partition 0 is recomputed from split 0 of the lineage only, kept under the dataset's owner,
    // with none of the persisting job's other sinks; the reading stage waits for it.
    expect(launched).toHaveLength(1)
    const recompute = launched[0]!
    expect(recompute.spec.stage.shuffle_writes.map(w => [w.persist, w.owner])).toEqual([['ds', owner]])
    expect(recompute.spec.split).toMatchObject({ path: 'in/a' })
    expect(recompute.spec.stage.sinks).toEqual([])
    expect(job.stages.map(st => st.tasks.map(t => t.state))).toEqual([['PENDING', 'PENDING'], ['RUNNING', 'SUCCEEDED']])
    // Once recomputed, the block is the dataset's partition 0 again, and read where it now is.
    const after = report(recompute, later + 50)
    const b0 = s.datasets.get('ds')!.blocks[0]!
    expect(b0).toMatchObject({ partition: 0, attempt: recompute.spec.attempt_id, worker: recompute.worker, bytes: 100, records: 10, recomputedMs: later + 50 })
    expect(b0.lost).toBeUndefined()
    expect(after.changes.some(c => c.kind === 'dataset' && c.name === 'ds')).toBe(true)
    // A heartbeat that left its worker before the new block was registered there does not lose it.
    hb(recompute.worker, later + 60, recompute.worker === maps[1]!.worker ? held1 : [])
    expect(s.datasets.get('ds')!.blocks[0]!.lost).toBeUndefined()
    const reads = ofKind(after, 'launch')
    expect(reads.map(r => [r.spec.partition, r.worker]).sort()).toEqual([[0, recompute.worker], [1, maps[1]!.worker]])
    expect(reads.find(r => r.spec.partition === 0)!.spec.shuffle_inputs[0]!.map_outputs).toEqual([{ map_partition: 0, attempt_id: recompute.spec.attempt_id, worker_id: recompute.worker, address: `${recompute.worker}:1`, bytes: 100 }])
    report(reads[0]!, later + 60)
    report(reads[1]!, later + 70)
    expect(job.state).toBe('SUCCEEDED')
    // A later job reads it whole, with nothing to recompute.
    const next = ofKind(submit('j4', readJob, later + 100), 'launch')
    expect(next.map(l => [l.spec.partition, l.spec.stage.root.kind])).toEqual([[0, 'cached'], [1, 'cached']])
  })

  test('lost partitions of a union (a split and a reduce partition): the map stage runs whole for its map output, but only lost partitions keep a block', () => {
    s = newState(10_000)
    hb('w1', 0)
    hb('w2', 0)
    const unionJob: JobRequest = { partitions: 2, nodes: [
      { id: 'lines', op: 'read_text', path: 'in' },
      { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'both', op: 'union', inputs: ['pairs', 'counts'] },
      { id: 'keep', op: 'persist', input: 'both', name: 'ds' },
    ] }
    const reportAll = (ls: Launch[], nowMs: number): Launch[] => ls.flatMap(l => ofKind(step(s, { kind: 'task-reported', nowMs, report: {
      worker_id: l.worker, incarnation: l.spec.incarnation, attempt_id: l.spec.attempt_id, state: 'SUCCEEDED',
      metrics: { records_in: 1, records_out: 1, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
      shuffle_outputs: l.spec.stage.shuffle_writes.map(w => ({ shuffle_id: w.shuffle_id, sizes: Array.from({ length: w.partitions }, () => 10) })),
      sinks: l.spec.stage.shuffle_writes.some(w => w.persist !== undefined) ? [{ node_id: 'keep', op: 'persist', records: 1, bytes: 10, kept: 'memory' }] : [],
    } }), 'launch'))
    let launched = ofKind(submit('j1', unionJob, 0), 'launch')
    for (let t = 10; launched.length > 0; t += 10) launched = reportAll(launched, t)
    expect(s.jobs.get('j1' as JobId)?.state).toBe('SUCCEEDED')
    const d = s.datasets.get('ds')!
    expect(d.blocks).toHaveLength(4)
    // Partitions 1 (split 1) and 2 (reduce partition 0) are dropped by their holders.
    const later = 100 + HELD_GRACE_MS + 10
    for (const w of ['w1', 'w2']) hb(w, later, d.blocks.filter(b => b.worker === w && b.partition !== 1 && b.partition !== 2).map(b => ({ owner: d.owner, attempt: b.attempt, where: 'memory' as const })))
    expect(s.datasets.get('ds')!.blocks.map(b => b.lost === true)).toEqual([false, true, true, false])
    const seen: Launch[] = []
    launched = ofKind(submit('j2', readJob, later + 1), 'launch')
    for (let t = later + 10; launched.length > 0; t += 10) { seen.push(...launched); launched = reportAll(launched, t) }
    expect(s.jobs.get('j2' as JobId)?.state).toBe('SUCCEEDED')
    // Both map tasks ran (the lost reduce partition needs every map output); only split 1's kept a
    // block (partition 0 is still held where it was); the reduce task of the lost partition did.
    const recomputes = seen.filter(l => l.spec.stage.root.kind !== 'cached')
    expect(recomputes.map(l => l.spec.stage.root.kind).sort()).toEqual(['shuffle', 'source', 'source'])
    const keeps = (l: Launch) => l.spec.stage.shuffle_writes.some(w => w.persist !== undefined)
    expect(recomputes.filter(l => l.spec.stage.root.kind === 'source').map(l => [l.spec.partition, keeps(l)]).sort()).toEqual([[0, false], [1, true]])
    expect(recomputes.find(l => l.spec.stage.root.kind === 'shuffle')!.spec.stage.shuffle_writes.map(w => [w.persist, w.owner])).toEqual([['ds', d.owner]])
  })

  test('a holder lost (lease expired): the reading job recomputes the partition it held on the live worker', () => {
    const maps = persisted()
    step(s, { kind: 'lease-check-due', nowMs: 100 })
    const live = maps[1]!.worker
    hb(live, 20_000)
    step(s, { kind: 'lease-check-due', nowMs: 20_001 })
    expect(s.workers.get(maps[0]!.worker)!.status).toBe('DEAD')
    const launched = ofKind(submit('j3', readJob, 20_002), 'launch')
    expect(s.jobs.get('j3' as JobId)!.state).toBe('RUNNING')
    const all = [...launched]
    for (let t = 20_010, i = 0; i < all.length && i < 10; i++, t += 10) all.push(...ofKind(report(all[i]!, t), 'launch'))
    expect(all.filter(l => l.spec.stage.shuffle_writes.some(w => w.persist === 'ds')).map(l => [l.spec.partition, l.worker])).toEqual([[maps[0]!.spec.partition, live]])
    expect(all.every(l => l.worker === live)).toBe(true)
    expect(s.jobs.get('j3' as JobId)!.state).toBe('SUCCEEDED')
    expect(s.jobs.get('j3' as JobId)!.result).toEqual({ sinks: { n: { op: 'count', value: 0 } } })
  })

  test('a holder lost while the reading job reads it: the partition is recomputed, and the job goes on', () => {
    const maps = persisted()
    const reads = ofKind(submit('j3', readJob, 200), 'launch')
    expect(reads).toHaveLength(2)
    const victim = maps[0]!.worker
    const live = maps[1]!.worker
    hb(live, 9_000)
    const readLive = reads.find(r => r.worker === live)!
    report(readLive, 9_100)
    const out = step(s, { kind: 'worker-unreachable', nowMs: 9_200, worker: victim, incarnation: s.workers.get(victim)!.incarnation })
    const recompute = ofKind(out, 'launch')
    expect(recompute.map(l => [l.spec.partition, l.worker, l.spec.stage.shuffle_writes[0]?.owner])).toEqual([[maps[0]!.spec.partition, live, datasetOwner('j1', 'ds')]])
    const read = ofKind(report(recompute[0]!, 9_300), 'launch')
    expect(read.map(l => [l.spec.partition, l.worker, l.spec.stage.root.kind])).toEqual([[maps[0]!.spec.partition, live, 'cached']])
    report(read[0]!, 9_400)
    expect(s.jobs.get('j3' as JobId)!.state).toBe('SUCCEEDED')
  })

  test('two jobs reading a lost partition at once: it is recomputed once, and both read that block', () => {
    const maps = persisted()
    const victim = maps[0]!.worker
    step(s, { kind: 'worker-unreachable', nowMs: 200, worker: victim, incarnation: s.workers.get(victim)!.incarnation })
    const first = ofKind(submit('j3', readJob, 300), 'launch')
    const second = ofKind(submit('j4', readJob, 301), 'launch')
    expect(first.map(l => l.spec.stage.shuffle_writes[0]?.persist)).toEqual(['ds'])
    expect(second.filter(l => l.spec.stage.shuffle_writes.length > 0)).toHaveLength(0)
    expect(s.jobs.get('j4' as JobId)!.stages).toHaveLength(1)
    const all = [...first, ...second]
    for (let i = 0, t = 400; i < all.length && i < 20; i++, t += 10) all.push(...ofKind(report(all[i]!, t), 'launch'))
    expect(all.filter(l => l.spec.stage.shuffle_writes.some(w => w.persist === 'ds'))).toHaveLength(1)
    for (const id of ['j3', 'j4']) expect(s.jobs.get(id as JobId)!.state).toBe('SUCCEEDED')
    const reads0 = all.filter(l => l.spec.stage.root.kind === 'cached' && l.spec.partition === maps[0]!.spec.partition)
    expect(reads0).toHaveLength(2)
    for (const r of reads0) expect(r.spec.shuffle_inputs[0]!.map_outputs[0]!.attempt_id).toBe(first[0]!.spec.attempt_id)
  })

  test('a dataset computed from another, both lost with their holder: recomputing it recomputes the other first', () => {
    const maps = persisted()
    const derive: JobRequest = { nodes: [{ id: 'r', op: 'read_dataset', name: 'ds' }, { id: 'm', op: 'map', input: 'r', fn: 'x => x' }, { id: 'keep', op: 'persist', input: 'm', name: 'ds2' }] }
    const mid = ofKind(submit('j2', derive, 200), 'launch')
    expect(mid.map(l => l.worker)).toEqual(mid.map(l => maps[l.spec.partition]!.worker))
    for (const l of mid) report(l, 300)
    expect(s.datasets.get('ds2')!.lineage!.datasets).toEqual([{ name: 'ds', owner: datasetOwner('j1', 'ds') }])
    const victim = maps[0]!.worker
    step(s, { kind: 'worker-unreachable', nowMs: 400, worker: victim, incarnation: s.workers.get(victim)!.incarnation })
    const read2: JobRequest = { nodes: [{ id: 'r', op: 'read_dataset', name: 'ds2' }, { id: 'n', op: 'count', input: 'r' }] }
    const all = ofKind(submit('j3', read2, 500), 'launch')
    for (let i = 0, t = 600; i < all.length && i < 20; i++, t += 10) all.push(...ofKind(report(all[i]!, t), 'launch'))
    const job = s.jobs.get('j3' as JobId)!
    expect(job.state).toBe('SUCCEEDED')
    // ds partition 0 from its file, then ds2 partition 0 from it, then the read: in that order.
    const kinds = all.map(l => l.spec.stage.root.kind === 'source' ? 'file' : l.spec.stage.shuffle_writes.some(w => w.persist === 'ds2') ? 'ds2' : 'read')
    expect(kinds.slice(0, 2)).toEqual(['file', 'ds2'])
    expect(all.filter(l => l.spec.stage.shuffle_writes.some(w => w.persist !== undefined)).map(l => [l.spec.partition, l.spec.stage.shuffle_writes[0]!.owner]))
      .toEqual([[0, datasetOwner('j1', 'ds')], [0, datasetOwner('j2', 'ds2')]])
    expect(job.stages.map(st => st.lineage?.dataset)).toEqual([undefined, 'ds2', 'ds'])
    for (const name of ['ds', 'ds2']) expect(s.datasets.get(name)!.blocks.every(b => b.worker !== victim)).toBe(true)
  })

  test('a master restarted while a job recomputes goes on with the stages added: their plan, their skipped tasks and the blocks already recomputed are stored', () => {
    s = newState(10_000)
    hb('w1', 0)
    hb('w2', 0)
    // Three splits, two on w1: losing w1 loses two partitions.
    const three = (id: string, request: JobRequest, nowMs: number) => buildJobRun({ id: id as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), defaultPartitions: 2, nowMs, datasets: s.datasets,
      listing: { inputs: [{ node_id: 'lines', files: [{ path: 'in/a', size: 10 }, { path: 'in/b', size: 10 }, { path: 'in/c', size: 10 }] }] } })
    const maps: Launch[] = []
    const j1 = three('j1', persistJob, 0)
    maps.push(...ofKind(step(s, { kind: 'job-submitted', nowMs: 0, job: j1 }), 'launch'))
    for (let i = 0; i < maps.length && i < 5; i++) maps.push(...ofKind(report(maps[i]!, 50 + i), 'launch'))
    expect(s.jobs.get('j1' as JobId)?.state ?? 'gone').toBe('SUCCEEDED')
    const blocks = s.datasets.get('ds')!.blocks
    const victim = blocks.filter(b => b.worker === 'w1').length === 2 ? 'w1' : 'w2'
    const lost = blocks.filter(b => b.worker === victim).map(b => b.partition)
    expect(lost).toHaveLength(2)
    step(s, { kind: 'worker-unreachable', nowMs: 200, worker: W(victim), incarnation: s.workers.get(W(victim))!.incarnation })
    const dir = mkdtempSync(join(tmpdir(), 'ms-lineage-'))
    afterAll(() => rmSync(dir, { recursive: true, force: true }))
    const store = new Store(join(dir, 'm.db'))
    const save = (out: Step): void => {
      const created = out.changes.flatMap(c => c.kind === 'job-created' ? [s.jobs.get(c.job)!] : [])
      const attempts = out.changes.flatMap(c => c.kind === 'attempt' ? [c.attempt] : [])
      const datasets = new Map(out.changes.flatMap(c => c.kind === 'dataset' ? [[c.name, c.dataset] as const] : []))
      store.commit(created, [], attempts, [...s.workers.values()], [], undefined, [], new Map(), datasets)
    }
    save({ state: s, actions: [], changes: [{ kind: 'dataset', name: 'ds', dataset: s.datasets.get('ds')! }] })
    const job = build('j3', readJob, 300)
    job.inputProblems = new Map([['elsewhere/x', 'input file "elsewhere/x" is gone (no live worker\'s disk has it)']])
    const first = step(s, { kind: 'job-submitted', nowMs: 300, job })
    save(first)
    const recompute = ofKind(first, 'launch')
    // One live worker, one slot: one at a time.
    expect(recompute).toHaveLength(1)
    expect(lost).toContain(recompute[0]!.spec.partition)
    // The first recomputed partition is reported and stored; then the master restarts.
    const done = report(recompute[0]!, 400)
    save(done)
    expect(ofKind(done, 'launch').map(l => l.spec.partition)).toEqual(lost.filter(p => p !== recompute[0]!.spec.partition))
    const r = recoverState(store, 500, 10_000)
    const back = r.jobs.get('j3' as JobId)!
    expect(back.stages).toHaveLength(2)
    expect(back.inputProblems).toEqual(job.inputProblems)
    expect(back.stages[1]!.lineage).toMatchObject({ dataset: 'ds', owner: datasetOwner('j1', 'ds'), writes: { base: 0, partitions: lost } })
    expect(back.stages[0]!.plan.depends_on).toEqual([1])
    expect(back.stages[1]!.tasks.map(t => t.state)).toEqual([0, 1, 2].map(p => p === recompute[0]!.spec.partition ? 'SUCCEEDED' : lost.includes(p) ? 'RUNNING' : 'SUCCEEDED'))
    expect(r.datasets.get('ds')!.blocks[recompute[0]!.spec.partition]).toMatchObject({ attempt: recompute[0]!.spec.attempt_id, recomputedMs: 400 })
    // The reading stage reads that block where it was recomputed.
    const root = back.stages[0]!.plan.root
    expect(root.kind === 'cached' && root.dataset?.blocks[recompute[0]!.spec.partition]?.attempt).toBe(recompute[0]!.spec.attempt_id)
    store.close()
  })

  test('without a lineage (persisted by an older version), or with an input changed since: the reading job fails at once naming the dataset', () => {
    let maps = persisted()
    delete s.datasets.get('ds')!.lineage
    step(s, { kind: 'worker-unreachable', nowMs: 200, worker: maps[0]!.worker, incarnation: s.workers.get(maps[0]!.worker)!.incarnation })
    let sub = submit('j3', readJob, 300)
    expect(ofKind(sub, 'launch').filter(l => l.spec.stage.shuffle_writes.length > 0)).toHaveLength(0)
    expect(s.jobs.get('j3' as JobId)!.error!.message).toContain(`dataset "ds" lost partition ${maps[0]!.spec.partition} `)

    maps = persisted()
    step(s, { kind: 'worker-unreachable', nowMs: 200, worker: maps[0]!.worker, incarnation: s.workers.get(maps[0]!.worker)!.incarnation })
    const job = build('j4', readJob, 300)
    job.inputProblems = new Map([['in/a', 'input file "in/a" changed since it was persisted (12 bytes now, 10 then)']])
    sub = step(s, { kind: 'job-submitted', nowMs: 300, job })
    expect(job.state).toBe('FAILED')
    expect(job.error!.message).toBe(`DATASET_LOST: dataset "ds" partition ${maps[0]!.spec.partition} cannot be recomputed: input file "in/a" changed since it was persisted (12 bytes now, 10 then): persist it again from its inputs`)
    // A changed file the lost partition does not come from is not in the way.
    maps = persisted()
    step(s, { kind: 'worker-unreachable', nowMs: 200, worker: maps[1]!.worker, incarnation: s.workers.get(maps[1]!.worker)!.incarnation })
    const ok = build('j5', readJob, 300)
    ok.inputProblems = new Map([['in/a', 'input file "in/a" changed since it was persisted (12 bytes now, 10 then)']])
    step(s, { kind: 'job-submitted', nowMs: 300, job: ok })
    expect(ok.state).toBe('RUNNING')
  })

  test('a recompute task that finds its input changed when it reads it fails the job naming the dataset', () => {
    const maps = persisted()
    step(s, { kind: 'worker-unreachable', nowMs: 200, worker: maps[0]!.worker, incarnation: s.workers.get(maps[0]!.worker)!.incarnation })
    const [l] = ofKind(submit('j3', readJob, 300), 'launch')
    expect(l!.spec.stage.shuffle_writes[0]!.owner).toBe(datasetOwner('j1', 'ds'))
    const why = 'INPUT_CHANGED: input file "in/a" of node "lines" is 12 bytes on worker w2, but 10 bytes when the job was planned'
    step(s, { kind: 'task-reported', nowMs: 310, report: {
      worker_id: l!.worker, incarnation: l!.spec.incarnation, attempt_id: l!.spec.attempt_id, state: 'FAILED',
      metrics: { records_in: 0, records_out: 0, shuffle_bytes_written: 0, shuffle_bytes_read: 0, spilled_bytes: 0 },
      shuffle_outputs: [], sinks: [], failure: { reason: 'fatal', message: why, node_id: 'lines' },
    } })
    const job = s.jobs.get('j3' as JobId)!
    expect(job.state).toBe('FAILED')
    expect(job.error!.message).toBe(`DATASET_LOST: dataset "ds" partition ${maps[0]!.spec.partition} cannot be recomputed: ${why}: persist it again from its inputs`)
  })

  test('owners the catalog does not know are dropped, unless a running job is producing them; a where change is recorded', () => {
    const maps = persisted()
    const w = maps[1]!.worker
    submit('j9', { nodes: [{ id: 'lines', op: 'read_text', path: 'in' }, { id: 'keep', op: 'persist', input: 'lines', name: 'other' }] }, 200)
    const out = hb(w, 100 + HELD_GRACE_MS + 1, [
      { owner: datasetOwner('j1', 'ds'), attempt: maps[1]!.spec.attempt_id, where: 'memory' },
      { owner: datasetOwner('j0', 'gone'), attempt: 'x', where: 'disk' },
      { owner: datasetOwner('j9', 'other'), attempt: 'y', where: 'disk' },
    ])
    expect(ofKind(out, 'drop-job-data').map(a => a.job as string)).toEqual([datasetOwner('j0', 'gone')])
    expect(s.datasets.get('ds')!.blocks[1]!.where).toBe('memory')
  })

  test('a persisting job that fails leaves nothing: every live worker drops what its persist writes kept', () => {
    s = newState(10_000)
    hb('w1', 0)
    hb('w2', 0)
    const maps = ofKind(submit('j1', persistJob, 0), 'launch')
    report(maps[0]!, 50)
    const out = step(s, { kind: 'job-cancel-requested', nowMs: 60, job: 'j1' as JobId })
    expect(ofKind(out, 'drop-job-data').filter(a => (a.job as string) === datasetOwner('j1', 'ds')).map(a => a.address).sort()).toEqual(['w1:1', 'w2:1'])
    expect(s.datasets.size).toBe(0)
  })

  test('names are checked at submit: unknown read, existing persist without replace, one name twice', () => {
    persisted()
    const code = (id: string, r: JobRequest): string | undefined => { try { build(id, r, 300); return undefined } catch (e) { return e instanceof ApiError ? e.message : String(e) } }
    expect(code('a', { nodes: [{ id: 'r', op: 'read_dataset', name: 'nope' }, { id: 'n', op: 'count', input: 'r' }] })).toContain('dataset "nope"')
    expect(code('b', persistJob)).toContain('"replace": true')
    expect(code('c', { nodes: [persistJob.nodes[0]!, { ...persistJob.nodes[1]!, replace: true }] })).toBeUndefined()
    expect(code('d', { nodes: [persistJob.nodes[0]!, { id: 'k1', op: 'persist', input: 'lines', name: 'x' }, { id: 'k2', op: 'persist', input: 'lines', name: 'x' }] }))
      .toContain('both persist dataset "x"')
    // A name another unfinished job is persisting: refused unless replace.
    const other: JobRequest = { nodes: [persistJob.nodes[0]!, { id: 'k', op: 'persist', input: 'lines', name: 'y' }] }
    const byOther = (id: string, r: JobRequest): string | undefined => {
      try {
        buildJobRun({ id: id as JobId, seq: 1, request: r, valid: validateJob(r, SUPPORTED_OPS), defaultPartitions: 2, nowMs: 300, datasets: s.datasets, persisting: new Map([['y', 'j7']]),
          listing: { inputs: [{ node_id: 'lines', files: [{ path: 'in/a', size: 10 }] }] } })
        return undefined
      } catch (e) { return (e as Error).message }
    }
    expect(byOther('e', other)).toContain('job j7 is persisting now')
    expect(byOther('f', { nodes: [persistJob.nodes[0]!, { id: 'k', op: 'persist', input: 'lines', name: 'y', replace: true }] })).toBeUndefined()
  })

  test('replace: the new dataset takes the name once complete, and the old one is freed on every live worker', () => {
    persisted()
    const maps = ofKind(submit('j5', { nodes: [persistJob.nodes[0]!, { ...persistJob.nodes[1]!, replace: true }] }, 200), 'launch')
    expect(s.datasets.get('ds')!.job as string).toBe('j1')
    report(maps[0]!, 210)
    const done = report(maps[1]!, 220)
    expect(s.datasets.get('ds')!.job as string).toBe('j5')
    expect(ofKind(done, 'drop-job-data').filter(a => a.job === datasetOwner('j1', 'ds')).map(a => a.address).sort()).toEqual(['w1:1', 'w2:1'])
  })

  test('delete: gone from the catalog, freed on every live worker; the store keeps the catalog across a restart', () => {
    persisted()
    const dir = mkdtempSync(join(tmpdir(), 'ms-datasets-'))
    afterAll(() => rmSync(dir, { recursive: true, force: true }))
    const store = new Store(join(dir, 'm.db'))
    store.commit([], [], [], [], [], undefined, [], new Map(), new Map([['ds', s.datasets.get('ds')!]]))
    expect(recoverState(store, 1_000, 10_000).datasets.get('ds')).toEqual(s.datasets.get('ds'))
    const out = step(s, { kind: 'dataset-delete-requested', nowMs: 300, name: 'ds' })
    expect(s.datasets.has('ds')).toBe(false)
    expect(ofKind(out, 'drop-job-data').map(a => a.address).sort()).toEqual(['w1:1', 'w2:1'])
    store.commit([], [], [], [], [], undefined, [], new Map(), new Map([['ds', null]]))
    expect(recoverState(store, 1_000, 10_000).datasets.size).toBe(0)
    store.close()
  })
})
