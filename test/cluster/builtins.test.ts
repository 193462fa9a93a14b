// Built-in operators on a real cluster (master + 2 worker processes): a word count, a grep, a join
// on a CSV field with a built-in sum, and a sort by a byte range, each written with built-ins only
// (plus a UDF where the job needs one), over generated data cut into several splits per file. Every
// result is compared with a plain loop over the same files, never with the engine's output.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest } from '../../src/api/jobs'
import { ROOT, generateText, killAll, plainLines, readParts, startCluster, tempDir, textFiles, type Cluster } from '../support/cluster'

let c: Cluster | undefined
let data = ''

const cluster = (): Cluster => {
  if (c === undefined) throw new Error('the cluster did not start (see beforeAll)')
  return c
}

const gen = (script: string, args: string[]): void => {
  const r = Bun.spawnSync(['node', join(ROOT, 'bench/gen', script), ...args], { stdout: 'pipe', stderr: 'pipe', timeout: 60_000 })
  if (r.exitCode !== 0) throw new Error(`${script} failed: ${r.stderr.toString()}`)
}

beforeAll(async () => {
  data = tempDir('ms-builtins-')
  generateText(join(data, 'text'), 6, 3, 11)
  gen('gen-join.mjs', ['--out', join(data, 'join'), '--orders', '60000', '--customers', '3000', '--seed', '5'])
  gen('gen-sort.mjs', ['--out', join(data, 'sort'), '--mb', '4', '--files', '2', '--seed', '5'])
  c = await startCluster({ workers: 2, slots: 1, dataDir: data })
}, 90_000)

afterAll(async () => {
  await c?.stop()
  killAll()
})

async function run(job: JobRequest): Promise<unknown> {
  const id = await cluster().client.submit({ split_bytes: 512 * 1024, ...job })
  const status = await cluster().client.waitDone(id, { timeoutMs: 90_000, pollMs: 100 })
  expect(status.error).toBeNull()
  expect(status.state).toBe('SUCCEEDED')
  return (await cluster().client.result(id)).sinks
}

describe('built-ins on a 2-worker cluster', () => {
  test('a cached built-in (words, cache memory) feeding a built-in count and a UDF count equals a plain loop', async () => {
    const sinks = await run({ nodes: [
      { id: 'lines', op: 'read_text', path: 'text/*.txt' },
      { id: 'words', op: 'words', input: 'lines', cache: 'memory' },
      { id: 'counts', op: 'count_by_value', input: 'words', partitions: 3 },
      { id: 'top', op: 'collect', input: 'counts' },
      { id: 'n', op: 'count', input: 'words' },
    ] }) as { top: { values: [string, number][] }; n: { value: number } }
    const want = new Map<string, number>()
    let total = 0
    for (const line of plainLines(textFiles(join(data, 'text')))) for (const w of line.toLowerCase().match(/[a-z0-9]+/g) ?? []) { want.set(w, (want.get(w) ?? 0) + 1); total++ }
    expect(sinks.n.value).toBe(total)
    expect(new Map(sinks.top.values)).toEqual(want)
    expect(sinks.top.values.length).toBe(want.size)
  })

  test('word count: read_text → words → count_by_value equals a plain loop', async () => {
    await run({ nodes: [
      { id: 'lines', op: 'read_text', path: 'text/*.txt' },
      { id: 'words', op: 'words', input: 'lines' },
      { id: 'counts', op: 'count_by_value', input: 'words', partitions: 3 },
      { id: 'out', op: 'write_jsonl', input: 'counts', path: 'out/wc' },
    ] })
    const want = new Map<string, number>()
    for (const line of plainLines(textFiles(join(data, 'text')))) for (const w of line.toLowerCase().match(/[a-z0-9]+/g) ?? []) want.set(w, (want.get(w) ?? 0) + 1)
    const got = new Map<string, number>()
    for (const line of readParts(join(data, 'out', 'wc'))) {
      const [w, n] = JSON.parse(line) as [string, number]
      expect(got.has(w)).toBe(false)
      got.set(w, n)
    }
    expect(got.size).toBe(want.size)
    expect(want.size).toBeGreaterThan(100)
    for (const [w, n] of want) expect(got.get(w)).toBe(n)
  }, 120_000)

  test('grep: matching lines and their count equal a plain loop', async () => {
    const pattern = '\\bth[a-z]*ing\\b'
    const sinks = await run({ nodes: [
      { id: 'lines', op: 'read_text', path: 'text/*.txt' },
      { id: 'm', op: 'grep', input: 'lines', pattern, flags: 'i' },
      { id: 'n', op: 'count', input: 'm' },
      { id: 'some', op: 'collect', input: 'm' },
    ] }) as { n: { value: number }; some: { values: string[] } }
    const re = new RegExp(pattern, 'i')
    const want = plainLines(textFiles(join(data, 'text'))).filter(l => re.test(l))
    expect(want.length).toBeGreaterThan(0)
    expect(sinks.n.value).toBe(want.length)
    expect(sinks.some.values).toEqual(want)
  }, 120_000)

  test('join on a field with a built-in sum equals a plain loop', async () => {
    const sinks = await run({ broadcast_bytes: 0, nodes: [
      { id: 'customers', op: 'read_csv', path: 'join/customers.csv' },
      { id: 'orders', op: 'read_csv', path: 'join/orders.csv' },
      { id: 'kc', op: 'key_by_field', input: 'customers', field: 'customer_id' },
      { id: 'ko', op: 'key_by_field', input: 'orders', field: 'customer_id' },
      { id: 'joined', op: 'join', inputs: ['kc', 'ko'] },
      { id: 'cents', op: 'map', input: 'joined', fn: '([id, [c, o]]) => [c.country, Math.round(Number(o.amount) * 100)]' },
      { id: 'totals', op: 'agg_by_key', input: 'cents', agg: 'sum' },
      { id: 'out', op: 'collect', input: 'totals' },
    ] }) as { out: { values: [string, number][] } }
    const rows = (f: string): string[][] => readFileSync(join(data, 'join', f), 'utf8').trim().split('\n').slice(1).map(l => l.split(','))
    const country = new Map(rows('customers.csv').map(r => [r[0]!, r.slice(2).join(',')]))
    const want = new Map<string, number>()
    for (const [, cust, amount] of rows('orders.csv')) {
      const k = country.get(cust!)
      if (k !== undefined) want.set(k, (want.get(k) ?? 0) + Math.round(Number(amount) * 100))
    }
    expect(new Map(sinks.out.values)).toEqual(want)
    expect(want.size).toBeGreaterThan(1)
  }, 120_000)

  test('read_csv with columns and types (cents) → key_by_field → join → sum equals a plain loop, to the cent', async () => {
    const sinks = await run({ broadcast_bytes: 0, nodes: [
      { id: 'customers', op: 'read_csv', path: 'join/customers.csv', columns: ['customer_id', 'country'] },
      { id: 'orders', op: 'read_csv', path: 'join/orders.csv', columns: ['customer_id', 'amount'], types: { amount: 'cents' } },
      { id: 'kc', op: 'key_by_field', input: 'customers', field: 'customer_id' },
      { id: 'ko', op: 'key_by_field', input: 'orders', field: 'customer_id' },
      { id: 'joined', op: 'join', inputs: ['kc', 'ko'] },
      { id: 'cents', op: 'map', input: 'joined', fn: '([id, [c, o]]) => [c.country, o.amount]' },
      { id: 'totals', op: 'agg_by_key', input: 'cents', agg: 'sum' },
      { id: 'out', op: 'collect', input: 'totals' },
      { id: 'some', op: 'collect', input: 'orders', limit: 3 },
    ] }) as { out: { values: [string, number][] }; some: { values: object[] } }
    const rows = (f: string): string[][] => readFileSync(join(data, 'join', f), 'utf8').trim().split('\n').slice(1).map(l => l.split(','))
    const country = new Map(rows('customers.csv').map(r => [r[0]!, r.slice(2).join(',')]))
    const want = new Map<string, number>()
    for (const [, cust, amount] of rows('orders.csv')) {
      const k = country.get(cust!)
      const [whole, frac = ''] = amount!.split('.')
      if (k !== undefined) want.set(k, (want.get(k) ?? 0) + Number(whole) * 100 + Number(frac.padEnd(2, '0')))
    }
    expect(new Map(sinks.out.values)).toEqual(want)
    expect(want.size).toBeGreaterThan(1)
    for (const r of sinks.some.values) {
      expect(Object.keys(r)).toEqual(['customer_id', 'amount'])
      expect(Number.isInteger((r as { amount: unknown }).amount)).toBe(true)
    }
  }, 120_000)

  test('a typed column holding a bad value fails the job naming the node, file, line and value', async () => {
    const { writeFileSync, mkdirSync } = await import('node:fs')
    mkdirSync(join(data, 'bad'), { recursive: true })
    writeFileSync(join(data, 'bad', 'o.csv'), 'id,amount\n1,2.50\n2,12.3.4\n')
    const id = await cluster().client.submit({ max_task_attempts: 1, nodes: [
      { id: 'orders', op: 'read_csv', path: 'bad/o.csv', types: { amount: 'cents' } },
      { id: 'n', op: 'count', input: 'orders' },
    ] })
    const status = await cluster().client.waitDone(id, { timeoutMs: 60_000, pollMs: 100 })
    expect(status.state).toBe('FAILED')
    expect(status.error?.node_id).toBe('orders')
    expect(status.error?.message).toContain('bad/o.csv:3')
    expect(status.error?.message).toContain('"12.3.4"')
  }, 90_000)

  test('sort by a byte range equals a plain sort of the lines', async () => {
    await run({ nodes: [
      { id: 'records', op: 'read_text', path: 'sort/*.dat' },
      { id: 'sorted', op: 'sort', input: 'records', by: { slice: [0, 10] }, partitions: 3 },
      { id: 'out', op: 'write_text', input: 'sorted', path: 'out/sorted' },
    ] })
    const files = readdirSync(join(data, 'sort')).filter(f => f.endsWith('.dat')).sort().map(f => join(data, 'sort', f))
    const want = plainLines(files).sort((a, b) => a.slice(0, 10) < b.slice(0, 10) ? -1 : a.slice(0, 10) > b.slice(0, 10) ? 1 : 0)
    const got = readParts(join(data, 'out', 'sorted'))
    expect(got.length).toBe(want.length)
    expect(got.map(l => l.slice(0, 10))).toEqual(want.map(l => l.slice(0, 10)))
    expect([...got].sort()).toEqual([...want].sort())
  }, 120_000)
})
