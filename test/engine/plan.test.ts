// Unit tests of the stage planner (src/engine/plan.ts): where stages are cut, what each stage
// computes and writes, and golden plans of examples/*.json (review snapshot diffs like code).
import { describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest, NodeSpec } from '../../src/api/jobs'
import type { StagePlan } from '../../src/api/tasks'
import { validateJob } from '../../src/engine/dag'
import { numberSinkParts, planStages, renderPlan, setCachedCount, setSplitCount, SUPPORTED_OPS } from '../../src/engine/plan'

const plan = (nodes: NodeSpec[], defaultPartitions = 4): StagePlan[] =>
  planStages(validateJob({ nodes }, SUPPORTED_OPS), defaultPartitions)
const ids = (s: StagePlan): string[] => s.nodes.map(n => n.id)

const WORDCOUNT: NodeSpec[] = [
  { id: 'lines', op: 'read_text', path: 'books/*.txt' },
  { id: 'words', op: 'flat_map', input: 'lines', fn: 'line => line.split(" ")' },
  { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
  { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
  { id: 'common', op: 'filter', input: 'counts', fn: '([w, n]) => n >= 2' },
  { id: 'out', op: 'write_text', input: 'common', path: 'out/wc' },
]

describe('planStages', () => {
  test('word count: two stages cut at reduce_by_key', () => {
    const stages = plan(WORDCOUNT)
    expect(stages).toHaveLength(2)
    const [map, reduce] = stages as [StagePlan, StagePlan]

    expect(map.stage_id).toBe(0)
    expect(map.root).toEqual({ kind: 'source', node: WORDCOUNT[0]! })
    expect(ids(map)).toEqual(['words', 'pairs'])
    expect(map.depends_on).toEqual([])
    expect(map.sinks).toEqual([])
    expect(map.partitions).toBe(0)   // a source stage is sized by its splits, later
    expect(map.shuffle_writes).toEqual([{ shuffle_id: 'counts', node: WORDCOUNT[3]!, from: 'pairs', partitions: 4 }])

    expect(reduce.stage_id).toBe(1)
    expect(reduce.root).toEqual({ kind: 'shuffle', node: WORDCOUNT[3]!, shuffle_ids: ['counts'] })
    expect(ids(reduce)).toEqual(['common', 'out'])
    expect(reduce.depends_on).toEqual([0])
    expect(reduce.sinks).toEqual(['out'])
    expect(reduce.shuffle_writes).toEqual([])
    expect(reduce.partitions).toBe(4)

    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source lines | words pairs | writes pairs=>counts[4]',
      'stage 1 <- [0] shuffle counts(counts) | common out | sinks out',
    ].join('\n'))
  })

  test('the request order of the nodes does not change the plan', () => {
    expect(renderPlan(plan([...WORDCOUNT].reverse()))).toBe(renderPlan(plan(WORDCOUNT)))
  })

  test('a node feeding two sinks in one stage is computed once and fanned out', () => {
    const stages = plan([
      { id: 'lines', op: 'read_text', path: 'a.txt' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
      { id: 'n', op: 'count', input: 'words' },
      { id: 'all', op: 'collect', input: 'words' },
      { id: 'out', op: 'write_jsonl', input: 'words', path: 'out/w' },
    ])
    expect(stages).toHaveLength(1)
    expect(ids(stages[0]!)).toEqual(['words', 'n', 'all', 'out'])
    expect(stages[0]!.sinks).toEqual(['n', 'all', 'out'])
    expect(stages[0]!.shuffle_writes).toEqual([])
  })

  test('a node feeding a sink and a shuffle: both in its stage', () => {
    const stages = plan([
      { id: 'lines', op: 'read_text', path: 'a.txt' },
      { id: 'n', op: 'count', input: 'lines' },
      { id: 'd', op: 'distinct', input: 'lines' },
      { id: 'c', op: 'collect', input: 'd' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source lines | n | writes lines=>d[4] | sinks n',
      'stage 1 <- [0] shuffle d(d) | c | sinks c',
    ].join('\n'))
  })

  test('two wide ops in a row: the first one\'s stage writes the second one\'s shuffle', () => {
    const nodes: NodeSpec[] = [
      { id: 'lines', op: 'read_text', path: 'a.txt' },
      { id: 'pairs', op: 'key_by', input: 'lines', fn: 'l => l.length' },
      { id: 'r', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a' },
      { id: 'g', op: 'group_by_key', input: 'r' },
      { id: 'c', op: 'collect', input: 'g' },
    ]
    const stages = plan(nodes)
    expect(stages).toHaveLength(3)
    const [s0, s1, s2] = stages as [StagePlan, StagePlan, StagePlan]
    expect(s0.shuffle_writes.map(w => [w.from, w.shuffle_id])).toEqual([['pairs', 'r']])
    expect(s1.root).toEqual({ kind: 'shuffle', node: nodes[2]!, shuffle_ids: ['r'] })
    expect(ids(s1)).toEqual([])                       // nothing narrow between the two shuffles
    expect(s1.shuffle_writes).toEqual([{ shuffle_id: 'g', node: nodes[3]!, from: 'r', partitions: 4 }])
    expect(s1.depends_on).toEqual([0])
    expect(s2.depends_on).toEqual([1])
    expect(ids(s2)).toEqual(['c'])
    expect(s2.sinks).toEqual(['c'])
  })

  test('partitions: the node\'s own value wins over the default, for the stage and its shuffle write', () => {
    const stages = plan([
      { id: 'lines', op: 'read_text', path: 'a.txt' },
      { id: 'd', op: 'distinct', input: 'lines', partitions: 7 },
      { id: 'g', op: 'group_by_key', input: 'd' },
      { id: 'c', op: 'collect', input: 'g' },
    ], 3)
    expect(stages.map(s => s.partitions)).toEqual([0, 7, 3])
    expect(stages[0]!.shuffle_writes[0]!.partitions).toBe(7)
    expect(stages[1]!.shuffle_writes[0]!.partitions).toBe(3)
  })

  test('two sources give two independent source stages', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'b', op: 'read_text', path: 'b.txt' },
      { id: 'na', op: 'count', input: 'a' },
      { id: 'nb', op: 'count', input: 'b' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source a | na | sinks na',
      'stage 1 <- [] source b | nb | sinks nb',
    ].join('\n'))
  })

  test('setSplitCount sizes a source stage', () => {
    const stages = plan(WORDCOUNT)
    setSplitCount(stages[0]!, 5)
    expect(stages[0]!.partitions).toBe(5)
    expect(stages[1]!.partitions).toBe(4)
  })
})

describe('planStages: union, join, sort', () => {
  test('a union of two sources runs in both source stages; the wide op after it reads both', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'b', op: 'read_text', path: 'b.txt' },
      { id: 'u', op: 'union', inputs: ['a', 'b'] },
      { id: 'w', op: 'write_text', input: 'u', path: 'out/u' },
      { id: 'd', op: 'distinct', input: 'u' },
      { id: 'c', op: 'collect', input: 'd' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source a | u w | writes u=>d[4] | sinks w',
      'stage 1 <- [] source b | u w | writes u=>d[4] | sinks w',
      'stage 2 <- [0,1] shuffle d(d) | c | sinks c',
    ].join('\n'))
  })

  test('sink parts are numbered across the stages of a union, without gaps', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'b', op: 'read_text', path: 'b.txt' },
      { id: 'u', op: 'union', inputs: ['a', 'b'] },
      { id: 'w', op: 'write_jsonl', input: 'u', path: 'out/u' },
      { id: 'n', op: 'count', input: 'u' },
    ])
    setSplitCount(stages[0]!, 3)
    setSplitCount(stages[1]!, 2)
    numberSinkParts(stages)
    expect(stages.map(s => s.sink_parts)).toEqual([{ w: 0 }, { w: 3 }])
  })

  test('a join whose two sides come from one source: two shuffle writes in one stage', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'kv', op: 'key_by', input: 'a', fn: 'l => l' },
      { id: 'j', op: 'join', inputs: ['kv', 'kv'], how: 'left' },
      { id: 'c', op: 'count', input: 'j' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source a | kv | writes kv=>j/0[4] kv=>j/1[4]',
      'stage 1 <- [0] shuffle j(j/0,j/1) | c | sinks c',
    ].join('\n'))
  })

  test('sort: a sample stage over the same root and path; the map stage waits for it', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'm', op: 'map', input: 'a', fn: 'l => l.length' },
      { id: 'n', op: 'count', input: 'a' },
      { id: 's', op: 'sort', input: 'm', descending: true },
      { id: 'w', op: 'write_text', input: 's', path: 'out/s' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [1] source a | m n | writes m=>s[4] | sinks n',
      'stage 1 <- [] source a | m s#sample | samples s',
      'stage 2 <- [0] shuffle s(s) | w | sinks w',
    ].join('\n'))
    const sample = stages[1]!.nodes[1]!
    expect(sample).toEqual({ id: 's#sample', op: 'sample', input: 'm', partitions: 4 })
    expect(stages[1]!.sinks).toEqual([])   // internal: never in the job's result
  })

  test('sort of a union of a node and its own aggregate: the map side moves to a copy, no cycle', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'kv', op: 'key_by', input: 'a', fn: 'l => l' },
      { id: 'r', op: 'reduce_by_key', input: 'kv', fn: '(x, y) => x' },
      { id: 'u', op: 'union', inputs: ['kv', 'r'] },
      { id: 's', op: 'sort', input: 'u', key: 'r => r[1]' },
      { id: 'c', op: 'collect', input: 's' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source a | kv u | writes kv=>r[4]',
      'stage 1 <- [0,2,3] shuffle r(r) | u | writes u=>s[4]',
      'stage 2 <- [] source a | kv u s#sample | samples s',
      'stage 3 <- [0] shuffle r(r) | u s#sample | samples s',
      'stage 4 <- [2,3] source a | kv u | writes u=>s[4]',
      'stage 5 <- [4,1] shuffle s(s) | c | sinks c',
    ].join('\n'))
    expectAcyclic(stages)
  })

  test('a wide op after a wide op after a union of a union', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'b', op: 'read_text', path: 'b.txt' },
      { id: 'u', op: 'union', inputs: ['a', 'b'] },
      { id: 'u2', op: 'union', inputs: ['u', 'a'] },
      { id: 'kv', op: 'key_by', input: 'u2', fn: 'l => l' },
      { id: 'g', op: 'group_by_key', input: 'kv' },
      { id: 's', op: 'sort', input: 'g' },
      { id: 'c', op: 'collect', input: 's' },
    ])
    expectAcyclic(stages)
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source a | u u2 kv | writes kv=>g[4]',
      'stage 1 <- [] source b | u u2 kv | writes kv=>g[4]',
      'stage 2 <- [0,1,3] shuffle g(g) |  | writes g=>s[4]',
      'stage 3 <- [0,1] shuffle g(g) | s#sample | samples s',
      'stage 4 <- [2] shuffle s(s) | c | sinks c',
    ].join('\n'))
  })
})

function expectAcyclic(stages: readonly StagePlan[]): void {
  const state = new Map<number, 'visiting' | 'done'>()
  const visit = (id: number, path: number[]): void => {
    if (state.get(id) === 'done') return
    if (state.get(id) === 'visiting') throw new Error(`stage cycle ${[...path, id].join(' -> ')}`)
    state.set(id, 'visiting')
    for (const d of stages[id]!.depends_on) visit(d, [...path, id])
    state.set(id, 'done')
  }
  for (const s of stages) visit(s.stage_id, [])
}

describe('golden plans of examples/*.json', () => {
  const dir = join(import.meta.dir, '../../examples')
  const files = readdirSync(dir).filter(f => f.endsWith('.json')).sort()

  test('there is at least one example', () => {
    expect(files.length).toBeGreaterThan(0)
  })

  for (const file of files) {
    test(file, () => {
      const job = JSON.parse(readFileSync(join(dir, file), 'utf8')) as JobRequest
      expect(renderPlan(planStages(validateJob(job, SUPPORTED_OPS), 4))).toMatchSnapshot()
    })
  }
})

describe('planStages: broadcast joins', () => {
  const SHOP = (how: 'inner' | 'left' | 'right' | 'full', then: NodeSpec[] = []): NodeSpec[] => [
    { id: 'customers', op: 'read_csv', path: 'customers.csv' },
    { id: 'orders', op: 'read_csv', path: 'orders.csv' },
    { id: 'c', op: 'key_by', input: 'customers', fn: 'c => c.id' },
    { id: 'o', op: 'key_by', input: 'orders', fn: 'o => o.customer' },
    { id: 'j', op: 'join', inputs: ['c', 'o'], how },
    { id: 'out', op: 'write_jsonl', input: 'j', path: 'out/j' },
    ...then,
  ]
  const sizes = (customers: number, orders: number) => ({ sourceBytes: new Map([['customers', customers], ['orders', orders]]), maxBytes: 1000 })
  const planB = (nodes: NodeSpec[], b = sizes(10, 1_000_000)): string => renderPlan(planStages(validateJob({ nodes }, SUPPORTED_OPS), 4, b))

  test('a small side read from files is written whole as one partition; the join runs in the large side\'s stage', () => {
    expect(planB(SHOP('inner'))).toBe([
      'stage 0 <- [] source customers | c | writes c=>j#broadcast[1]',
      'stage 1 <- [0] source orders | o j out | sinks out | broadcast j<=j#broadcast(side 0)',
    ].join('\n'))
    // Whichever side is small; a right join keeps the unmatched right records, so the left may be small.
    expect(planB(SHOP('inner'), sizes(1_000_000, 10))).toContain('broadcast j<=j#broadcast(side 1)')
    expect(planB(SHOP('right'))).toContain('broadcast j<=j#broadcast(side 0)')
  })

  test('no broadcast when the small side must keep its unmatched records, when both are large, or without sizes', () => {
    for (const p of [planB(SHOP('left')), planB(SHOP('full')), planB(SHOP('inner'), sizes(5000, 5000))]) {
      expect(p).not.toContain('broadcast')
      expect(p).toContain('shuffle j(j/0,j/1)')
    }
    expect(renderPlan(planStages(validateJob({ nodes: SHOP('inner') }, SUPPORTED_OPS), 4))).not.toContain('broadcast')
  })

  test('a small side read from a persisted dataset is broadcast too; a cached node of this job is not (its size is unknown at plan time)', () => {
    const nodes: NodeSpec[] = [
      { id: 'links', op: 'read_dataset', name: 'links' },
      { id: 'ranks', op: 'read_dataset', name: 'ranks' },
      { id: 'j', op: 'join', inputs: ['links', 'ranks'] },
      { id: 'out', op: 'write_jsonl', input: 'j', path: 'out/j' },
    ]
    const b = { sourceBytes: new Map([['links', 1_000_000], ['ranks', 10]]), maxBytes: 1000 }
    expect(renderPlan(planStages(validateJob({ nodes }, SUPPORTED_OPS), 4, b))).toBe([
      'stage 0 <- [1] cached links(links#dataset) | j out | sinks out | broadcast j<=j#broadcast(side 1)',
      'stage 1 <- [] cached ranks(ranks#dataset) |  | writes ranks=>j#broadcast[1]',
    ].join('\n'))
    // The same small file cached within the job: read back from blocks whose size the plan does not know.
    const cached = SHOP('inner').map(n => n.id === 'customers' ? { ...n, cache: 'memory' as const } : n)
    const p = planB(cached)
    expect(p).not.toContain('broadcast')
    expect(p).toContain('shuffle j(j/0,j/1)')
  })

  test('a sort after a broadcast join: its sample stage and writer get the broadcast too', () => {
    const p = planStages(validateJob({ nodes: SHOP('inner', [{ id: 's', op: 'sort', input: 'j', key: 'r => r[0]' }, { id: 'sorted', op: 'collect', input: 's' }]) }, SUPPORTED_OPS), 4, sizes(10, 1_000_000))
    const withJoin = p.filter(s => s.nodes.some(n => n.id === 'j'))
    expect(withJoin.length).toBeGreaterThan(1)
    for (const s of withJoin) {
      expect(s.broadcasts).toEqual([{ shuffle_id: 'j#broadcast', node_id: 'j', side: 0 }])
      expect(s.depends_on).toContain(0)
    }
  })
})

describe('planStages: cache', () => {
  const CACHED: NodeSpec[] = [
    { id: 'lines', op: 'read_text', path: 'a.txt' },
    { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]', cache: 'memory' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'groups', op: 'group_by_key', input: 'pairs' },
    { id: 'n1', op: 'count', input: 'counts' },
    { id: 'n2', op: 'count', input: 'groups' },
  ]

  test('a cached node with two wide consumers is computed in one stage and read by one cached stage that writes both shuffles', () => {
    const stages = plan(CACHED)
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source lines | pairs | writes pairs=>pairs#cache[memory]',
      'stage 1 <- [0] cached pairs(pairs#cache) |  | writes pairs=>counts[4] pairs=>groups[4]',
      'stage 2 <- [1] shuffle counts(counts) | n1 | sinks n1',
      'stage 3 <- [1] shuffle groups(groups) | n2 | sinks n2',
    ].join('\n'))
    expect(stages[0]!.shuffle_writes[0]).toEqual({ shuffle_id: 'pairs#cache', node: CACHED[1]!, from: 'pairs', partitions: 1, cache: 'memory' })
    // Sized by its writers once their splits are known.
    setSplitCount(stages[0]!, 7)
    setCachedCount(stages[1]!, stages)
    expect(stages[1]!.partitions).toBe(7)
  })

  test('without cache: the same node in one stage writes both shuffles (a cache adds a stage, not a computation)', () => {
    const uncached = CACHED.map(n => n.id === 'pairs' ? { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' } : n)
    expect(renderPlan(plan(uncached)).split('\n')[0]).toBe('stage 0 <- [] source lines | pairs | writes pairs=>counts[4] pairs=>groups[4]')
  })

  test('a sort of a cached node: the sample stage and the writer read the kept blocks, the node is computed once', () => {
    const stages = plan([
      { id: 'lines', op: 'read_text', path: 'a.txt' },
      { id: 'm', op: 'map', input: 'lines', fn: 'l => l.length', cache: 'memory_and_disk' },
      { id: 's', op: 'sort', input: 'm' },
      { id: 'out', op: 'collect', input: 's' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source lines | m | writes m=>m#cache[memory_and_disk]',
      'stage 1 <- [0,2] cached m(m#cache) |  | writes m=>s[4]',
      'stage 2 <- [0] cached m(m#cache) | s#sample | samples s',
      'stage 3 <- [1] shuffle s(s) | out | sinks out',
    ].join('\n'))
    expect(stages.filter(s => s.nodes.some(n => n.id === 'm') || (s.root.kind === 'source'))).toHaveLength(1)
    setSplitCount(stages[0]!, 3)
    for (const s of stages) setCachedCount(s, stages)
    expect([stages[1]!.partitions, stages[2]!.partitions]).toEqual([3, 3])
  })

  test('a cached union of two stages: one cache id written by both, read as one stage with their tasks numbered across them', () => {
    const stages = plan([
      { id: 'a', op: 'read_text', path: 'a.txt' },
      { id: 'b', op: 'read_text', path: 'b.txt' },
      { id: 'u', op: 'union', inputs: ['a', 'b'], cache: 'disk' },
      { id: 'f', op: 'filter', input: 'u', fn: 'x => x' },
      { id: 'n', op: 'count', input: 'f' },
    ])
    expect(renderPlan(stages)).toBe([
      'stage 0 <- [] source a | u | writes u=>u#cache[disk]',
      'stage 1 <- [] source b | u | writes u=>u#cache[disk]',
      'stage 2 <- [0,1] cached u(u#cache) | f n | sinks n',
    ].join('\n'))
    setSplitCount(stages[0]!, 2)
    setSplitCount(stages[1]!, 5)
    setCachedCount(stages[2]!, stages)
    expect(stages[2]!.partitions).toBe(7)
  })

  test('a cached wide node: kept after its reduce, and a cached source', () => {
    expect(renderPlan(plan([
      { id: 'lines', op: 'read_text', path: 'a.txt', cache: 'memory' },
      { id: 'pairs', op: 'map', input: 'lines', fn: 'l => [l, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b', cache: 'memory', partitions: 3 },
      { id: 'n', op: 'count', input: 'counts' },
      { id: 'c', op: 'collect', input: 'counts' },
    ]))).toBe([
      'stage 0 <- [] source lines |  | writes lines=>lines#cache[memory]',
      'stage 1 <- [0] cached lines(lines#cache) | pairs | writes pairs=>counts[3]',
      'stage 2 <- [1] shuffle counts(counts) |  | writes counts=>counts#cache[memory]',
      'stage 3 <- [2] cached counts(counts#cache) | n c | sinks n c',
    ].join('\n'))
  })
})

describe('persist and read_dataset', () => {
  test('persist is a write of its input kept under the dataset, in the input\'s stage, beside its other consumers; read_dataset roots a stage sized later', () => {
    const stages = plan([
      { id: 'ds', op: 'read_dataset', name: 'in' },
      { id: 'kv', op: 'map', input: 'ds', fn: 'x => x' },
      { id: 'keep', op: 'persist', input: 'kv', name: 'out', level: 'disk' },
      { id: 'n', op: 'count', input: 'kv' },
    ])
    expect(renderPlan(stages)).toBe('stage 0 <- [] cached ds(in#dataset) | kv n | writes kv=>out#dataset[disk] | sinks n')
    expect(stages[0]!.shuffle_writes[0]).toMatchObject({ persist: 'out', cache: 'disk', partitions: 1, from: 'kv' })
    // Its task count is the catalog's to set: setCachedCount leaves it as it is.
    stages[0]!.partitions = 3
    setCachedCount(stages[0]!, stages)
    expect(stages[0]!.partitions).toBe(3)
  })
})
