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
import { hashAsciiBytes } from '../../src/engine/builtins/byte-counts'
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
