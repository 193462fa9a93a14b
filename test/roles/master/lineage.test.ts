// The lineage of a persisted dataset (lineage.ts), pure: what is recorded from the stages of the
// job that persisted it, which stages and partitions recompute a set of lost partitions, and when
// an input makes that impossible. No I/O: plans come from buildJobRun with a made-up listing.
import { describe, expect, test } from 'bun:test'
import type { JobId } from '../../../src/api/ids'
import type { JobRequest } from '../../../src/api/jobs'
import { validateJob } from '../../../src/engine/dag'
import { SUPPORTED_OPS } from '../../../src/engine/plan'
import { buildJobRun } from '../../../src/roles/master/planning'
import { inputProblems, lineageFiles, lineageOf, planRecompute, type Lineage, type RecomputeStage } from '../../../src/roles/master/lineage'
import type { DatasetRecord } from '../../../src/roles/master/catalog'

const FILES = [{ path: 'in/a', size: 100 }, { path: 'in/b', size: 200 }, { path: 'in/c', size: 300 }]

function stagesOf(request: JobRequest, datasets = new Map<string, DatasetRecord>()) {
  const job = buildJobRun({ id: 'j1' as JobId, seq: 1, request, valid: validateJob(request, SUPPORTED_OPS), defaultPartitions: 4, nowMs: 0, datasets,
    listing: { inputs: [{ node_id: 'lines', files: FILES.map(f => ({ ...f, disks: [`d-${f.path}`] })) }] } })
  return job.stages.map(st => ({ plan: st.plan, splits: st.splits, ...(st.holders === undefined ? {} : { holders: st.holders }) }))
}

const wordCount = (extra: JobRequest['nodes'] = []): JobRequest => ({
  partitions: 4, params: { p: 1 },
  nodes: [
    { id: 'lines', op: 'read_text', path: 'in' },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'keep', op: 'persist', input: 'counts', name: 'wc' },
    ...extra,
  ],
})

const plan = (lineage: Lineage, lost: number[], problems = new Map<string, string>(), upstream: Parameters<typeof planRecompute>[0]['upstream'] = () => undefined) =>
  planRecompute({ lineage, name: 'wc', owner: 'j1~wc', lost, base: 5, prefix: 'wc~5~', problems, upstream })
const stagesIn = (p: ReturnType<typeof plan>): RecomputeStage[] => {
  if ('error' in p) throw new Error(p.error)
  return p.stages
}

describe('the lineage recorded when a dataset is persisted', () => {
  test('the stages leading to it, trimmed: no other sink of the job runs again; the input files with their sizes; the params', () => {
    const l = lineageOf(stagesOf(wordCount([
      { id: 'n', op: 'count', input: 'counts' },
      { id: 'out', op: 'write_text', input: 'counts', path: 'out' },
      { id: 'lens', op: 'map', input: 'lines', fn: 'l => l.length' },
      { id: 'all', op: 'collect', input: 'lens' },
      { id: 'other', op: 'persist', input: 'words', name: 'words' },
    ])), 'wc', { p: 1 })!
    expect(l.stages).toHaveLength(2)
    const [map, reduce] = l.stages as [Lineage['stages'][number], Lineage['stages'][number]]
    expect(map.plan.nodes.map(n => n.id)).toEqual(['words', 'pairs'])
    expect(map.plan.shuffle_writes.map(w => w.shuffle_id)).toEqual(['counts'])
    expect(map.plan.sinks).toEqual([])
    expect(map.splits.map(s => s.path)).toEqual(['in/a', 'in/b', 'in/c'])
    expect(map.holders).toEqual([['d-in/a'], ['d-in/b'], ['d-in/c']])
    expect(reduce.plan).toMatchObject({ stage_id: 1, depends_on: [0], nodes: [], sinks: [], partitions: 4 })
    expect(reduce.plan.shuffle_writes.map(w => [w.shuffle_id, w.persist])).toEqual([['wc#dataset', 'wc']])
    expect(l.files).toEqual(FILES)
    expect(l.params).toEqual({ p: 1 })
    expect(l.datasets).toEqual([])
    expect(lineageOf(stagesOf(wordCount()), 'nope', {})).toBeUndefined()
  })

  test('a sort before the dataset: its sample stages are left out and the range bounds it used are kept', () => {
    const stages = stagesOf({ partitions: 3, nodes: [
      { id: 'lines', op: 'read_text', path: 'in' },
      { id: 's', op: 'sort', input: 'lines', key: 'l => l' },
      { id: 'keep', op: 'persist', input: 's', name: 'wc' },
    ] })
    expect(stages.some(st => st.plan.sample_of !== undefined)).toBe(true)
    const withBounds = stages.map(st => st.plan.shuffle_writes.some(w => w.node.op === 'sort') ? { ...st, bounds: { s: ['g', 'p'] } } : st)
    const l = lineageOf(withBounds, 'wc', {})!
    expect(l.stages.some(st => st.plan.sample_of !== undefined)).toBe(false)
    expect(l.stages).toHaveLength(2)
    expect(l.stages[0]!.bounds).toEqual({ s: ['g', 'p'] })
    expect(l.stages[1]!.plan.depends_on).toEqual([0])
    // Recomputing a partition uses those bounds, under the renamed shuffle.
    const st = stagesIn(plan(l, [1]))
    expect(st[0]!.bounds).toEqual({ 'wc~5~s': ['g', 'p'] })
  })
})

describe('what recomputes lost partitions', () => {
  const l = lineageOf(stagesOf(wordCount([{ id: 'n', op: 'count', input: 'counts' }])), 'wc', {})!

  test('lost reduce partitions 1 and 3: the map stage in full, and only those tasks of the stage that writes the dataset', () => {
    const p = plan(l, [1, 3])
    expect('error' in p).toBe(false)
    if ('error' in p) return
    const [map, reduce] = p.stages as [RecomputeStage, RecomputeStage]
    expect(p.writers).toEqual([6])
    expect(map.plan).toMatchObject({ stage_id: 5, depends_on: [], partitions: 3 })
    expect(map.skip).toEqual([false, false, false])
    expect(map.writes).toBeUndefined()
    expect(reduce.plan).toMatchObject({ stage_id: 6, depends_on: [5], partitions: 4 })
    expect(reduce.skip).toEqual([true, false, true, false])
    expect(reduce.writes).toEqual({ base: 0, partitions: [1, 3] })
    // Shuffles renamed so as to meet none of the reading job's; the dataset's blocks kept under its owner.
    expect(map.plan.shuffle_writes.map(w => w.shuffle_id)).toEqual(['wc~5~counts'])
    expect(reduce.plan.root).toMatchObject({ kind: 'shuffle', shuffle_ids: ['wc~5~counts'] })
    expect(reduce.plan.shuffle_writes.map(w => [w.shuffle_id, w.persist, w.owner])).toEqual([['wc#dataset', 'wc', 'j1~wc']])
    // The recorded lineage is not changed by planning from it.
    expect(l.stages[0]!.plan.shuffle_writes[0]!.shuffle_id).toBe('counts')
  })

  test('a dataset written by its source stage: only the lost splits run, nothing else', () => {
    const src = lineageOf(stagesOf({ nodes: [
      { id: 'lines', op: 'read_text', path: 'in' },
      { id: 'up', op: 'map', input: 'lines', fn: 'l => l.toUpperCase()' },
      { id: 'keep', op: 'persist', input: 'up', name: 'wc', level: 'memory' },
    ] }), 'wc', {})!
    const st = stagesIn(plan(src, [2]))
    expect(st).toHaveLength(1)
    expect(st[0]!.skip).toEqual([true, true, false])
    expect(st[0]!.plan.nodes.map(n => n.id)).toEqual(['up'])
    expect(st[0]!.writes).toEqual({ base: 0, partitions: [2] })
  })

  test('a union: partitions are numbered across the stages that write the dataset, and only the stages a lost one needs run', () => {
    const u = lineageOf(stagesOf({ partitions: 2, nodes: [
      { id: 'lines', op: 'read_text', path: 'in' },
      { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'both', op: 'union', inputs: ['pairs', 'counts'] },
      { id: 'keep', op: 'persist', input: 'both', name: 'wc' },
    ] }), 'wc', {})!
    // Partitions 0..2: the source stage's splits; 3..4: the reduce partitions.
    const onlySource = stagesIn(plan(u, [1]))
    expect(onlySource).toHaveLength(1)
    expect(onlySource[0]!.skip).toEqual([true, false, true])
    // A lost reduce partition needs every split's map output: the source stage runs whole.
    const reduce = stagesIn(plan(u, [4]))
    expect(reduce.map(s => s.skip)).toEqual([[false, false, false], [true, false]])
    expect(reduce.map(s => s.writes)).toEqual([undefined, { base: 3, partitions: [4] }])
    // The source stage keeps no block then: its partitions of the dataset are held.
    expect(reduce[0]!.plan.shuffle_writes.map(w => w.shuffle_id)).toEqual(['wc~5~counts'])
    expect('error' in plan(u, [5]) && plan(u, [5])).toMatchObject({ error: expect.stringContaining('its lineage has 5 partitions') })
  })

  test('an input file gone or changed fails it, naming the dataset, the partitions and the file, only when a task that runs reads it', () => {
    const problems = new Map([['in/b', 'input file "in/b" changed since it was persisted (201 bytes now, 200 then)']])
    expect(plan(l, [0], problems)).toEqual({ error: 'DATASET_LOST: dataset "wc" partition 0 cannot be recomputed: input file "in/b" changed since it was persisted (201 bytes now, 200 then): persist it again from its inputs' })
    const src = lineageOf(stagesOf({ nodes: [{ id: 'lines', op: 'read_text', path: 'in' }, { id: 'keep', op: 'persist', input: 'lines', name: 'wc' }] }), 'wc', {})!
    expect('error' in plan(src, [0, 2], problems)).toBe(false)
    expect(plan(src, [1], problems)).toMatchObject({ error: expect.stringContaining('partition 1 cannot be recomputed: input file "in/b"') })
  })

  test('a dataset computed from another: read from that one as the catalog has it now, or an error once it is deleted or replaced', () => {
    const up: DatasetRecord = { name: 'base', job: 'j0' as JobId, owner: 'j0~base', atMs: 0, level: 'memory', blocks: [0, 1].map(p => ({ partition: p, attempt: `a${p}`, worker: 'w1' as never, incarnation: 'i', where: 'memory' as const, bytes: 10, records: 1 })) }
    const l2 = lineageOf(stagesOf({ nodes: [
      { id: 'r', op: 'read_dataset', name: 'base' },
      { id: 'm', op: 'map', input: 'r', fn: 'x => x' },
      { id: 'keep', op: 'persist', input: 'm', name: 'wc' },
    ] }, new Map([['base', up]])), 'wc', {})!
    expect(l2.datasets).toEqual([{ name: 'base', owner: 'j0~base' }])
    const root = { name: 'base', owner: 'j0~base', blocks: up.blocks.map(b => ({ attempt: b.attempt, worker: b.worker, incarnation: 'i2', bytes: 10 })) }
    const st = stagesIn(plan(l2, [1], new Map(), (name, owner) => name === 'base' && owner === 'j0~base' ? root : undefined))
    expect(st[0]!.plan.root).toMatchObject({ kind: 'cached', dataset: root })
    expect(st[0]!.skip).toEqual([true, false])
    expect(plan(l2, [1])).toMatchObject({ error: expect.stringContaining('DATASET_LOST: dataset "wc" partition 1 cannot be recomputed: it was computed from dataset "base", which was deleted or replaced since') })
    // The files to check at submit: those of the datasets read and of the ones they came from.
    const datasets = new Map<string, { owner: string; lineage?: Lineage }>([['wc', { owner: 'j1~wc', lineage: l2 }], ['base', { owner: 'j0~base', lineage: l }]])
    expect(lineageFiles(['wc'], datasets)).toEqual(FILES)
  })
})

describe('whether an input file is as it was', () => {
  const at = (disk: string, size: number, mtimeMs?: number) => ({ disk, size, ...(mtimeMs === undefined ? {} : { mtimeMs }) })
  test('missing on every live disk, another size on one of them, or unchanged', () => {
    const got = inputProblems(FILES, new Map([['in/a', [at('d1', 100), at('d2', 100)]], ['in/b', [at('d1', 200), at('d2', 201)]]]))
    expect([...got]).toEqual([
      ['in/b', 'input file "in/b" changed since it was persisted (201 bytes now, 200 then)'],
      ['in/c', 'input file "in/c" is gone (no live worker\'s disk has it)'],
    ])
    expect(inputProblems(FILES, new Map(FILES.map(f => [f.path, [at('d1', f.size)]]))).size).toBe(0)
  })

  test('the same size but modified since on a disk that had it then: changed; a disk it was not known on says nothing of when', () => {
    const files = [{ path: 'in/a', size: 100, mtimes: { d1: 1_000, d2: 5_000 } }]
    expect(inputProblems(files, new Map([['in/a', [at('d1', 100, 1_000), at('d2', 100, 5_000), at('d3', 100, 9_999)]]])).size).toBe(0)
    expect([...inputProblems(files, new Map([['in/a', [at('d1', 100, 1_000), at('d2', 100, 6_000)]]]))]).toEqual([
      ['in/a', `input file "in/a" changed since it was persisted (modified at ${new Date(6_000).toISOString()}, after it was read)`],
    ])
    // Recorded from the persisting job's listing, per disk.
    const l = lineageOf(stagesOf(wordCount()), 'wc', {}, new Map([['in/a', { d1: 1_000 }]]))!
    expect(l.files[0]).toEqual({ path: 'in/a', size: 100, mtimes: { d1: 1_000 } })
    expect(l.files[1]).toEqual({ path: 'in/b', size: 200 })
  })
})
