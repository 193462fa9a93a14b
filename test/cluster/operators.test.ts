// Every operator of CONTRACT section 4 on a real cluster (master + 3 worker processes), on
// generated inputs with several files and splits, skewed keys, keys of mixed types, empty files,
// empty partitions and empty inputs. Each result is compared with a reference computed here by a
// plain loop over the records the generator wrote (never by the engine).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest, JobResult, JobStatus, NodeSpec } from '../../src/api/jobs'
import { killAll, partFiles, plainLines, startCluster, tempDir, type Cluster } from '../support/cluster'
import { bag, canon, readJsonParts, readPartsByFile, seeded, sortProblems, writeCsv, writeJsonl } from '../support/oracle'

type Rec = { k: unknown; v: number; tag: string }
type Right = { k: unknown; w: string }

let c: Cluster | undefined
let data = ''
const left: Rec[] = []
const right: Right[] = []
const csvRows: string[][] = []          // without the header
const CSV_HEADER = ['id', 'name', 'note', 'amount']
const multilineRows: string[][] = []
const textFiles: string[] = []
// Small splits: each file is read by several tasks, so split edges, headers past the first split and
// line numbers of bad lines are all exercised.
const SPLIT = 8 * 1024

const cluster = (): Cluster => {
  if (c === undefined) throw new Error('the cluster did not start (see beforeAll)')
  return c
}

/** Skewed keys of mixed types: a hot string key, numbers and the same digits as strings, arrays. */
function key(r: ReturnType<typeof seeded>): unknown {
  const x = r.next()
  if (x < 0.35) return 'hot'
  if (x < 0.55) return r.int(40)
  if (x < 0.75) return String(r.int(40))
  if (x < 0.9) return ['a', r.int(8)]
  if (x < 0.95) return [r.int(3), 'b']
  return `k${r.int(200)}`
}

const WORDS = ['alpha', 'beta', 'gamma', 'delta, with comma', 'say "hi"', 'ümlaut', '日本', '', ' padded ', 'x;y']

beforeAll(async () => {
  data = tempDir('ms-ops-')
  const r = seeded(42)
  // Left side: three JSONL files of different sizes and one empty file.
  for (const [f, n] of [['l0', 1500], ['l1', 400], ['l2', 900], ['l3', 0]] as const) {
    const recs: Rec[] = []
    for (let i = 0; i < n; i++) recs.push({ k: key(r), v: r.int(1000), tag: r.pick(WORDS) })
    left.push(...recs)
    writeJsonl(join(data, 'kv', `${f}.jsonl`), recs)
  }
  // Right side: overlapping keys, some only on one side.
  const rr: Right[] = []
  for (let i = 0; i < 300; i++) rr.push({ k: r.chance(0.5) ? key(r) : `only-right-${r.int(50)}`, w: r.pick(WORDS) })
  right.push(...rr)
  writeJsonl(join(data, 'right', 'r0.jsonl'), rr.slice(0, 200))
  writeJsonl(join(data, 'right', 'r1.jsonl'), rr.slice(200))
  // CSV: quoting of delimiters, quotes and padding; CRLF line ends in one file.
  for (let f = 0; f < 3; f++) {
    const rows: string[][] = []
    for (let i = 0; i < 600; i++) rows.push([String(f * 1000 + i), r.pick(WORDS), r.pick(WORDS) + r.pick(WORDS), (r.int(100000) / 100).toFixed(2)])
    csvRows.push(...rows)
    writeCsv(join(data, 'csv', `c${f}.csv`), [CSV_HEADER, ...rows], ',', f === 1 ? '\r\n' : '\n')
    writeCsv(join(data, 'csv-semi', `c${f}.csv`), [CSV_HEADER, ...rows], ';')
  }
  // Multiline CSV: quoted fields with line breaks.
  for (let f = 0; f < 2; f++) {
    const rows: string[][] = []
    for (let i = 0; i < 300; i++) rows.push([String(i), `line one\nline "two"${i % 3 === 0 ? '\n\nfour' : ''}`, r.pick(WORDS), '1.00'])
    multilineRows.push(...rows)
    writeCsv(join(data, 'csv-ml', `m${f}.csv`), [CSV_HEADER, ...rows])
  }
  // Text with path.
  for (let f = 0; f < 3; f++) {
    const path = join(data, 'text', `t${f}.txt`)
    const lines = Array.from({ length: 200 + f * 300 }, (_, i) => `${f}:${i} ${r.pick(WORDS)}`)
    mkdirSync(join(data, 'text'), { recursive: true })
    writeFileSync(path, lines.join(f === 2 ? '\r\n' : '\n') + (f === 0 ? '' : '\n'))
    textFiles.push(path)
  }
  // A JSONL file with a bad line far from the start (in a later split).
  const good = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ i }))
  good.splice(1776, 0, '{"i": 1776, oops}')
  mkdirSync(join(data, 'bad'), { recursive: true })
  writeFileSync(join(data, 'bad', 'b.jsonl'), good.join('\n') + '\n')
  // Long lines with a long common prefix (sampled keys are cut to a prefix), for sort.
  mkdirSync(join(data, 'long'), { recursive: true })
  writeFileSync(join(data, 'long', 'l.txt'), Array.from({ length: 300 }, () => 'p'.repeat(300) + String(r.int(1e6)).padStart(7, '0') + 'z'.repeat(r.int(50))).join('\n'))
  // A CSV whose header comes after blank lines, read in many splits.
  mkdirSync(join(data, 'csv-blank'), { recursive: true })
  writeFileSync(join(data, 'csv-blank', 'b.csv'), '\n\na,b\n' + Array.from({ length: 800 }, (_, i) => `${i},"v ${i}"`).join('\n') + '\n')
  // Empty input: a directory with one empty file.
  mkdirSync(join(data, 'empty'), { recursive: true })
  writeFileSync(join(data, 'empty', 'nothing.jsonl'), '')
  c = await startCluster({ workers: 3, slots: 1, dataDir: data })
}, 60_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

async function run(job: JobRequest, timeoutMs = 60_000): Promise<{ id: string; status: JobStatus; result: JobResult | null }> {
  const id = await cluster().client.submit({ split_bytes: SPLIT, partitions: 5, ...job })
  const status = await cluster().client.waitDone(id, { timeoutMs, pollMs: 50 })
  const result = status.state === 'SUCCEEDED' ? await cluster().client.result(id) : null
  return { id, status, result }
}

async function succeed(job: JobRequest): Promise<JobResult> {
  const { status, result } = await run(job)
  if (status.state !== 'SUCCEEDED' || result === null) throw new Error(`job ${status.state}: ${JSON.stringify(status.error)}`)
  return result
}

function collected(result: JobResult, sink: string): unknown[] {
  const s = result.sinks[sink]
  if (s?.op !== 'collect') throw new Error(`sink ${sink} is ${JSON.stringify(s)}`)
  return s.values
}

function counted(result: JobResult, sink: string): number {
  const s = result.sinks[sink]
  if (s?.op !== 'count') throw new Error(`sink ${sink} is ${JSON.stringify(s)}`)
  return s.value
}

const KV: NodeSpec = { id: 'kv', op: 'read_jsonl', path: 'kv' }
const PAIRS: NodeSpec = { id: 'pairs', op: 'map', input: 'kv', fn: 'r => [r.k, r.v]' }
const leftPairs = (): [unknown, number][] => left.map(r => [r.k, r.v])

/** group by canonical key: key text → [key, values] */
function groups<V>(pairs: readonly [unknown, V][]): Map<string, [unknown, V[]]> {
  const m = new Map<string, [unknown, V[]]>()
  for (const [k, v] of pairs) {
    const g = m.get(canon(k))
    if (g === undefined) m.set(canon(k), [k, [v]])
    else g[1].push(v)
  }
  return m
}

describe('sources', () => {
  test('read_jsonl over several files and splits (an empty file too): every record once', async () => {
    const result = await succeed({ nodes: [KV, { id: 'all', op: 'collect', input: 'kv' }, { id: 'n', op: 'count', input: 'kv' }] })
    expect(counted(result, 'n')).toBe(left.length)
    expect(bag(collected(result, 'all'))).toEqual(bag(left))
  })

  test('read_jsonl: a line that does not parse fails the job with file:line', async () => {
    const { status } = await run({ max_task_attempts: 1, nodes: [{ id: 'b', op: 'read_jsonl', path: 'bad' }, { id: 'n', op: 'count', input: 'b' }] })
    expect(status.state).toBe('FAILED')
    expect(status.error?.node_id).toBe('b')
    expect(status.error?.message).toContain('bad/b.jsonl:1777:')
    expect(status.error?.record).toContain('oops')
  })

  test('read_csv with a header: objects of strings, RFC 4180 quoting, CRLF, headers known past the first split', async () => {
    const result = await succeed({ nodes: [{ id: 'c', op: 'read_csv', path: 'csv/*.csv' }, { id: 'all', op: 'collect', input: 'c' }] })
    const want = csvRows.map(row => Object.fromEntries(CSV_HEADER.map((h, i) => [h, row[i]!])))
    expect(bag(collected(result, 'all'))).toEqual(bag(want))
  })

  test('read_csv without a header, and with another delimiter', async () => {
    const result = await succeed({ nodes: [
      { id: 'c', op: 'read_csv', path: 'csv', header: false }, { id: 'all', op: 'collect', input: 'c' },
      { id: 's', op: 'read_csv', path: 'csv-semi', delimiter: ';' }, { id: 'semi', op: 'collect', input: 's' },
    ] })
    expect(bag(collected(result, 'all'))).toEqual(bag([CSV_HEADER, CSV_HEADER, CSV_HEADER, ...csvRows]))
    expect(bag(collected(result, 'semi'))).toEqual(bag(csvRows.map(row => Object.fromEntries(CSV_HEADER.map((h, i) => [h, row[i]!])))))
  })

  test('read_csv multiline: quoted line breaks, each file whole in one task; without multiline it fails', async () => {
    const result = await succeed({ nodes: [{ id: 'm', op: 'read_csv', path: 'csv-ml', multiline: true }, { id: 'all', op: 'collect', input: 'm' }] })
    expect(bag(collected(result, 'all'))).toEqual(bag(multilineRows.map(row => Object.fromEntries(CSV_HEADER.map((h, i) => [h, row[i]!])))))
    const { status } = await run({ max_task_attempts: 1, nodes: [{ id: 'm', op: 'read_csv', path: 'csv-ml' }, { id: 'n', op: 'count', input: 'm' }] })
    expect(status.state).toBe('FAILED')
    expect(status.error?.message).toMatch(/csv-ml\/m\d\.csv:\d+: .*multiline/)
  })

  test('read_csv: the header is the first line that is not blank, in every split', async () => {
    const result = await succeed({ split_bytes: 1024, nodes: [{ id: 'c', op: 'read_csv', path: 'csv-blank' }, { id: 'all', op: 'collect', input: 'c' }] })
    expect(bag(collected(result, 'all'))).toEqual(bag(Array.from({ length: 800 }, (_, i) => ({ a: String(i), b: `v ${i}` }))))
  })

  test('read_text with_path: [path relative to the data dir, line]', async () => {
    const result = await succeed({ nodes: [{ id: 't', op: 'read_text', path: 'text/*.txt', with_path: true }, { id: 'all', op: 'collect', input: 't' }] })
    const want: [string, string][] = []
    for (const f of textFiles) for (const l of plainLines([f])) want.push([`text/${f.slice(f.lastIndexOf('/') + 1)}`, l])
    expect(bag(collected(result, 'all'))).toEqual(bag(want))
  })
})

describe('wide operators', () => {
  test('group_by_key: one group per key by value (1, "1" and ["a", 1] apart), all values in it', async () => {
    const result = await succeed({ nodes: [KV, PAIRS, { id: 'g', op: 'group_by_key', input: 'pairs' }, { id: 'all', op: 'collect', input: 'g' }] })
    const got = collected(result, 'all') as [unknown, number[]][]
    const want = groups(leftPairs())
    expect(got.length).toBe(want.size)
    expect(new Set(got.map(([k]) => canon(k))).size).toBe(got.length)
    for (const [k, vs] of got) expect([...vs].sort((a, b) => a - b)).toEqual([...want.get(canon(k))![1]].sort((a, b) => a - b))
  })

  test('reduce_by_key and distinct agree with plain loops', async () => {
    const result = await succeed({ nodes: [KV, PAIRS,
      { id: 'sum', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' }, { id: 'sums', op: 'collect', input: 'sum' },
      { id: 'keys', op: 'map', input: 'pairs', fn: '([k]) => k' },
      { id: 'd', op: 'distinct', input: 'keys', partitions: 17 }, { id: 'dk', op: 'collect', input: 'd' },
    ] })
    const want = [...groups(leftPairs()).values()].map(([k, vs]) => [k, vs.reduce((a, b) => a + b, 0)])
    expect(bag(collected(result, 'sums'))).toEqual(bag(want))
    expect(bag(collected(result, 'dk'))).toEqual(bag(want.map(([k]) => k)))
  })

  // Both inputs are small files: by default inner, left and right joins broadcast one side (a left
  // join its right side, a right join its left side) and shuffle nothing of the other; a full join
  // cannot; broadcast_bytes 0 makes every join a shuffle join.
  for (const [how, broadcast] of [['inner', true], ['inner', false], ['left', true], ['left', false], ['right', true], ['full', true]] as const) {
    test(`join ${how}${broadcast ? '' : ', never broadcast'}: one output per matching pair, null for a missing side`, async () => {
      const { status, result } = await run({ ...(broadcast ? {} : { broadcast_bytes: 0 }), nodes: [KV, PAIRS,
        { id: 'r', op: 'read_jsonl', path: 'right' },
        { id: 'rp', op: 'map', input: 'r', fn: 'x => [x.k, x.w]' },
        { id: 'j', op: 'join', inputs: ['pairs', 'rp'], how },
        { id: 'all', op: 'collect', input: 'j' },
      ] })
      if (status.state !== 'SUCCEEDED' || result === null) throw new Error(`job ${status.state}: ${JSON.stringify(status.error)}`)
      // A broadcast join has no stage of its own: the join runs in the left input's stage.
      const joinStage = status.stages.some(st => st.node_ids[0] === 'j')
      expect(joinStage).toBe(!broadcast || how === 'full')
      const want: unknown[] = []
      const lg = groups(leftPairs())
      const rg = groups(right.map(x => [x.k, x.w] as [unknown, string]))
      for (const [ck, [k, ls]] of lg) {
        const rs = rg.get(ck)?.[1] ?? []
        if (rs.length > 0) for (const l of ls) for (const r of rs) want.push([k, [l, r]])
        else if (how === 'left' || how === 'full') for (const l of ls) want.push([k, [l, null]])
      }
      if (how === 'right' || how === 'full') {
        for (const [ck, [k, rs]] of rg) if (!lg.has(ck)) for (const r of rs) want.push([k, [null, r]])
      }
      expect(want.length).toBeGreaterThan(1000)
      expect(bag(collected(result, 'all'))).toEqual(bag(want))
    })
  }

  test('sort of mixed keys: numbers numerically, then strings, then arrays; parts sorted, disjoint and complete', async () => {
    const result = await succeed({ nodes: [KV, PAIRS,
      { id: 's', op: 'sort', input: 'pairs', partitions: 7 },
      { id: 'w', op: 'write_jsonl', input: 's', path: 'out/sorted', overwrite: true },
      { id: 'all', op: 'collect', input: 's' },
    ] })
    const parts = readPartsByFile(join(data, 'out/sorted'))
    expect(parts.length).toBe(7)
    expect(parts.filter(p => p.length > 0).length).toBeGreaterThanOrEqual(4)   // the sampled ranges spread the keys
    expect(sortProblems(parts, r => (r as unknown[])[0], false, leftPairs())).toEqual([])
    // collect holds the same total order
    expect(sortProblems([collected(result, 'all')], r => (r as unknown[])[0], false, leftPairs())).toEqual([])
    const numbers = collected(result, 'all').map(r => (r as unknown[])[0]).filter(k => typeof k === 'number') as number[]
    expect(numbers).toContain(10)
    expect(numbers.indexOf(9)).toBeLessThan(numbers.indexOf(10))     // 9 < 10 numerically, not as text
  })

  test('sort descending with a key function: part 0 holds the largest keys', async () => {
    await succeed({ nodes: [KV,
      { id: 's', op: 'sort', input: 'kv', key: 'r => r.v', descending: true, partitions: 4 },
      { id: 'w', op: 'write_jsonl', input: 's', path: 'out/sorted-desc', overwrite: true },
    ] })
    const parts = readPartsByFile(join(data, 'out/sorted-desc'))
    expect(sortProblems(parts, r => (r as Rec).v, true, left)).toEqual([])
    const first = parts.find(p => p.length > 0)!
    expect((first[0] as Rec).v).toBe(Math.max(...left.map(r => r.v)))
  })

  test('sort of one heavy key and of plain strings (text lines)', async () => {
    await succeed({ nodes: [
      { id: 't', op: 'read_text', path: 'text' },
      { id: 'hot', op: 'map', input: 't', fn: 'l => ["same", l]' },
      { id: 's1', op: 'sort', input: 'hot' },
      { id: 'w1', op: 'write_jsonl', input: 's1', path: 'out/sorted-hot', overwrite: true },
      { id: 's2', op: 'sort', input: 't' },
      { id: 'w2', op: 'write_jsonl', input: 's2', path: 'out/sorted-text', overwrite: true },
    ] })
    const lines = plainLines(textFiles)
    const long = plainLines([join(data, 'long', 'l.txt')])
    await succeed({ nodes: [{ id: 't', op: 'read_text', path: 'long' }, { id: 's', op: 'sort', input: 't', partitions: 3 },
      { id: 'w', op: 'write_jsonl', input: 's', path: 'out/sorted-long', overwrite: true }] })
    expect(sortProblems(readPartsByFile(join(data, 'out/sorted-long')), r => r, false, long)).toEqual([])
    expect(sortProblems(readPartsByFile(join(data, 'out/sorted-hot')), r => (r as unknown[])[0], false, lines.map(l => ['same', l]))).toEqual([])
    expect(sortProblems(readPartsByFile(join(data, 'out/sorted-text')), r => r, false, lines)).toEqual([])
  })
})

describe('union and general DAGs', () => {
  test('union of two sources in different stages, then a sink and a wide op; write parts numbered without gaps', async () => {
    const result = await succeed({ nodes: [KV, PAIRS,
      { id: 'r', op: 'read_jsonl', path: 'right' },
      { id: 'rp', op: 'map', input: 'r', fn: 'x => [x.k, 1]' },
      { id: 'u', op: 'union', inputs: ['pairs', 'rp'] },
      { id: 'w', op: 'write_jsonl', input: 'u', path: 'out/union', overwrite: true },
      { id: 'n', op: 'count', input: 'u' },
      { id: 'all', op: 'collect', input: 'u' },
      { id: 'cnt', op: 'map_values', input: 'u', fn: 'v => 1' },
      { id: 'per_key', op: 'reduce_by_key', input: 'cnt', fn: '(a, b) => a + b' },
      { id: 'pk', op: 'collect', input: 'per_key' },
    ] })
    const want = [...leftPairs(), ...right.map(x => [x.k, 1])]
    expect(counted(result, 'n')).toBe(want.length)
    expect(bag(collected(result, 'all'))).toEqual(bag(want))
    const dir = join(data, 'out/union')
    const parts = partFiles(dir)
    expect(parts).toEqual(parts.map((_, i) => `part-${String(i).padStart(5, '0')}`))
    expect(readdirSync(dir).sort()).toEqual([...parts, '_SUCCESS'].sort())
    expect(bag(readJsonParts(dir))).toEqual(bag(want))
    const sink = result.sinks.w
    expect(sink).toEqual({ op: 'write_jsonl', path: 'out/union', files: parts.length, records: want.length })
    const perKey = [...groups(want as [unknown, unknown][]).values()].map(([k, vs]) => [k, vs.length])
    expect(bag(collected(result, 'pk'))).toEqual(bag(perKey))
  })

  test('a diamond, a node feeding several consumers, a join of one source with itself, a wide op after a wide op', async () => {
    const result = await succeed({ nodes: [KV, PAIRS,
      { id: 'even', op: 'filter', input: 'pairs', fn: '([k, v]) => v % 2 === 0' },
      { id: 'odd', op: 'filter', input: 'pairs', fn: '([k, v]) => v % 2 === 1' },
      { id: 'back', op: 'union', inputs: ['even', 'odd'] },                           // diamond
      { id: 'n_back', op: 'count', input: 'back' },
      { id: 'self', op: 'join', inputs: ['even', 'odd'], how: 'full' },               // one source, both sides
      { id: 'self_n', op: 'count', input: 'self' },
      { id: 'sums', op: 'reduce_by_key', input: 'back', fn: '(a, b) => a + b' },
      { id: 'by_sum', op: 'map', input: 'sums', fn: '([k, s]) => [s % 10, k]' },
      { id: 'g', op: 'group_by_key', input: 'by_sum' },                               // wide after wide
      { id: 'sizes', op: 'map_values', input: 'g', fn: 'ks => ks.length' },
      { id: 'gs', op: 'collect', input: 'sizes' },
      { id: 'srt', op: 'sort', input: 'sums' },                                       // and a sort after it
      { id: 'ss', op: 'collect', input: 'srt' },
    ] })
    const pairs = leftPairs()
    expect(counted(result, 'n_back')).toBe(pairs.length)
    const evens = groups(pairs.filter(([, v]) => v % 2 === 0))
    const odds = groups(pairs.filter(([, v]) => v % 2 === 1))
    let selfN = 0
    for (const [ck, [, es]] of evens) selfN += odds.has(ck) ? es.length * odds.get(ck)![1].length : es.length
    for (const [ck, [, os]] of odds) if (!evens.has(ck)) selfN += os.length
    expect(counted(result, 'self_n')).toBe(selfN)
    const sums = [...groups(pairs).values()].map(([k, vs]) => [k, vs.reduce((a, b) => a + b, 0)] as [unknown, number])
    const bySum = new Map<number, number>()
    for (const [, s] of sums) bySum.set(s % 10, (bySum.get(s % 10) ?? 0) + 1)
    expect(bag(collected(result, 'gs'))).toEqual(bag([...bySum]))
    expect(sortProblems([collected(result, 'ss')], r => (r as unknown[])[0], false, sums)).toEqual([])
  })

  test('every record read once: a source feeding three branches in one stage', async () => {
    const { id, status, result } = await run({ nodes: [KV,
      { id: 'a', op: 'count', input: 'kv' },
      { id: 'b', op: 'filter', input: 'kv', fn: 'r => r.k === "hot"' },
      { id: 'bn', op: 'count', input: 'b' },
      { id: 'c', op: 'map', input: 'kv', fn: 'r => [r.tag, 1]' },
      { id: 'cr', op: 'reduce_by_key', input: 'c', fn: '(x, y) => x + y' },
      { id: 'cc', op: 'collect', input: 'cr' },
    ] })
    expect(status.state).toBe('SUCCEEDED')
    expect(counted(result!, 'a')).toBe(left.length)
    expect(counted(result!, 'bn')).toBe(left.filter(r => r.k === 'hot').length)
    const tags = new Map<string, number>()
    for (const r of left) tags.set(r.tag, (tags.get(r.tag) ?? 0) + 1)
    expect(bag(collected(result!, 'cc'))).toEqual(bag([...tags]))
    // one stage reads the input: its tasks read every record exactly once
    const tasks = await cluster().client.tasks(id)
    const sourceStage = status.stages.find(s => s.node_ids[0] === 'kv')!
    const read = tasks.filter(t => t.stage_id === sourceStage.stage_id && t.state === 'SUCCEEDED').reduce((n, t) => n + t.records_in, 0)
    expect(read).toBe(left.length)
    expect(status.stages.filter(s => s.node_ids[0] === 'kv')).toHaveLength(1)
  })
})

describe('empty inputs and empty partitions', () => {
  test('every operator over an empty input gives empty results, and a write sink gives just _SUCCESS', async () => {
    const e: NodeSpec = { id: 'e', op: 'read_jsonl', path: 'empty' }
    const result = await succeed({ nodes: [e,
      { id: 'p', op: 'map', input: 'e', fn: 'r => [r.k, r.v]' },
      { id: 'g', op: 'group_by_key', input: 'p' }, { id: 'gc', op: 'collect', input: 'g' },
      { id: 'd', op: 'distinct', input: 'p' }, { id: 'dn', op: 'count', input: 'd' },
      { id: 's', op: 'sort', input: 'p' }, { id: 'sw', op: 'write_jsonl', input: 's', path: 'out/empty-sort', overwrite: true },
      { id: 'j', op: 'join', inputs: ['p', 'p'], how: 'full' }, { id: 'jn', op: 'count', input: 'j' },
      { id: 'u', op: 'union', inputs: ['p', 'p'] }, { id: 'uw', op: 'write_text', input: 'u', path: 'out/empty-union', overwrite: true },
    ] })
    expect(collected(result, 'gc')).toEqual([])
    expect(counted(result, 'dn')).toBe(0)
    expect(counted(result, 'jn')).toBe(0)
    expect(readJsonParts(join(data, 'out/empty-sort'))).toEqual([])
    expect(partFiles(join(data, 'out/empty-sort'))).toHaveLength(5)        // one empty part per sort partition
    expect(readdirSync(join(data, 'out/empty-union'))).toEqual(['_SUCCESS'])  // no split, no part
    expect(result.sinks.uw).toEqual({ op: 'write_text', path: 'out/empty-union', files: 0, records: 0 })
  })

  test('more partitions than keys: empty reduce partitions write empty parts', async () => {
    await succeed({ nodes: [KV,
      { id: 'hot', op: 'filter', input: 'kv', fn: 'r => r.k === "hot"' },
      { id: 'p', op: 'map', input: 'hot', fn: 'r => [r.k, r.v]' },
      { id: 'g', op: 'reduce_by_key', input: 'p', fn: '(a, b) => a + b', partitions: 9 },
      { id: 'w', op: 'write_jsonl', input: 'g', path: 'out/one-key', overwrite: true },
    ] })
    const parts = readPartsByFile(join(data, 'out/one-key'))
    expect(parts).toHaveLength(9)
    expect(parts.filter(p => p.length > 0)).toHaveLength(1)
    expect(parts.flat()).toEqual([['hot', left.filter(r => r.k === 'hot').reduce((n, r) => n + r.v, 0)]])
    expect(existsSync(join(data, 'out/one-key/_SUCCESS'))).toBe(true)
  })
})
