// The shapes of data that stress a worker's memory, for the memory matrix test and for measuring
// by hand: deterministic inputs of a chosen size, the jobs over them, and plain-loop references.
//   words: lines of 10 words out of millions of distinct ones (reduce_by_key, distinct)
//   hot:   `key\tr<n>|padding`, 80% of the records under the key "hot" (group_by_key, join)
//   right: `key\t<n>`, the key "hot" a few times and many keys that match nothing (join)
//   orders: `id,customer,amount` with a few orders per customer (self-join)
//   long:  lines of 1 to 3 KB with a unique 14-character prefix (sort of long records)
// Run as a script to measure the peak RSS of each shape on a real cluster:
//   npx bun test/support/memory-shapes.ts --mb 640 --max-mem 32MiB [--binary dist/minispark] [--shapes a,b]
//     [--inputs words,hot,right,orders,long]   (the inputs to write; the shapes' by default all)
import { closeSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest } from '../../src/api/jobs'

/** A small, fast, seeded generator: the same files on every machine. */
function rng(seed: number): () => number {
  let s = (seed * 0x9e3779b1 + 0x6d2b79f5) >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const FILES = 4

// Written and read in pieces, so that inputs of many GiB (20x a 1 GiB budget) fit in neither one
// string nor this process's memory.
const PIECE_CHARS = 16 << 20

function writeFiles(dir: string, mb: number, seed: number, line: (r: () => number, i: number) => string): void {
  mkdirSync(dir, { recursive: true })
  const per = Math.ceil((mb * 1024 * 1024) / FILES)
  let i = 0
  for (let f = 0; f < FILES; f++) {
    const r = rng(seed + f)
    const fd = openSync(join(dir, `part-${f}.txt`), 'w')
    try {
      let piece = ''
      let bytes = 0
      while (bytes < per) {
        const l = line(r, i++)
        piece += l + '\n'
        bytes += l.length + 1
        if (piece.length >= PIECE_CHARS) { writeAll(fd, piece); piece = '' }
      }
      writeAll(fd, piece)
    } finally {
      closeSync(fd)
    }
  }
}

function writeAll(fd: number, text: string): void {
  const b = Buffer.from(text)
  for (let at = 0; at < b.length;) at += writeSync(fd, b, at)
}

export const INPUTS: readonly string[] = ['words', 'hot', 'right', 'orders', 'long']

/** Distinct words in the word files: millions, fewer for small inputs. */
export const distinctWords = (mb: number): number => Math.min(4_000_000, Math.max(1000, Math.floor(mb * 1024 * 1024 / 9 / 3)))
const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'

/** The inputs of the shapes; `only` names the ones to write (all by default): at 20 GiB an input,
 *  a run of one shape makes only what it reads. */
export function generate(dataDir: string, mb: number, only: readonly string[] = INPUTS): void {
  const want = (name: string): boolean => only.includes(name)
  const d = distinctWords(mb)
  if (want('words')) writeFiles(join(dataDir, 'words'), mb, 1, r => {
    const ws: string[] = []
    for (let k = 0; k < 10; k++) ws.push(`w${Math.floor(r() * d).toString(36)}`)
    return ws.join(' ')
  })
  if (want('hot')) writeFiles(join(dataDir, 'hot'), mb, 2, (r, i) =>
    `${r() < 0.8 ? 'hot' : `k${Math.floor(r() * 200_000)}`}\tr${i}|${PAD.slice(0, 20 + Math.floor(r() * 40))}`)
  // The right side of the hot join: as large as the left, so that neither is broadcast and the
  // smaller one is still too large for a hash table; "hot" three times.
  if (want('right')) writeFiles(join(dataDir, 'right'), mb, 3, (r, i) =>
    i < 3 ? `hot\t${i + 1}` : i % 10 === 0 ? `k${Math.floor(r() * 200_000)}\t${i % 1000}` : `x${i}\t${i % 1000}|${PAD.slice(0, 30 + Math.floor(r() * 30))}`)
  // Self-join: about 500 000 orders at the 640 MB scale, 5 per customer on average.
  const orders = Math.max(5000, Math.floor(mb * 800))
  if (want('orders')) writeFiles(join(dataDir, 'orders'), Math.max(1, Math.floor(orders * 30 / 1024 / 1024)), 4, (r, i) =>
    `o${i},c${Math.floor(r() * orders / 5)},${1 + Math.floor(r() * 100)}`)
  if (want('long')) writeFiles(join(dataDir, 'long'), mb, 5, (r, i) => {
    const len = 1000 + Math.floor(r() * 2000)
    let s = Math.floor(r() * 36 ** 6).toString(36).padStart(6, '0') + String(i).padStart(8, '0')
    while (s.length < len) s += PAD
    return s.slice(0, len)
  })
}

// ---- jobs ----

const split = 'l => { const t = l.indexOf("\\t"); return [l.slice(0, t), l.slice(t + 1)] }'
const num = 'v => Number(v.slice(v[0] === "r" ? 1 : 0, v.indexOf("|") < 0 ? v.length : v.indexOf("|")))'

export type Shape = { name: string; job: (out: string) => JobRequest; check: (dataDir: string, out: string, result: (node: string) => unknown[]) => void }

const base = { partitions: 4, broadcast_bytes: 0 }

export const SHAPES: Shape[] = [
  {
    name: 'reduce_by_key',
    job: out => ({ name: 'words', ...base, nodes: [
      { id: 'lines', op: 'read_text', path: 'words' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'out', op: 'write_jsonl', input: 'counts', path: `${out}/counts`, overwrite: true },
    ] }),
    check: (dataDir, out) => expectSameMap(readJsonl(join(dataDir, out, 'counts')), plainWordCount(dataDir)),
  },
  {
    name: 'distinct',
    job: out => ({ name: 'distinct', ...base, nodes: [
      { id: 'lines', op: 'read_text', path: 'words' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
      { id: 'uniq', op: 'distinct', input: 'words' },
      { id: 'out', op: 'write_text', input: 'uniq', path: `${out}/distinct`, overwrite: true },
    ] }),
    check: (dataDir, out) => {
      const got = readLines(join(dataDir, out, 'distinct'))
      const want = plainWordCount(dataDir)
      expectEqual('distinct records', got.length, want.size)
      for (const w of got) if (!want.has(w)) throw new Error(`distinct gave ${w}, not in the input`)
    },
  },
  {
    name: 'group_by_key hot',
    job: out => ({ name: 'group', ...base, nodes: [
      { id: 'lines', op: 'read_text', path: 'hot' },
      { id: 'pairs', op: 'map', input: 'lines', fn: split },
      { id: 'groups', op: 'group_by_key', input: 'pairs' },
      { id: 'sums', op: 'map', input: 'groups', fn: `([k, vs]) => { const n = ${num}; let s = 0; for (const v of vs) s += n(v); return [k, [vs.length, s]] }` },
      { id: 'out', op: 'write_jsonl', input: 'sums', path: `${out}/group`, overwrite: true },
    ] }),
    check: (dataDir, out) => {
      const want = new Map<string, [number, number]>()
      for (const l of inputLines(join(dataDir, 'hot'))) {
        const t = l.indexOf('\t')
        const e = sumsOf(want, l.slice(0, t))
        e[0]++
        e[1] += Number(l.slice(t + 2, l.indexOf('|')))
      }
      expectSameMap(readJsonl(join(dataDir, out, 'group')), want)
    },
  },
  {
    name: 'join hot',
    job: out => ({ name: 'join', ...base, nodes: [
      { id: 'l', op: 'read_text', path: 'hot' },
      { id: 'lp', op: 'map', input: 'l', fn: split },
      { id: 'r', op: 'read_text', path: 'right' },
      { id: 'rp', op: 'map', input: 'r', fn: split },
      { id: 'j', op: 'join', inputs: ['lp', 'rp'] },
      // The left side's numbers taken modulo 1000, as the right side's are: the hot key's sum of
      // products stays an exact integer at any size (past 2^53 the order of the additions would tell).
      { id: 'prod', op: 'map', input: 'j', fn: `([k, [a, b]]) => { const n = ${num}; return [k, [1, (n(a) % 1000) * n(b)]] }` },
      { id: 'sum', op: 'reduce_by_key', input: 'prod', fn: '(a, b) => [a[0] + b[0], a[1] + b[1]]' },
      { id: 'out', op: 'write_jsonl', input: 'sum', path: `${out}/join`, overwrite: true },
    ] }),
    check: (dataDir, out) => {
      // Only keys of the left side can match: the right one is read against them, never held whole
      // (at 4 GiB its distinct keys alone outgrow a test's memory).
      const side = (dir: string, only?: Map<string, unknown>): Map<string, [number, number]> => {
        const m = new Map<string, [number, number]>()
        for (const l of inputLines(join(dataDir, dir))) {
          const t = l.indexOf('\t')
          const k = l.slice(0, t)
          if (only !== undefined && !only.has(k)) continue
          const v = l.slice(t + 1)
          const e = sumsOf(m, k)
          e[0]++
          e[1] += Number(v.slice(v[0] === 'r' ? 1 : 0, v.indexOf('|') < 0 ? v.length : v.indexOf('|'))) % 1000
        }
        return m
      }
      const l = side('hot')
      const r = side('right', l)
      const want = new Map<string, [number, number]>()
      for (const [k, a] of l) { const b = r.get(k); if (b !== undefined) want.set(k, [a[0] * b[0], a[1] * b[1]]) }
      expectSameMap(readJsonl(join(dataDir, out, 'join')), want)
    },
  },
  {
    name: 'self-join',
    job: out => ({ name: 'self-join', ...base, nodes: [
      { id: 'o', op: 'read_text', path: 'orders' },
      { id: 'byc', op: 'map', input: 'o', fn: 'l => { const f = l.split(","); return [f[1], Number(f[2])] }' },
      { id: 'j', op: 'join', inputs: ['byc', 'byc'] },
      { id: 'prod', op: 'map_values', input: 'j', fn: '([a, b]) => [1, a * b]' },
      { id: 'sum', op: 'reduce_by_key', input: 'prod', fn: '(a, b) => [a[0] + b[0], a[1] + b[1]]' },
      { id: 'out', op: 'write_jsonl', input: 'sum', path: `${out}/self`, overwrite: true },
    ] }),
    check: (dataDir, out) => {
      const m = new Map<string, [number, number]>()
      for (const l of inputLines(join(dataDir, 'orders'))) {
        const f = l.split(',')
        const e = sumsOf(m, f[1]!)
        e[0]++
        e[1] += Number(f[2])
      }
      const want = new Map<string, [number, number]>()
      for (const [k, [n, s]] of m) want.set(k, [n * n, s * s])
      expectSameMap(readJsonl(join(dataDir, out, 'self')), want)
    },
  },
  {
    name: 'sort long',
    job: out => ({ name: 'sort', ...base, nodes: [
      { id: 'recs', op: 'read_text', path: 'long' },
      { id: 'sorted', op: 'sort', input: 'recs', key: 'r => r.slice(0, 14)' },
      { id: 'out', op: 'write_text', input: 'sorted', path: `${out}/sort`, overwrite: true },
    ] }),
    check: (dataDir, out) => {
      const got = readLines(join(dataDir, out, 'sort'))
      const want = [...inputLines(join(dataDir, 'long'))]
      want.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      expectEqual('sorted records', got.length, want.length)
      for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) throw new Error(`sort: record ${i} differs`)
    },
  },
  {
    name: 'mix',
    job: out => ({ name: 'mix', ...base, nodes: [
      { id: 'lines', op: 'read_text', path: 'words' },
      { id: 'words', op: 'flat_map', input: 'lines', fn: 'l => l.split(" ")' },
      { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
      { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
      { id: 'ranked', op: 'sort', input: 'counts', key: '([w, n]) => [-n, w]' },
      { id: 'out', op: 'write_jsonl', input: 'ranked', path: `${out}/ranked`, overwrite: true },
      { id: 'hl', op: 'read_text', path: 'hot' },
      { id: 'hp', op: 'map', input: 'hl', fn: split },
      { id: 'groups', op: 'group_by_key', input: 'hp' },
      { id: 'sizes', op: 'map_values', input: 'groups', fn: 'vs => vs.length' },
      { id: 'gout', op: 'write_jsonl', input: 'sizes', path: `${out}/sizes`, overwrite: true },
      { id: 'recs', op: 'read_text', path: 'long' },
      { id: 'sorted', op: 'sort', input: 'recs', key: 'r => r.slice(0, 14)' },
      { id: 'n', op: 'count', input: 'sorted' },
    ] }),
    check: (dataDir, out, result) => {
      const got = readJsonl(join(dataDir, out, 'ranked'))
      const want = [...plainWordCount(dataDir)].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      expectEqual('ranked words', got.length, want.length)
      for (let i = 0; i < want.length; i++) if (got[i]![0] !== want[i]![0] || got[i]![1] !== want[i]![1]) throw new Error(`mix: rank ${i} is ${JSON.stringify(got[i])}, not ${JSON.stringify(want[i])}`)
      const sizes = new Map<string, number>()
      for (const l of inputLines(join(dataDir, 'hot'))) countKey(sizes, l.slice(0, l.indexOf('\t')))
      expectSameMap(readJsonl(join(dataDir, out, 'sizes')), sizes)
      expectEqual('sorted long records', result('n')[0], countLines(join(dataDir, 'long')))
    },
  },
]

// ---- plain references ----

/** The lines of every file of an input folder, read a piece at a time. */
function* inputLines(dir: string): Generator<string> {
  for (const f of readdirSync(dir).sort()) {
    const fd = openSync(join(dir, f), 'r')
    try {
      const buf = Buffer.alloc(PIECE_CHARS)
      const text = new TextDecoder()
      let rest = ''
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) {
        const lines = (rest + text.decode(buf.subarray(0, n), { stream: true })).split('\n')
        rest = lines.pop()!
        for (const l of lines) if (l !== '') yield l
      }
      if (rest !== '') yield rest
    } finally {
      closeSync(fd)
    }
  }
}

function countLines(dir: string): number {
  let n = 0
  for (const _ of inputLines(dir)) n++
  return n
}

function readLines(dir: string): string[] {
  const out: string[] = []
  for (const f of readdirSync(dir).filter(f => f.startsWith('part-')).sort()) for (const l of readFileSync(join(dir, f), 'utf8').split('\n')) if (l !== '') out.push(l)
  return out
}

const readJsonl = (dir: string): [string, unknown][] => readLines(dir).map(l => JSON.parse(l) as [string, unknown])

const wordCounts = new Map<string, Map<string, number>>()
// A key is kept in a map as a flat copy: split or sliced out of a line, it keeps the line's whole
// 16 MiB piece of input alive (a JavaScriptCore substring), and a count over 4 GiB of words then
// held ~4 GB and took 18 min. A Map keeps the first key it was given, so only a new key is copied.
const own = (s: string): string => Buffer.from(s).toString()

/** Key k's [count, sum] entry, made when k is new. */
function sumsOf(m: Map<string, [number, number]>, k: string): [number, number] {
  let e = m.get(k)
  if (e === undefined) m.set(own(k), e = [0, 0])
  return e
}

/** Adds one to key k's count. */
function countKey(m: Map<string, number>, k: string): void {
  const n = m.get(k)
  m.set(n === undefined ? own(k) : k, (n ?? 0) + 1)
}

function plainWordCount(dataDir: string): Map<string, number> {
  const cached = wordCounts.get(dataDir)
  if (cached !== undefined) return cached
  const m = new Map<string, number>()
  for (const l of inputLines(join(dataDir, 'words'))) for (const w of l.split(' ')) countKey(m, w)
  wordCounts.set(dataDir, m)
  return m
}

function expectEqual(what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
}

function expectSameMap(got: [string, unknown][], want: Map<string, unknown>): void {
  expectEqual('keys', got.length, want.size)
  for (const [k, v] of got) {
    if (!want.has(k)) throw new Error(`key ${k} is not in the reference`)
    expectEqual(`key ${k}`, v, want.get(k))
  }
}

// ---- measuring ----

const status = (pid: number): string => readFileSync(`/proc/${pid}/status`, 'utf8')
/** Peak resident size since start or since the last resetPeak, in MiB. */
export const peakRssMiB = (pid: number): number => Number(/VmHWM:\s+(\d+) kB/.exec(status(pid))![1]) / 1024
/** Resets the peak resident size the kernel keeps for the process (clear_refs 5, Linux ≥ 4.0). */
export function resetPeak(pid: number): void { writeFileSync(`/proc/${pid}/clear_refs`, '5') }

if (import.meta.main) {
  const { MasterClient } = await import('../../src/api/client')
  const { spawnRole } = await import('../../src/roles/spawn')
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const arg = (name: string, d: string): string => { const i = process.argv.indexOf(`--${name}`); return i < 0 ? d : process.argv[i + 1]! }
  const mb = Number(arg('mb', '640'))
  const maxMem = arg('max-mem', '32MiB')
  const slots = arg('slots', '2')
  const binary = arg('binary', 'dist/minispark')
  const only = arg('shapes', '').split(',').filter(Boolean)
  const dataDir = arg('data', join(tmpdir(), `ms-shapes-${mb}`))
  const check = process.argv.includes('--check')
  const inputs = arg('inputs', INPUTS.join(',')).split(',').filter(Boolean)
  if (!process.argv.includes('--reuse')) { const t = Date.now(); generate(dataDir, mb, inputs); console.log(`generated ${mb} MB a shape in ${dataDir} in ${Date.now() - t} ms`) }
  const dir = mkdtempSync(join(tmpdir(), 'ms-shapes-run-'))
  const master = await spawnRole([binary, 'master', '--port', '0', '--state-db', join(dir, 'm.db')])
  const workers = await Promise.all(['a', 'b'].map(id => spawnRole([binary, 'worker', '--master', master.url, '--port', '0', '--id', id,
    '--slots', slots, '--max-mem', maxMem, '--data-dir', dataDir, '--work-dir', join(dir, 'work'), '--heartbeat-interval', '500ms'])))
  const client = new MasterClient(master.url)
  try {
    for (let i = 0; (await client.workers()).length < 2 && i < 100; i++) await Bun.sleep(100)
    for (const s of SHAPES.filter(s => only.length === 0 || only.includes(s.name))) {
      for (const w of workers) resetPeak(w.proc.pid)
      const t = Date.now()
      const id = await client.submit(s.job('out'))
      const st = await client.waitDone(id, { timeoutMs: 4 * 3_600_000 })
      const spilled = (await client.tasks(id)).reduce((n, x) => n + x.spilled_bytes, 0)
      const peaks = workers.map(w => peakRssMiB(w.proc.pid).toFixed(0))
      let verdict = ''
      if (process.argv.includes('--tasks')) for (const x of await client.tasks(id)) console.log(`  stage ${x.stage_id} p${x.partition} ${x.worker_id} ${x.state} ${(Date.parse(x.finished_at ?? '') - Date.parse(x.started_at ?? '')) / 1000} s in ${x.records_in} spilled ${x.spilled_bytes}`)
      if (check && st.state === 'SUCCEEDED') {
        const res = st.state === 'SUCCEEDED' ? await client.result(id) : null
        try { s.check(dataDir, 'out', node => { const r = res?.sinks[node]; return r?.op === 'count' ? [r.value] : r?.op === 'collect' ? r.values : [] }); verdict = 'exact' } catch (e) { verdict = `WRONG: ${(e as Error).message}` }
      }
      console.log(`${s.name.padEnd(18)} ${st.state} ${((Date.now() - t) / 1000).toFixed(1)} s  spilled ${(spilled / 2 ** 20).toFixed(0)} MiB  peak RSS ${peaks.join(' / ')} MiB  ${verdict} ${JSON.stringify(st.error ?? '')}`)
    }
  } finally {
    for (const p of [master, ...workers]) p.proc.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}
