// Unit tests of the per-record operators under src/engine/operators (CSV, source decoding, sort)
// and of the pipeline's union (join has join.test.ts). Pure: no I/O; references are written out by
// hand or computed with plain loops.
import { describe, expect, test } from 'bun:test'
import { prng as rng } from '../support/prng'
import type { NodeSpec } from '../../src/api/jobs'
import type { StagePlan } from '../../src/api/tasks'
import { CsvParser } from '../../src/engine/operators/csv'
import { InputLineError, csvHeader, sourceDecoder } from '../../src/engine/operators/sources'
import {
  KeySampler, boundsFromSamples, rangePartition, rangePartitionsOf, sampleSizePerTask, sortKeyFunction,
} from '../../src/engine/operators/sort'
import { compareKeys, partitionOf } from '../../src/engine/keys'
import { buildStagePipeline, type Consumer } from '../../src/engine/pipeline'
import { createReducer, inMemory, partitionOfOutput, ShuffleWriter } from '../../src/engine/shuffle'
import { decodeFrames } from '../../src/engine/codec'
import { newBudgetBuffer, SharedBudget } from '../../src/engine/spill/budget'
import type { SpillContext } from '../../src/engine/spill/external'
import { MemoryRunStore } from '../../src/engine/spill/runs'
import { UdfError } from '../../src/engine/records'

const collector = (): Consumer & { all: unknown[] } => {
  const all: unknown[] = []
  return { all, push(b) { for (const r of b) all.push(r) } }
}


describe('CsvParser', () => {
  const parse = (lines: string[], delimiter = ',', multiline = false): (string[] | null)[] => {
    const p = new CsvParser(delimiter, multiline)
    const out = lines.map(l => p.pushLine(l))
    p.finish()
    return out
  }

  test('plain fields, empty fields, another delimiter', () => {
    expect(parse(['a,b,c', ',,', 'x'])).toEqual([['a', 'b', 'c'], ['', '', ''], ['x']])
    expect(parse(['a;b,c;d'], ';')).toEqual([['a', 'b,c', 'd']])
    expect(parse(['a\tb'], '\t')).toEqual([['a', 'b']])
  })

  test('RFC 4180 quoting: delimiters and doubled quotes inside quotes, empty quoted fields', () => {
    expect(parse(['"a,b",c'])).toEqual([['a,b', 'c']])
    expect(parse(['"say ""hi""",x'])).toEqual([['say "hi"', 'x']])
    expect(parse(['"",""'])).toEqual([['', '']])
    expect(parse(['a,"b"'])).toEqual([['a', 'b']])
    expect(parse(['""""'])).toEqual([['"']])
  })

  test('lenient: a quote inside an unquoted field is a character; text after a closing quote is kept', () => {
    expect(parse(['ab"c,d'])).toEqual([['ab"c', 'd']])
    expect(parse(['"ab"c,d'])).toEqual([['abc', 'd']])
  })

  test('a blank line is no row', () => {
    expect(parse(['a', '', 'b'])).toEqual([['a'], null, ['b']])
  })

  test('a quoted line break needs multiline; with it the row spans lines', () => {
    expect(() => parse(['"a', 'b"'])).toThrow(/multiline/)
    expect(parse(['x,"a', '', 'b""c",y', 'z'], ',', true)).toEqual([null, null, ['x', 'a\n\nb"c', 'y'], ['z']])
  })

  test('a file that ends inside quotes is an error', () => {
    const p = new CsvParser(',', true)
    expect(p.pushLine('"open')).toBeNull()
    expect(() => p.finish()).toThrow(/closing "/)
  })
})

describe('source decoders', () => {
  const node = (n: Partial<NodeSpec> & { op: string }): NodeSpec => ({ id: 'src', path: 'in', ...n })

  test('read_text: lines as they are; with_path: [path, line]', () => {
    expect(sourceDecoder(node({ op: 'read_text' }), { path: 'a/b.txt', atFileStart: true }).decode(['x', ''])).toEqual(['x', ''])
    expect(sourceDecoder(node({ op: 'read_text', with_path: true }), { path: 'a/b.txt', atFileStart: true }).decode(['x', 'y']))
      .toEqual([['a/b.txt', 'x'], ['a/b.txt', 'y']])
  })

  test('read_jsonl: each line parsed, blank lines skipped, a BOM at the file start dropped', () => {
    const d = sourceDecoder(node({ op: 'read_jsonl' }), { path: 'a.jsonl', atFileStart: true })
    expect(d.decode(['\uFEFF{"a":1}', '', '  ', '[1,"x"]', '"s"', '3'])).toEqual([{ a: 1 }, [1, 'x'], 's', 3])
  })

  test('read_jsonl: a bad line fails with its index in the split and its text', () => {
    const d = sourceDecoder(node({ op: 'read_jsonl' }), { path: 'a.jsonl', atFileStart: false })
    d.decode(['1', '2'])
    let err: unknown
    try { d.decode(['3', '{oops']) } catch (e) { err = e }
    expect(err).toBeInstanceOf(InputLineError)
    expect((err as InputLineError).lineInSplit).toBe(3)
    expect((err as InputLineError).line).toBe('{oops')
  })

  test('read_csv with a header: objects keyed by the header, every value a string', () => {
    const d = sourceDecoder(node({ op: 'read_csv' }), { path: 'c.csv', atFileStart: true })
    expect(d.decode(['\uFEFFid,name', '1,"Lovelace, Ada"', '', '2,Turing'])).toEqual([
      { id: '1', name: 'Lovelace, Ada' }, { id: '2', name: 'Turing' },
    ])
    expect(d.finish()).toEqual([])
  })

  test('read_csv: a split after the file start gets the header from outside', () => {
    const n = node({ op: 'read_csv', delimiter: ';' })
    const header = csvHeader(n, 'a;b')
    const d = sourceDecoder(n, { path: 'c.csv', atFileStart: false, header })
    expect(d.decode(['1;2'])).toEqual([{ a: '1', b: '2' }])
  })

  test('read_csv without a header: arrays', () => {
    const d = sourceDecoder(node({ op: 'read_csv', header: false }), { path: 'c.csv', atFileStart: true })
    expect(d.decode(['a,b', '1,2'])).toEqual([['a', 'b'], ['1', '2']])
  })

  test('read_csv: a row of the wrong width, and a multiline row, are located', () => {
    const d = sourceDecoder(node({ op: 'read_csv' }), { path: 'c.csv', atFileStart: true })
    expect(() => d.decode(['a,b', '1,2', '1,2,3'])).toThrow(/3 field\(s\) but the header has 2/)
    const m = sourceDecoder(node({ op: 'read_csv', multiline: true }), { path: 'c.csv', atFileStart: true })
    expect(m.decode(['a,b', '1,"x', 'y"', '2,"open'])).toEqual([{ a: '1', b: 'x\ny' }])
    let err: unknown
    try { m.finish() } catch (e) { err = e }
    expect((err as InputLineError).lineInSplit).toBe(3)
  })
})

describe('sort', () => {
  test('the key: key function, else the key of a pair, else the record', () => {
    expect(sortKeyFunction({ id: 's', op: 'sort' }, {})(['k', 1])).toBe('k')
    expect(sortKeyFunction({ id: 's', op: 'sort' }, {})('x')).toBe('x')
    expect(sortKeyFunction({ id: 's', op: 'sort' }, {})([1, 2, 3])).toEqual([1, 2, 3])
    expect(sortKeyFunction({ id: 's', op: 'sort', key: 'r => -r.n' }, {})({ n: 4 })).toBe(-4)
  })

  test('rangePartition: the first range whose upper bound is >= the key', () => {
    const bounds = [10, 20, 30]
    expect([-1, 10, 11, 20, 25, 30, 31, 'a'].map(k => rangePartition(k, bounds))).toEqual([0, 0, 1, 1, 2, 2, 3, 3])
    expect(rangePartition('x', [])).toBe(0)
  })

  test('bounds from samples: strictly increasing, balanced for uniform keys, heavy keys collapse', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => i)
    const b = boundsFromSamples([{ keys, count: 1000 }], 4)
    expect(b).toEqual([249, 499, 749])
    const heavy = boundsFromSamples([{ keys: [...Array(90).fill('a'), ...Array.from({ length: 10 }, (_, i) => `b${i}`)], count: 100 }], 4)
    for (let i = 1; i < heavy.length; i++) expect(compareKeys(heavy[i - 1], heavy[i])).toBe(-1)
    expect(heavy[0]).toBe('a')
    expect(boundsFromSamples([], 4)).toEqual([])
    expect(boundsFromSamples([{ keys: [1, 2], count: 2 }], 1)).toEqual([])
  })

  test('bounds weigh each task\'s sample by the records it saw', () => {
    // task A saw 1000 records of keys < 100 but sampled 10; task B saw 10 records >= 100.
    const a = { keys: Array.from({ length: 10 }, (_, i) => i * 10), count: 1000 }
    const b = { keys: Array.from({ length: 10 }, (_, i) => 100 + i), count: 10 }
    const bounds = boundsFromSamples([a, b], 2) as number[]
    expect(bounds[0]!).toBeLessThan(100)
  })

  test('the sampler keeps a uniform sample of the requested size, the same for the same seed', () => {
    const s1 = new KeySampler(50, 7)
    const s2 = new KeySampler(50, 7)
    for (let i = 0; i < 100; i++) { const keys = Array.from({ length: 100 }, (_, j) => i * 100 + j); s1.pushKeys(keys); s2.pushKeys(keys) }
    expect(s1.count).toBe(10_000)
    expect(s1.sample).toHaveLength(50)
    expect(s1.sample).toEqual(s2.sample)
    const mean = (s1.sample as number[]).reduce((a, b) => a + b, 0) / 50
    expect(mean).toBeGreaterThan(2500)
    expect(mean).toBeLessThan(7500)
    expect(sampleSizePerTask(10, 4)).toBe(150)
    expect(sampleSizePerTask(100000, 1)).toBe(20_000)   // a report stays small
  })

  test('sampled keys are copies, long strings cut to a prefix (still a valid bound)', () => {
    const s = new KeySampler(10, 1)
    const long = 'x'.repeat(1000)
    s.pushKeys([long, ['a', long], 5])
    expect(s.sample).toEqual(['x'.repeat(128), ['a', 'x'.repeat(128)], 5])
  })

  test('map side: descending puts the largest range in partition 0', () => {
    const keyOf = sortKeyFunction({ id: 's', op: 'sort' }, {})
    expect([...rangePartitionsOf('s', keyOf, [1, 15, 25], [10, 20], false)]).toEqual([0, 1, 2])
    expect([...rangePartitionsOf('s', keyOf, [1, 15, 25], [10, 20], true)]).toEqual([2, 1, 0])
  })

  test('reduce side: numbers before strings, numbers numerically, arrays element-wise, stable', () => {
    const r = createReducer({ id: 's', op: 'sort' }, {}, inMemory())
    r.push(0, [['b', 1], [10, 'x'], [9, 'y']])
    r.push(0, [['a', 2], [[1, 'z'], 0], [[1, 2], 0], ['b', 0]])
    const out = collector()
    expect(r.emit(out)).toBe(7)
    expect(out.all).toEqual([[9, 'y'], [10, 'x'], ['a', 2], ['b', 1], ['b', 0], [[1, 2], 0], [[1, 'z'], 0]])
    const d = createReducer({ id: 's', op: 'sort', key: 'r => r.n', descending: true }, {}, inMemory())
    d.push(0, [{ n: 1 }, { n: 3 }, { n: 2 }, { n: 3, second: true }])
    const outD = collector()
    d.emit(outD)
    expect(outD.all).toEqual([{ n: 3 }, { n: 3, second: true }, { n: 2 }, { n: 1 }])
  })

  test('a key function that throws names the sort node and the record', () => {
    const r = createReducer({ id: 'by_n', op: 'sort', key: 'r => r.x.y' }, {}, inMemory())
    expect(() => r.push(0, [{ x: null }])).toThrow(UdfError)
  })

  test('ShuffleWriter for sort: every record lands in the range of its key', () => {
    const node: NodeSpec = { id: 's', op: 'sort' }
    const ctx = inMemory()
    const w = new ShuffleWriter({ shuffle_id: 's', node, from: 'x', partitions: 3 }, {}, ctx, [100, 200])
    const random = rng(3)
    const records = Array.from({ length: 5000 }, () => Math.floor(random() * 300))
    w.push(records)
    const segments = w.finish()
    const parts = [0, 1, 2].map(p => decodeFrames(partitionOfOutput(ctx.store, segments, p)).flat() as number[])
    expect(parts.flat().length).toBe(5000)
    for (const k of parts[0]!) expect(k).toBeLessThanOrEqual(100)
    for (const k of parts[1]!) { expect(k).toBeGreaterThan(100); expect(k).toBeLessThanOrEqual(200) }
    for (const k of parts[2]!) expect(k).toBeGreaterThan(200)
    expect(() => new ShuffleWriter({ shuffle_id: 's', node, from: 'x', partitions: 3 }, {}, inMemory())).toThrow(/range bounds/)
  })
})

describe('ShuffleWriter under a budget: segments spilled mid-task', () => {
  const budgeted = (bytes: number): SpillContext & { store: MemoryRunStore; spills: number } => {
    const c = { store: new MemoryRunStore(), budget: new SharedBudget(newBudgetBuffer(), bytes, 0), stepBytes: 8 * 1024, spills: 0, onSpill() { c.spills++ } }
    return c
  }
  const write = (node: NodeSpec, ctx: ReturnType<typeof budgeted>, records: unknown[]): unknown[][][] => {
    const w = new ShuffleWriter({ shuffle_id: 's', node, from: 'x', partitions: 3 }, {}, ctx)
    for (let at = 0; at < records.length; at += 1000) w.push(records.slice(at, at + 1000))
    const segments = w.finish()
    return [0, 1, 2].map(p => decodeFrames(partitionOfOutput(ctx.store, segments, p)))
  }
  const random = rng(11)
  const words = Array.from({ length: 60_000 }, () => `w${Math.floor(random() * 20_000)}`)

  test('reduce_by_key: every partition\'s pairs, over all segments, sum to a plain count', () => {
    const ctx = budgeted(256 * 1024)
    const parts = write({ id: 'c', op: 'reduce_by_key', fn: '(a, b) => a + b' }, ctx, words.map(w => [w, 1]))
    expect(ctx.spills).toBeGreaterThan(2)
    const want = new Map<string, number>()
    for (const w of words) want.set(w, (want.get(w) ?? 0) + 1)
    const got = new Map<string, number>()
    parts.forEach((frames, p) => {
      for (const [k, n] of frames.flat() as [string, number][]) {
        expect(partitionOf(k, 3)).toBe(p)
        got.set(k, (got.get(k) ?? 0) + n)
      }
    })
    expect(got).toEqual(want)
  })

  test('distinct: every key in its partition, once a segment', () => {
    const ctx = budgeted(256 * 1024)
    const parts = write({ id: 'd', op: 'distinct' }, ctx, words)
    expect(ctx.spills).toBeGreaterThan(2)
    const all = parts.flat(2) as string[]
    expect(new Set(all)).toEqual(new Set(words))
    parts.forEach((frames, p) => { for (const k of frames.flat() as string[]) expect(partitionOf(k, 3)).toBe(p) })
  })

  test('group_by_key: every record once, and records after a spill still go out in frames of many', () => {
    // A budget smaller than one partition's frame: spills come while other partitions' records wait.
    const ctx = budgeted(16 * 1024)
    const records: [string, number][] = Array.from({ length: 100_000 }, (_, i) => [words[i % words.length]!, i])
    const parts = write({ id: 'g', op: 'group_by_key' }, ctx, records)
    expect(ctx.spills).toBeGreaterThan(5)
    const all = parts.flat(2) as [string, number][]
    expect(all.map(r => r[1]).sort((a, b) => a - b)).toEqual(records.map(r => r[1]))
    parts.forEach((frames, p) => { for (const [k] of frames.flat() as [string, number][]) expect(partitionOf(k, 3)).toBe(p) })
    // Records waiting at a spill are written with it and counted as gone: later ones still gather into frames.
    const frames = parts.reduce((n, f) => n + f.length, 0)
    expect(frames).toBeLessThan(records.length / 100)
  })
})

describe('pipeline: union', () => {
  const stage = (nodes: NodeSpec[]): StagePlan => ({
    stage_id: 0, root: { kind: 'source', node: { id: 'src', op: 'read_text', path: 'x' } }, nodes, shuffle_writes: [], sinks: [], depends_on: [], partitions: 1,
  })

  test('union of a node and a derived node, and union(a, a), in one stage', () => {
    const got = collector()
    const twice = collector()
    const root = buildStagePipeline(stage([
      { id: 'm', op: 'map', input: 'src', fn: 'x => x + "!"' },
      { id: 'u', op: 'union', inputs: ['src', 'm'] },
      { id: 'out', op: 'collect', input: 'u' },
      { id: 'uu', op: 'union', inputs: ['src', 'src'] },
      { id: 'out2', op: 'collect', input: 'uu' },
    ]), {}, {
      shuffle: () => { throw new Error('no shuffle') },
      sink: n => n.id === 'out' ? got : twice,
    })
    root.push(['a', 'b'])
    expect(got.all.slice().sort()).toEqual(['a', 'a!', 'b', 'b!'])
    expect(twice.all.slice().sort()).toEqual(['a', 'a', 'b', 'b'])
  })

  test('a union input planned in another stage pushes nothing here', () => {
    const got = collector()
    const root = buildStagePipeline(stage([
      { id: 'u', op: 'union', inputs: ['src', 'elsewhere'] },
      { id: 'out', op: 'collect', input: 'u' },
    ]), {}, { shuffle: () => { throw new Error('no shuffle') }, sink: () => got })
    root.push(['a'])
    expect(got.all).toEqual(['a'])
  })
})

// A node read by several consumers of one stage hands each its own records: a function that
// mutates its record changes nothing its siblings see, whichever runs first, as when a shuffle
// lies between them (there, every consumer reads its own decoded copy).
describe('pipeline: fan-out', () => {
  const stage = (nodes: NodeSpec[], shuffleFrom: string[] = []): StagePlan => ({
    stage_id: 0, root: { kind: 'source', node: { id: 'src', op: 'read_jsonl', path: 'x' } }, nodes,
    shuffle_writes: shuffleFrom.map((from, i) => ({ shuffle_id: `s${i}`, node: { id: `r${i}`, op: 'group_by_key', input: from }, from, partitions: 1 })),
    sinks: [], depends_on: [], partitions: 1,
  })
  const MUTATE = 'r => { r.n = -1; if (r.tags) r.tags.push("x"); return r }'
  const records = (): unknown[] => [{ n: 1, tags: ['a'] }, { n: 2, tags: [] }, [3, { n: 3 }]]
  // What each branch must see: computed on fresh records, one branch at a time (no sharing).
  const alone = (fn: string): unknown[] => records().map(r => (new Function(`return (${fn})`)() as (x: unknown) => unknown)(r))

  for (const mutatorFirst of [true, false]) {
    test(`a mutating map beside a collect and a filter (mutator ${mutatorFirst ? 'first' : 'last'})`, () => {
      const sinks = new Map<string, ReturnType<typeof collector>>()
      const sink = (n: NodeSpec): Consumer => { const c = collector(); sinks.set(n.id, c); return c }
      const mutator: NodeSpec[] = [{ id: 'm', op: 'map', input: 'src', fn: MUTATE }, { id: 'outM', op: 'collect', input: 'm' }]
      const others: NodeSpec[] = [
        { id: 'outRaw', op: 'collect', input: 'src' },
        { id: 'f', op: 'filter', input: 'src', fn: 'r => (r.n ?? 0) > 0' }, { id: 'outF', op: 'collect', input: 'f' },
      ]
      const root = buildStagePipeline(stage(mutatorFirst ? [...mutator, ...others] : [...others, ...mutator]), {}, { shuffle: () => { throw new Error('no shuffle') }, sink })
      root.push(records())
      root.push(records())
      expect(sinks.get('outM')!.all).toEqual([...alone(MUTATE), ...alone(MUTATE)])
      expect(sinks.get('outRaw')!.all).toEqual([...records(), ...records()])
      expect(sinks.get('outF')!.all).toEqual([records()[0], records()[1], records()[0], records()[1]])
    })
  }

  test('union(a, a) gives each of its two copies its own record', () => {
    const got = collector()
    const root = buildStagePipeline(stage([
      { id: 'u', op: 'union', inputs: ['src', 'src'] },
      { id: 'm', op: 'map', input: 'u', fn: 'r => { r.n += 10; return r }' },
      { id: 'out', op: 'collect', input: 'm' },
    ]), {}, { shuffle: () => { throw new Error('no shuffle') }, sink: () => got })
    root.push([{ n: 1 }])
    expect(got.all).toEqual([{ n: 11 }, { n: 11 }])
  })

  test('a shuffle write buffering records is not changed by a sibling that mutates them afterwards', () => {
    const buffered: unknown[] = []
    const got = collector()
    const root = buildStagePipeline(stage([
      { id: 'm', op: 'map', input: 'src', fn: 'r => { r[1].n = -1; return r }' },
      { id: 'out', op: 'collect', input: 'm' },
    ], ['src']), {}, { shuffle: () => ({ push(b) { buffered.push(...b) } }), sink: () => got })
    root.push([['k', { n: 1 }]])
    expect(buffered).toEqual([['k', { n: 1 }]])
    expect(got.all).toEqual([['k', { n: -1 }]])
  })

  test('strings and numbers fan out as they are', () => {
    const a = collector(), b = collector()
    const root = buildStagePipeline(stage([
      { id: 'outA', op: 'collect', input: 'src' }, { id: 'outB', op: 'collect', input: 'src' },
    ]), {}, { shuffle: () => { throw new Error('no shuffle') }, sink: n => n.id === 'outA' ? a : b })
    root.push(['x', 1, null, true])
    expect(a.all).toEqual(['x', 1, null, true])
    expect(b.all).toEqual(['x', 1, null, true])
  })
})

test('fan-out copies keep a "__proto__" key of a JSON record as a key', () => {
  const a = collector(), b = collector()
  const root = buildStagePipeline({
    stage_id: 0, root: { kind: 'source', node: { id: 'src', op: 'read_jsonl', path: 'x' } },
    nodes: [{ id: 'outA', op: 'collect', input: 'src' }, { id: 'outB', op: 'collect', input: 'src' }],
    shuffle_writes: [], sinks: [], depends_on: [], partitions: 1,
  }, {}, { shuffle: () => { throw new Error('no shuffle') }, sink: n => n.id === 'outA' ? a : b })
  root.push([JSON.parse('{"__proto__": {"x": 1}, "y": 2}')])
  expect(JSON.stringify(a.all)).toBe('[{"__proto__":{"x":1},"y":2}]')
  expect(JSON.stringify(b.all)).toBe('[{"__proto__":{"x":1},"y":2}]')
})
