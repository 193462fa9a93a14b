// The built-in operators (src/engine/builtins) against their UDF twins: the same job written both
// ways runs through the engine's own code (validation, planning, the worker's split reader, the
// stage pipeline, the shuffle writer's frames, the reducer) on random inputs, and must give the
// same records. Inputs hold non-ASCII text (the two letters whose toLowerCase is ASCII among
// them), invalid UTF-8, empty lines, CRLF and lone CR, a BOM, and lines longer than a read chunk;
// splits fall anywhere.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobRequest, NodeSpec } from '../../src/api/jobs'
import type { StagePlan } from '../../src/api/tasks'
import { decodeFrames } from '../../src/engine/codec'
import { validateJob } from '../../src/engine/dag'
import { buildStagePipeline, type Consumer } from '../../src/engine/pipeline'
import { planStages } from '../../src/engine/plan'
import { createReducer, inMemory, partitionOfOutput, ShuffleWriter, type BlockSegment } from '../../src/engine/shuffle'
import { MemoryRunStore } from '../../src/engine/spill/runs'
import type { SpillContext } from '../../src/engine/spill/external'
import { SharedBudget, newBudgetBuffer } from '../../src/engine/spill/budget'
import { lineSafe } from '../../src/engine/builtins/grep'
import { boundsFromSamples, sortKeyFunction } from '../../src/engine/operators/sort'
import { parseWordPattern } from '../../src/engine/builtins/words'
import { ApiError } from '../../src/api/errors'
import { readSourceSplit } from '../../src/roles/worker/task/inputs'
import { bag, seeded } from '../support/oracle'
import { ByteCountTable, hashAsciiBytes } from '../../src/engine/builtins/byte-counts'
import { hashKey } from '../../src/engine/keys'
import { LineCutter } from '../../src/engine/lines'

// Each case runs two small jobs; a busy machine can take seconds.
setDefaultTimeout(30_000)

const dir = mkdtempSync(join(tmpdir(), 'builtins-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

type Output = { store: MemoryRunStore; segments: BlockSegment[] }

/** Runs a job over the files in `dir` the way workers do, stage by stage, each source file cut into
 *  `splits` random byte ranges; returns each sink's records (count: the number). */
async function runJob(req: JobRequest, files: Record<string, Uint8Array>, r: ReturnType<typeof seeded>, splits = 3, reduceContext: () => SpillContext = inMemory): Promise<Record<string, unknown>> {
  const sub = mkdtempSync(join(dir, 'job-'))
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(sub, name), bytes)
  const stages = planStages(validateJob(req), 1 + r.int(4))
  const outputs = new Map<string, Output[]>()
  const results: Record<string, unknown[]> = {}
  const counts: Record<string, number> = {}
  const params = req.params ?? {}
  // a sort's sampled records, then its range bounds, as the master cuts them
  const sampled = new Map<string, unknown[]>()
  const bounds: Record<string, unknown[]> = {}
  const runTask = async (stage: StagePlan, feed: (root: Consumer) => Promise<void>): Promise<void> => {
    const writers: ShuffleWriter[] = []
    const contexts: MemoryRunStore[] = []
    const root = buildStagePipeline(stage, params, {
      shuffle: w => {
        const ctx = inMemory()
        contexts.push(ctx.store)
        if (w.node.op === 'sort' && bounds[w.shuffle_id] === undefined) {
          const keyOf = sortKeyFunction(w.node, params)
          const all = sampled.get(w.node.id) ?? []
          bounds[w.shuffle_id] = boundsFromSamples([{ keys: all.map(keyOf), count: all.length }], w.partitions)
        }
        const s = new ShuffleWriter(w, params, ctx, bounds[w.shuffle_id])
        writers.push(s)
        return s
      },
      sink: node => ({
        push(batch) {
          if (node.op === 'sample') { const l = sampled.get(stage.sample_of!) ?? []; l.push(...batch); sampled.set(stage.sample_of!, l) }
          else if (node.op === 'count') counts[node.id] = (counts[node.id] ?? 0) + batch.length
          else (results[node.id] ??= []).push(...batch)
        },
      }),
    })
    await feed(root)
    writers.forEach((w, i) => {
      const list = outputs.get(w.shuffleId) ?? []
      list.push({ store: contexts[i]!, segments: w.finish() })
      outputs.set(w.shuffleId, list)
    })
  }
  for (const stage of stages) {
    for (const s of stage.sinks) {
      if (stage.nodes.find(n => n.id === s)?.op === 'count') counts[s] ??= 0
      else results[s] ??= []
    }
    const root = stage.root
    if (root.kind === 'source') {
      const bytes = files[root.node.path!]!
      const cuts = [0, ...Array.from({ length: splits - 1 }, () => r.int(bytes.length + 1)).sort((a, b) => a - b), bytes.length]
      for (let i = 0; i + 1 < cuts.length; i++) {
        const split = { path: root.node.path!, start: cuts[i]!, end: cuts[i + 1]!, file_size: bytes.length }
        await runTask(stage, async rootConsumer => { await readSourceSplit(root.node, split, sub, 'w', 64 * 32 * 1024, rootConsumer) })
      }
    } else if (root.kind === 'shuffle') {
      for (let p = 0; p < stage.partitions; p++) {
        await runTask(stage, async next => {
          const reducer = createReducer(root.node, params, reduceContext())
          root.shuffle_ids.forEach((id, side) => {
            for (const o of outputs.get(id) ?? []) for (const b of decodeFrames(partitionOfOutput(o.store, o.segments, p))) reducer.push(side, b)
          })
          reducer.emit(next)
        })
      }
    } else {
      throw new Error(`a ${root.kind} stage: the jobs here cache nothing`)
    }
  }
  rmSync(sub, { recursive: true, force: true })
  return { ...results, ...counts }
}

// ---- random text ---------------------------------------------------------------------------------

const PIECES = ['the', 'The', 'THING', 'thing', 'nothing', 'Thinking', 'a', 'b', 'x1', '42', "don't", 'naïve', 'Éclair', 'straße',
  'İstanbul', 'İ', '\u212Aelvin', 'o\u212A', '\u212A', 'ǅ', 'Σίσυφος', '😀', '中文', '\uFEFF', '\t', ' ', '  ', ',', '.', '-', '\r', 'é', 'ı']

function randomLine(r: ReturnType<typeof seeded>): string {
  if (r.chance(0.1)) return ''
  const n = r.chance(0.01) ? 15_000 + r.int(10_000) : r.int(12)
  const parts: string[] = []
  for (let i = 0; i < n; i++) parts.push(r.chance(0.3) ? ' ' : r.pick(PIECES))
  return parts.join('')
}

/** Text bytes: random lines with LF or CRLF endings, sometimes no final newline, sometimes invalid UTF-8. */
function randomText(r: ReturnType<typeof seeded>, lines = 40 + r.int(200)): Uint8Array {
  const chunks: Uint8Array[] = []
  const enc = new TextEncoder()
  for (let i = 0; i < lines; i++) {
    chunks.push(enc.encode(randomLine(r)))
    if (r.chance(0.05)) chunks.push(new Uint8Array([0x80 + r.int(0x80), r.pick([0xc4, 0xe2, 0xb0, 0x84, 0xaa])]))
    if (i < lines - 1 || r.chance(0.5)) chunks.push(enc.encode(r.chance(0.3) ? '\r\n' : '\n'))
  }
  const total = chunks.reduce((n, c) => n + c.length, 0)
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.length }
  return out
}

const sortPairs = (xs: unknown[]): string[] => bag(xs)

// ---- the twins ---------------------------------------------------------------------------------

const SEEDS = Array.from({ length: 25 }, (_, i) => 1000 + i)

describe('words + count_by_value = flat_map + map + reduce_by_key', () => {
  const PATTERNS = ['[a-z0-9]+', '[a-z]+', "[a-z0-9']+", '[a-zA-Z]+', '[ik]+', '[ -~]+', '[\\-a-c.]+']
  for (const seed of SEEDS) {
    test(`seed ${seed}`, async () => {
      const r = seeded(seed)
      const text = randomText(r)
      const pattern = r.pick(PATTERNS)
      const lowercase = r.chance(0.7)
      const builtin: JobRequest = { nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { id: 'words', op: 'words', input: 'lines', pattern, ...(lowercase ? {} : { lowercase: false }) },
        { id: 'counts', op: 'count_by_value', input: 'words' },
        { id: 'out', op: 'collect', input: 'counts' },
        { id: 'n', op: 'count', input: 'words' },
      ] }
      const twinWords = `(re => l => (${lowercase ? 'l.toLowerCase()' : 'l'}).match(re) ?? [])(new RegExp(params.pattern, 'g'))`
      const twin: JobRequest = { params: { pattern }, nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { id: 'words', op: 'flat_map', input: 'lines', fn: twinWords },
        { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
        { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
        { id: 'out', op: 'collect', input: 'counts' },
        { id: 'n', op: 'count', input: 'words' },
      ] }
      const a = await runJob(builtin, { 't.txt': text }, seeded(seed))
      const b = await runJob(twin, { 't.txt': text }, seeded(seed))
      expect(sortPairs(a.out as unknown[])).toEqual(sortPairs(b.out as unknown[]))
      expect(a.n).toBe(b.n)
      expect((a.out as unknown[]).length).toBeGreaterThan(0)
    })
  }

  test('the words themselves, in order, after a UDF, and fanned out to a UDF and a count', async () => {
    for (const seed of SEEDS.slice(0, 8)) {
      const r = seeded(seed)
      const text = randomText(r)
      const builtin: JobRequest = { nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { id: 'same', op: 'map', input: 'lines', fn: 'l => l' },
        { id: 'words', op: 'words', input: 'same' },
        { id: 'direct', op: 'words', input: 'lines' },
        { id: 'upper', op: 'map', input: 'direct', fn: 'w => w.toUpperCase()' },
        { id: 'counts', op: 'count_by_value', input: 'direct' },
        { id: 'out', op: 'collect', input: 'words' },
        { id: 'up', op: 'collect', input: 'upper' },
        { id: 'c', op: 'collect', input: 'counts' },
      ] }
      const fn = "l => l.toLowerCase().match(/[a-z0-9]+/g) ?? []"
      const twin: JobRequest = { nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { id: 'words', op: 'flat_map', input: 'lines', fn },
        { id: 'upper', op: 'map', input: 'words', fn: 'w => w.toUpperCase()' },
        { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
        { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
        { id: 'out', op: 'collect', input: 'words' },
        { id: 'up', op: 'collect', input: 'upper' },
        { id: 'c', op: 'collect', input: 'counts' },
      ] }
      const a = await runJob(builtin, { 't.txt': text }, seeded(seed))
      const b = await runJob(twin, { 't.txt': text }, seeded(seed))
      expect(a.out).toEqual(b.out)
      expect(a.up).toEqual(b.up)
      expect(sortPairs(a.c as unknown[])).toEqual(sortPairs(b.c as unknown[]))
    }
  })

  test('words straight into other wide ops (distinct, sort) and a UDF shuffle', async () => {
    for (const seed of SEEDS.slice(0, 6)) {
      const text = randomText(seeded(seed))
      // each words node with one consumer: the shuffle write itself is downstream
      const job = (words: NodeSpec): JobRequest => ({ nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { ...words, id: 'w1' }, { ...words, id: 'w2' }, { ...words, id: 'w3' },
        { id: 'd', op: 'distinct', input: 'w1' },
        { id: 's', op: 'sort', input: 'w2' },
        { id: 'k', op: 'key_by', input: 'w3', fn: 'w => w.length' },
        { id: 'g', op: 'group_by_key', input: 'k' },
        { id: 'sizes', op: 'map', input: 'g', fn: '([n, ws]) => [n, ws.length]' },
        { id: 'out_d', op: 'collect', input: 'd' }, { id: 'out_s', op: 'collect', input: 's' }, { id: 'out_g', op: 'collect', input: 'sizes' },
      ] })
      const a = await runJob(job({ id: 'words', op: 'words', input: 'lines' }), { 't.txt': text }, seeded(seed))
      const b = await runJob(job({ id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.toLowerCase().match(/[a-z0-9]+/g) ?? []' }), { 't.txt': text }, seeded(seed))
      expect(bag(a.out_d as unknown[])).toEqual(bag(b.out_d as unknown[]))
      expect(a.out_s).toEqual(b.out_s)
      expect(bag(a.out_g as unknown[])).toEqual(bag(b.out_g as unknown[]))
    }
  })

  test('count_by_value of any records (not words) counts them by value', async () => {
    const r = seeded(7)
    const text = randomText(r)
    const job = (counted: NodeSpec[]): JobRequest => ({ nodes: [
      { id: 'lines', op: 'read_text', path: 't.txt' },
      { id: 'vals', op: 'map', input: 'lines', fn: 'l => l.length % 3 === 0 ? [l.length % 5, "x"] : l.length % 3 === 1 ? l.length % 4 : String(l.length % 4)' },
      ...counted,
      { id: 'out', op: 'collect', input: 'counts' },
    ] })
    const a = await runJob(job([{ id: 'counts', op: 'count_by_value', input: 'vals' }]), { 't.txt': text }, seeded(1))
    const b = await runJob(job([{ id: 'p', op: 'map', input: 'vals', fn: 'v => [v, 1]' }, { id: 'counts', op: 'reduce_by_key', input: 'p', fn: '(a, b) => a + b' }]), { 't.txt': text }, seeded(1))
    expect(sortPairs(a.out as unknown[])).toEqual(sortPairs(b.out as unknown[]))
  })
})

describe('ByteCountTable.drain', () => {
  test('each partition\'s words in insertion order, in batches of at most the size asked for; the table empty after', () => {
    const t = new ByteCountTable()
    const enc = new TextEncoder()
    const words = Array.from({ length: 500 }, (_, i) => `w${(i * 7919) % 1000}`)
    const want = new Map<string, number>()
    for (const w of words) { const b = enc.encode(w); t.add(b, 0, b.length, 2); want.set(w, (want.get(w) ?? 0) + 2) }
    const d = t.drain(5)
    expect(t.size).toBe(0)
    const got = new Map<string, number>()
    for (let p = 0; p < 5; p++) {
      const batches = [...d.batches(p, (b, s, e) => String.fromCharCode(...b.subarray(s, e)), 7)]
      for (const b of batches) expect(b.length).toBeLessThanOrEqual(7)
      const keys = batches.flat().map(([w, n]) => { got.set(w, n); return w })
      for (const w of keys) expect(hashKey(w) % 5).toBe(p)
      expect(keys).toEqual([...want.keys()].filter(w => hashKey(w) % 5 === p))
    }
    expect(got).toEqual(want)
  })
})

describe('grep = filter with RegExp.test', () => {
  const CASES: [string, string][] = [
    ['\\bth[a-z]*ing\\b', 'i'], ['th', ''], ['thing', 'i'], ['^the', ''], ['g$', ''], ['a\\sb', ''], ['[^a-z]{3}', ''],
    ['x*', ''], ['\\b', ''], ['é|ß', 'u'], ['\\w+\\W', 'i'], ['.', 's'], ['^$', 'm'], ['k', 'iu'], ['i\\u0307', ''], ['[ ]{2}\\S', ''],
    ['(?:th|ng)\\B', ''], ['.\\r?$', ''], ['(?<=t)h', ''], ['😀', 'u'],
  ]
  for (const seed of SEEDS) {
    test(`seed ${seed}`, async () => {
      const r = seeded(seed)
      const text = randomText(r)
      for (const [pattern, flags] of [CASES[seed % CASES.length]!, r.pick(CASES)]) {
        const job = (filter: NodeSpec): JobRequest => ({ params: { pattern, flags }, nodes: [
          { id: 'lines', op: 'read_text', path: 't.txt' }, filter,
          { id: 'out', op: 'collect', input: 'm' }, { id: 'n', op: 'count', input: 'm' },
        ] })
        const a = await runJob(job({ id: 'm', op: 'grep', input: 'lines', pattern, ...(flags ? { flags } : {}) }), { 't.txt': text }, seeded(seed))
        const b = await runJob(job({ id: 'm', op: 'filter', input: 'lines', fn: '(re => l => re.test(l))(new RegExp(params.pattern, params.flags))' }), { 't.txt': text }, seeded(seed))
        expect(a.out).toEqual(b.out)
        expect(a.n).toBe(b.n)
      }
    })
  }

  test('which expressions search a whole chunk at once', () => {
    expect(lineSafe('\\bth[a-z]*ing\\b', 'i')).toBe(true)
    expect(lineSafe('a.b|c\\d+', '')).toBe(true)
    for (const [p, f] of [['^a', ''], ['a$', ''], ['a\\sb', ''], ['[^a]', ''], ['a', 'm'], ['a', 's'], ['(?=a)', ''], ['\\x0a', ''], ['\\n', ''], ['(a)\\1', ''], ['[\\b]', ''], ['\\W', '']]) {
      expect(lineSafe(p!, f!)).toBe(false)
    }
  })
})

describe('agg_by_key = reduce_by_key with the same function', () => {
  const TWIN: Record<string, NodeSpec[]> = {
    sum: [{ id: 'agg', op: 'reduce_by_key', input: 'kv', fn: '(a, b) => a + b' }],
    min: [{ id: 'agg', op: 'reduce_by_key', input: 'kv', fn: '(a, b) => Math.min(a, b)' }],
    max: [{ id: 'agg', op: 'reduce_by_key', input: 'kv', fn: '(a, b) => Math.max(a, b)' }],
    count: [{ id: 'ones', op: 'map_values', input: 'kv', fn: 'v => 1' }, { id: 'agg', op: 'reduce_by_key', input: 'ones', fn: '(a, b) => a + b' }],
  }
  for (const seed of SEEDS.slice(0, 12)) {
    test(`seed ${seed}`, async () => {
      const r = seeded(seed)
      const text = randomText(r)
      const agg = (['sum', 'min', 'max', 'count'] as const)[seed % 4]!
      const job = (aggregate: NodeSpec[]): JobRequest => ({ nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { id: 'kv', op: 'map', input: 'lines', fn: 'l => [l.length % 7 === 0 ? "seven" : l.length % 5, l.length * 0.5 - 3]' },
        ...aggregate,
        { id: 'out', op: 'collect', input: 'agg' },
      ] })
      const a = await runJob(job([{ id: 'agg', op: 'agg_by_key', input: 'kv', agg }]), { 't.txt': text }, seeded(seed))
      const b = await runJob(job(TWIN[agg]!), { 't.txt': text }, seeded(seed))
      expect(sortPairs(a.out as unknown[])).toEqual(sortPairs(b.out as unknown[]))
    })
  }

  test('sum of a value that is not a number fails the task naming the node', async () => {
    const job: JobRequest = { nodes: [
      { id: 'lines', op: 'read_text', path: 't.txt' },
      { id: 'kv', op: 'map', input: 'lines', fn: 'l => [1, l]' },
      { id: 'agg', op: 'agg_by_key', input: 'kv', agg: 'sum' },
      { id: 'out', op: 'collect', input: 'agg' },
    ] }
    await expect(runJob(job, { 't.txt': new TextEncoder().encode('a\nb\n') }, seeded(1))).rejects.toThrow(/agg_by_key with "agg": "sum" needs numbers/)
  })
})

describe('key_by_field = key_by with a property read', () => {
  for (const seed of SEEDS.slice(0, 10)) {
    test(`join of two CSV files on a field, seed ${seed}`, async () => {
      const r = seeded(seed)
      const customers = ['customer_id,name,country', ...Array.from({ length: 50 }, (_, i) => `${i},n${i},${r.pick(['Ísland', 'Japan', 'France', 'United Kingdom'])}`)].join(r.chance(0.5) ? '\r\n' : '\n') + '\n'
      const orders = ['order_id,customer_id,amount', ...Array.from({ length: 400 }, (_, i) => `${i},${r.int(60)},${(r.int(100000) / 100).toFixed(2)}`)].join('\n')
      const files = { 'c.csv': new TextEncoder().encode(customers), 'o.csv': new TextEncoder().encode(orders) }
      const job = (keyC: NodeSpec, keyO: NodeSpec): JobRequest => ({ nodes: [
        { id: 'c', op: 'read_csv', path: 'c.csv' }, { id: 'o', op: 'read_csv', path: 'o.csv' }, keyC, keyO,
        { id: 'j', op: 'join', inputs: ['kc', 'ko'] },
        { id: 'by', op: 'map', input: 'j', fn: '([id, [c, o]]) => [c.country, Math.round(Number(o.amount) * 100)]' },
        { id: 't', op: 'agg_by_key', input: 'by', agg: 'sum' },
        { id: 'out', op: 'collect', input: 't' },
      ] })
      const a = await runJob(job({ id: 'kc', op: 'key_by_field', input: 'c', field: 'customer_id' }, { id: 'ko', op: 'key_by_field', input: 'o', field: 'customer_id' }), files, seeded(seed))
      const b = await runJob(job({ id: 'kc', op: 'key_by', input: 'c', fn: 'r => r.customer_id' }, { id: 'ko', op: 'key_by', input: 'o', fn: 'r => r.customer_id' }), files, seeded(seed))
      expect(sortPairs(a.out as unknown[])).toEqual(sortPairs(b.out as unknown[]))
      expect((a.out as unknown[]).length).toBeGreaterThan(0)
    })
  }

  test('a record without the field fails naming the node', async () => {
    const job: JobRequest = { nodes: [
      { id: 'c', op: 'read_csv', path: 'c.csv' }, { id: 'k', op: 'key_by_field', input: 'c', field: 'nope' }, { id: 'out', op: 'collect', input: 'k' },
    ] }
    await expect(runJob(job, { 'c.csv': new TextEncoder().encode('a,b\n1,2\n') }, seeded(1))).rejects.toThrow(/no field "nope"/)
  })
})

describe('sort by a built-in key = sort with the twin key function', () => {
  for (const seed of SEEDS.slice(0, 10)) {
    test(`lines by a slice; CSV rows by a field; seed ${seed}`, async () => {
      const r = seeded(seed)
      const text = randomText(r)
      const start = r.int(3)
      const end = start + r.int(6)
      const descending = r.chance(0.5)
      const job = (sort: Partial<NodeSpec>): JobRequest => ({ nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { id: 's', op: 'sort', input: 'lines', ...(descending ? { descending } : {}), ...sort },
        { id: 'out', op: 'collect', input: 's' },
      ] })
      const a = await runJob(job({ by: { slice: [start, end] } }), { 't.txt': text }, seeded(seed))
      const b = await runJob(job({ key: `r => r.slice(${start}, ${end})` }), { 't.txt': text }, seeded(seed))
      expect(a.out).toEqual(b.out)
      const keys = (a.out as string[]).map(l => l.slice(start, end))
      for (let i = 1; i < keys.length; i++) expect(descending ? keys[i - 1]! >= keys[i]! : keys[i - 1]! <= keys[i]!).toBe(true)

      const csv = ['id,amount', ...Array.from({ length: 200 }, (_, i) => `${i},${r.int(50)}`)].join('\n')
      const rows = (sort: Partial<NodeSpec>): JobRequest => ({ nodes: [
        { id: 'rows', op: 'read_csv', path: 'o.csv' },
        { id: 's', op: 'sort', input: 'rows', ...sort },
        { id: 'out', op: 'collect', input: 's' },
      ] })
      const files = { 'o.csv': new TextEncoder().encode(csv) }
      const c = await runJob(rows({ by: { field: 'amount' } }), files, seeded(seed))
      const d = await runJob(rows({ key: 'r => r.amount' }), files, seeded(seed))
      expect(c.out).toEqual(d.out)
      expect((c.out as unknown[]).length).toBe(200)
    })
  }
})

describe('sort by a slice, spilled on the reduce side = the twin key function', () => {
  // Many lines, few distinct keys (equal keys keep their order), non-ASCII and astral characters
  // (a slice may end inside a surrogate pair), a reduce budget of a few KiB: the lines are held,
  // spilled and merged as bytes on one side, as JS values on the other.
  const spilling = (): SpillContext => ({ budget: new SharedBudget(newBudgetBuffer(), 16 * 1024, 0), stepBytes: 4096, store: new MemoryRunStore(), onSpill() {} })
  for (const seed of SEEDS.slice(0, 6)) {
    test(`seed ${seed}`, async () => {
      const r = seeded(seed)
      const text = randomText(r, 1500 + r.int(1500))
      const start = r.int(2)
      const end = start + 1 + r.int(3)
      const descending = r.chance(0.5)
      const job = (sort: Partial<NodeSpec>): JobRequest => ({ nodes: [
        { id: 'lines', op: 'read_text', path: 't.txt' },
        { id: 's', op: 'sort', input: 'lines', ...(descending ? { descending } : {}), ...sort },
        { id: 'out', op: 'collect', input: 's' },
      ] })
      const a = await runJob(job({ by: { slice: [start, end] } }), { 't.txt': text }, seeded(seed), 3, spilling)
      const b = await runJob(job({ key: `r => r.slice(${start}, ${end})` }), { 't.txt': text }, seeded(seed), 3, inMemory)
      expect(a.out).toEqual(b.out)
      // and both are the plain stable sort of the lines (the input order is the splits' order)
      const lines = a.out as string[]
      for (let i = 1; i < lines.length; i++) {
        const x = lines[i - 1]!.slice(start, end), y = lines[i]!.slice(start, end)
        expect(descending ? x >= y : x <= y).toBe(true)
      }
    })
  }
})

test('LineCutter.pushBytes gives the lines push gives, as bytes, for any split and chunking', () => {
  const dec = new TextDecoder('utf-8', { ignoreBOM: true })
  for (let seed = 0; seed < 300; seed++) {
    const r = seeded(seed)
    const text = randomText(r, 1 + r.int(12))
    const start = r.int(text.length + 1)
    const split = { start, end: start + r.int(text.length + 1 - start) }
    const strings = new LineCutter(split)
    const bytes = new LineCutter(split)
    const want: string[] = []
    const got: string[] = []
    const chunk = 1 + r.int(r.chance(0.5) ? 8 : 200)
    for (let pos = strings.readFrom; pos < text.length; pos += chunk) {
      const c = text.slice(pos, pos + chunk)
      want.push(...strings.push(c))
      for (const region of bytes.pushBytes(c)) for (const l of dec.decode(region).split('\n')) got.push(l.endsWith('\r') ? l.slice(0, -1) : l)
    }
    want.push(...strings.finish())
    const last = bytes.finishBytes()
    if (last !== null) { const l = dec.decode(last); got.push(l.endsWith('\r') ? l.slice(0, -1) : l) }
    expect(got).toEqual(want)
    expect(bytes.bytesRead).toBe(strings.bytesRead)
  }
})

test('a word counted as bytes goes to the partition of the same word counted as a string', () => {
  const r = seeded(3)
  const enc = new TextEncoder()
  for (let i = 0; i < 2000; i++) {
    let w = ''
    for (let n = r.int(20); n > 0; n--) w += String.fromCharCode(0x20 + r.int(0x5f))
    const b = enc.encode(w)
    expect(hashAsciiBytes(b, 0, b.length)).toBe(hashKey(w))
  }
})

describe('submit checks', () => {
  const submit = (node: NodeSpec): void => {
    validateJob({ nodes: [{ id: 'l', op: 'read_text', path: 'x' }, node, { id: 'o', op: 'count', input: node.id }] })
  }
  test('a word pattern must be one ASCII class; a grep pattern must compile', () => {
    expect(() => submit({ id: 'w', op: 'words', input: 'l', pattern: '[a-z]' })).toThrow(ApiError)
    expect(() => submit({ id: 'w', op: 'words', input: 'l', pattern: '[^a-z]+' })).toThrow(/negated/)
    expect(() => submit({ id: 'w', op: 'words', input: 'l', pattern: '[a-zé]+' })).toThrow(/printable ASCII/)
    expect(() => submit({ id: 'w', op: 'words', input: 'l', pattern: '[\\s]+' })).toThrow(/escape/)
    expect(() => submit({ id: 'g', op: 'grep', input: 'l', pattern: '(' })).toThrow(/not a regular expression/)
    expect(() => submit({ id: 'g', op: 'grep', input: 'l', pattern: 'a', flags: 'g' })).toThrow(/flags/)
    submit({ id: 'w', op: 'words', input: 'l', pattern: "[a-z0-9'\\-]+" })
    submit({ id: 'g', op: 'grep', input: 'l', pattern: 'a', flags: 'iu' })
    expect(() => submit({ id: 's', op: 'sort', input: 'l', key: 'r => r', by: { slice: [0, 1] } })).toThrow(/not both/)
    expect(() => submit({ id: 's', op: 'sort', input: 'l', by: { slice: [3, 1] } })).toThrow(/start <= end/)
  })
  test('word classes: ranges, escapes, a literal "-" at either end', () => {
    const members = (p: string): string => { const t = parseWordPattern(p) as Uint8Array; let s = ''; for (let c = 0; c < 128; c++) if (t[c]) s += String.fromCharCode(c); return s }
    expect(members('[a-c0-2]+')).toBe('012abc')
    expect(members('[-a]+')).toBe('-a')
    expect(members('[a-]+')).toBe('-a')
    expect(members('[\\]\\\\]+')).toBe('\\]')
  })
})

// ---- read_csv with columns and types -------------------------------------------------------------

const CSV_TEXT = ['plain', 'naïve', 'Ísland', '中文', '😀', 'a,b', 'say "hi"', '"', ',', ' x ', 'straße', '\u212A']

function shuffled<T>(r: ReturnType<typeof seeded>, xs: readonly T[]): T[] {
  const a = [...xs]
  for (let i = a.length - 1; i > 0; i--) { const j = r.int(i + 1); [a[i], a[j]] = [a[j]!, a[i]!] }
  return a
}

/** A random field of a type, as text: valid values, empty ones, and edge forms the parsers accept. */
function typedText(r: ReturnType<typeof seeded>, type: string): string {
  if (r.chance(0.08)) return ''
  const sign = r.pick(['', '', '', '-', '+'])
  switch (type) {
    case 'int': return sign + r.pick([String(r.int(1000)), String(r.int(2 ** 31)), '0', '007', String(Number.MAX_SAFE_INTEGER)])
    case 'cents': return sign + r.pick([`${r.int(100000)}.${String(r.int(100)).padStart(2, '0')}`, `${r.int(1000)}.${r.int(10)}`, `${r.int(100)}`, `.${r.int(100)}`, `${r.int(50)}.`, '0.29', '1.15', '0.00'])
    case 'number': return sign + r.pick([`${r.int(1000)}.${r.int(1000)}`, `${r.int(100)}e${r.int(20)}`, `.${r.int(99)}E-${r.int(5)}`, `${r.int(9)}.`, '0.1', String(r.next())])
    default: return r.pick(CSV_TEXT) + (r.chance(0.3) ? r.pick(CSV_TEXT) : '')
  }
}

/** A field as CSV writes it: quoted when it holds a quote, the delimiter or a line break (sometimes anyway). */
function csvField(r: ReturnType<typeof seeded>, text: string, delim: string): string {
  return /["\r\n]/.test(text) || text.includes(delim) || r.chance(0.05) ? `"${text.replaceAll('"', '""')}"` : text
}

/** Random CSV bytes: a header (a repeated name, a non-ASCII one), rows of typed columns with quoted
 *  fields, LF or CRLF, blank lines, invalid UTF-8, maybe a BOM, maybe no final newline; with
 *  `multiline` quoted fields hold line breaks. */
function randomCsv(r: ReturnType<typeof seeded>, multiline: boolean, delim: string): { bytes: Uint8Array; header: string[]; kinds: string[] } {
  const header = ['id', 'name', 'amount', 'città', 'qty', 'ratio', 'name']
  const kinds = ['int', 'string', 'cents', 'string', 'int', 'number', 'string']
  const eol = r.chance(0.5) ? '\r\n' : '\n'
  const lines = [header.join(delim)]
  const rows = 30 + r.int(150)
  for (let i = 0; i < rows; i++) {
    if (r.chance(0.03)) { lines.push(''); continue }
    lines.push(kinds.map(k => {
      let text = typedText(r, k)
      if (k === 'string' && multiline && r.chance(0.1)) text += r.pick(['\nnext', '\r\nline'])
      if (k === 'string' && r.chance(0.05)) text += r.pick(['\u0001', '\u0002'])
      return csvField(r, text, delim)
    }).join(delim))
  }
  const text = (r.chance(0.3) ? '\uFEFF' : '') + lines.join(eol) + (r.chance(0.7) ? eol : '')
  // \u0001 stands for a cut 3-byte sequence, \u0002 for a byte that never starts one: invalid UTF-8.
  const out: number[] = []
  for (const b of new TextEncoder().encode(text)) {
    if (b === 1) out.push(0xe4, 0xb8)
    else if (b === 2) out.push(0xff)
    else out.push(b)
  }
  return { bytes: new Uint8Array(out), header, kinds }
}

/** The UDF twin of a selection: the map that read_csv's plain records go through. */
function twinFn(columns: string[] | undefined, types: Record<string, string>): string {
  const conv = (k: string): string => {
    const v = `r[${JSON.stringify(k)}]`
    switch (types[k] ?? 'string') {
      case 'string': return v
      case 'cents': return `(${v} === '' ? null : Math.round(Number(${v}) * 100))`
      default: return `(${v} === '' ? null : Number(${v}))`
    }
  }
  if (columns === undefined) return `r => ({ ...r, ${Object.keys(types).map(k => `${JSON.stringify(k)}: ${conv(k)}`).join(', ')} })`
  return `r => ({ ${columns.map(k => `${JSON.stringify(k)}: ${conv(k)}`).join(', ')} })`
}

describe('read_csv columns/types = read_csv + map', () => {
  for (const seed of SEEDS) {
    test(`seed ${seed}`, async () => {
      const r = seeded(seed)
      const multiline = r.chance(0.25)
      // a non-ASCII delimiter takes the line reader: both readers are compared with their twin
      const delimiter = r.pick([',', ',', ';', '\t', '§'])
      const { bytes, header, kinds } = randomCsv(r, multiline, delimiter)
      const unique = [...new Set(header)]
      const columns = r.chance(0.2) ? undefined : shuffled(r, unique).slice(0, 1 + r.int(unique.length))
      const types: Record<string, string> = {}
      for (const c of columns ?? unique) {
        const kind = kinds[header.lastIndexOf(c)]!
        if (r.chance(0.7)) types[c] = kind === 'cents' && r.chance(0.3) ? 'number' : kind
      }
      const src: NodeSpec = { id: 'rows', op: 'read_csv', path: 'f.csv', delimiter, ...(multiline ? { multiline: true } : {}) }
      const a = await runJob({ nodes: [
        { ...src, ...(columns ? { columns } : {}), types: types as NonNullable<NodeSpec['types']> },
        { id: 'out', op: 'collect', input: 'rows' },
      ] }, { 'f.csv': bytes }, seeded(seed), multiline ? 1 : 3)
      const b = await runJob({ nodes: [
        src, { id: 'm', op: 'map', input: 'rows', fn: twinFn(columns, types) }, { id: 'out', op: 'collect', input: 'm' },
      ] }, { 'f.csv': bytes }, seeded(seed), multiline ? 1 : 3)
      expect((a.out as unknown[]).length).toBeGreaterThan(0)
      expect(a.out).toEqual(b.out)
      // Only the named columns, in the order named.
      if (columns) for (const rec of a.out as object[]) expect(Object.keys(rec)).toEqual(columns)
    })
  }

  test('against a plain loop: the sum of cents per key after key_by_field, fused into the read stage', async () => {
    const r = seeded(7)
    const rows = Array.from({ length: 500 }, (_, i) => [`${i}`, r.pick(['a', 'b', 'ç']), `${r.int(10000)}.${String(r.int(100)).padStart(2, '0')}`, r.pick(['x', '"q,1"'])])
    const text = ['id,k,amount,note', ...rows.map(x => x.join(','))].join('\r\n')
    const job: JobRequest = { nodes: [
      { id: 'rows', op: 'read_csv', path: 'f.csv', columns: ['k', 'amount'], types: { amount: 'cents' } },
      { id: 'kb', op: 'key_by_field', input: 'rows', field: 'k' },
      { id: 'v', op: 'map_values', input: 'kb', fn: 'r => r.amount' },
      { id: 't', op: 'agg_by_key', input: 'v', agg: 'sum' },
      { id: 'out', op: 'collect', input: 't' },
    ] }
    const stages = planStages(validateJob(job), 2)
    const first = stages[0]!
    expect(first.root.kind === 'source' ? first.root.node.id : first.root.kind).toBe('rows')
    expect(first.nodes.map(n => n.id)).toEqual(expect.arrayContaining(['kb', 'v']))
    const want = new Map<string, number>()
    for (const [, k, amount] of rows) {
      const [i, f] = amount!.split('.')
      want.set(k!, (want.get(k!) ?? 0) + Number(i) * 100 + Number(f))
    }
    const got = await runJob(job, { 'f.csv': new TextEncoder().encode(text) }, r)
    expect(sortPairs(got.out as unknown[])).toEqual(sortPairs([...want]))
  })

  test('a bad number fails the task naming the node, file, line, column and value', async () => {
    const text = 'id,amount\n1,2.50\n2,3.5\n3,1.999\n'
    const job: JobRequest = { nodes: [
      { id: 'rows', op: 'read_csv', path: 'f.csv', types: { amount: 'cents' } }, { id: 'out', op: 'collect', input: 'rows' },
    ] }
    const err = await runJob(job, { 'f.csv': new TextEncoder().encode(text) }, seeded(1), 1).catch(e => e as Error & { nodeId?: string })
    expect(err).toBeInstanceOf(Error)
    expect(err.message).toContain('f.csv:4')
    expect(err.message).toContain('"amount"')
    expect(err.message).toContain('"1.999"')
    expect((err as { nodeId?: string }).nodeId).toBe('rows')
    for (const [type, bad] of [['int', '1.5'], ['int', '99999999999999999'], ['number', '1,5'], ['number', 'NaN'], ['cents', '1e3'], ['int', ' 1']]) {
      const t = `a;b\nx;${bad}\n`
      const j: JobRequest = { nodes: [{ id: 'rows', op: 'read_csv', path: 'f.csv', delimiter: ';', columns: ['b'], types: { b: type as 'int' } }, { id: 'out', op: 'collect', input: 'rows' }] }
      await expect(runJob(j, { 'f.csv': new TextEncoder().encode(t) }, seeded(2), 1)).rejects.toThrow(`f.csv:2: column "b" is typed "${type}" but holds ${JSON.stringify(bad)}`)
    }
  })

  test('a column missing from a file\'s header fails the task naming the file and the column, in every split', async () => {
    const text = 'id,amount\n' + Array.from({ length: 200 }, (_, i) => `${i},${i}`).join('\n')
    for (const node of [{ columns: ['id', 'price'] }, { types: { price: 'int' as const } }, { columns: ['price'], multiline: true }]) {
      const job: JobRequest = { nodes: [{ id: 'rows', op: 'read_csv', path: 'f.csv', ...node }, { id: 'out', op: 'collect', input: 'rows' }] }
      await expect(runJob(job, { 'f.csv': new TextEncoder().encode(text) }, seeded(3), node.multiline ? 1 : 4)).rejects.toThrow(/f\.csv:1: the file has no column "price"/)
    }
  })

  test('a row with another number of fields fails as it does without a selection', async () => {
    for (const line of ['1,2', '1,2,3,4', '1']) {
      const job: JobRequest = { nodes: [{ id: 'rows', op: 'read_csv', path: 'f.csv', columns: ['a'] }, { id: 'out', op: 'collect', input: 'rows' }] }
      await expect(runJob(job, { 'f.csv': new TextEncoder().encode(`a,b,c\n1,2,3\n${line}\n`) }, seeded(4), 1)).rejects.toThrow(/f\.csv:3: the row has \d field\(s\) but the header has 3/)
    }
  })

  test('columns named like Object.prototype members are plain columns', async () => {
    const text = 'constructor,toString,__proto__,n\nx,y,z,5\n"q",,w,\n'
    for (const node of [{ columns: ['toString', 'constructor', 'n'] }, { types: { n: 'int' as const } }]) {
      const job: JobRequest = { nodes: [{ id: 'rows', op: 'read_csv', path: 'f.csv', ...node }, { id: 'out', op: 'collect', input: 'rows' }] }
      const got = (await runJob(job, { 'f.csv': new TextEncoder().encode(text) }, seeded(5), 1)).out as Record<string, unknown>[]
      expect(got.map(r => Object.entries(r))).toEqual('columns' in node
        ? [[['toString', 'y'], ['constructor', 'x'], ['n', '5']], [['toString', ''], ['constructor', 'q'], ['n', '']]]
        : [[['constructor', 'x'], ['toString', 'y'], ['n', 5]], [['constructor', 'q'], ['toString', ''], ['n', null]]])
    }
  })

  test('submit checks: a selection needs a header; columns once each; types of named columns', () => {
    const bad = (n: Partial<NodeSpec>, re: RegExp): void => {
      expect(() => validateJob({ nodes: [{ id: 'rows', op: 'read_csv', path: 'f.csv', ...n }, { id: 'out', op: 'count', input: 'rows' }] })).toThrow(re)
    }
    bad({ header: false, columns: ['a'] }, /need "header": true/)
    bad({ columns: ['a', 'a'] }, /names a column twice: a/)
    bad({ columns: ['a'], types: { b: 'int' } }, /"types" names "b", which is not in "columns"/)
    bad({ columns: ['__proto__'] }, /__proto__/)
  })
})
