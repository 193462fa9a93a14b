// `bun run bench [--workloads W1,W2,W3,W4,W5,CP,FLEET] [--size small|standard]`
//
// The standard workloads of ../shared/bench (W1 word count, W2 grep, W3 join + aggregate, W4 sort)
// on the compiled binary as `local --workers 2`, written with UDFs (bench/jobs/wN-*.json) and with
// the built-in operators (wN-*-builtin.json), each beside, in the same run:
//  - an idiomatic single-thread Bun program doing what the job's functions do in a plain loop, run
//    as 2 processes over halves of the input (and for W1/W2 a tuned one on bytes: the per-core
//    limit of this runtime), plus coreutils where it does the job (grep for W2, sort for W4);
//  - Dask distributed on LocalCluster(n_workers=2, threads_per_worker=1), when python3-distributed
//    is installed (skipped with one line otherwise).
// W5 (PageRank, bench/pagerank.ts): examples/pagerank.ts through the SDK with links cached and
// not, against Dask (dask.bag, persist) and the sequential reference, per iteration.
// Then the control plane (CP): a job of 10 000 tiny tasks and one-task jobs on a real 2-worker
// cluster, against Dask's client.map and submit/result; and (FLEET) a simulated fleet of fake
// workers (bench/fleet.ts) against a real master.
//
// Every Mini-Spark result is checked with bench/gen/verify.sh, against the expected values of the
// standard data or, at other sizes, against an independent baseline; the table says verified or
// NOT VERIFIED. A benchmark never fails: whatever breaks is reported in the table.
//
// `--scaling [--sizes 0.25,0.5,1,2,4]`: the scaling curve instead (bench/scaling.ts).
// Flags: --size small|standard (default small), --workloads (default all), --no-peers,
// --bin PATH (a built binary; default: build the working tree into bench/.data/bin),
// --ref GIT_REF (build that commit instead), --max-mem SIZE (default 1GiB), --fleet-workers N,
// --fleet-tasks N, --no-record (do not update bench/latest and BENCHMARKS.md), --render-only (write
// BENCHMARKS.md again from bench/latest), --gen-only (generate
// the data and stop), --wait-quiet MINUTES (first wait, at most that long, for the 1-minute load
// average to fall under 1: on a shared machine other work skews every timing).
// Data is generated once per size under bench/.data/<size> (ignored by git).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { startCluster, startRole, submit, waitJob } from './lib/cluster'
import { cpuTicks, hwmBytes, measure, run, stopPids, TreeWatch, type Namer, type Run } from './lib/proc'
import { w5Rows } from './pagerank'
import { controlTable, merge, readResults, stageTable, targetTable, targets, workloadTable, writeBenchmarksMd, type ControlPlane, type Machine, type Results, type Row, type StageTime } from './lib/report'

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '')
const benchDir = join(root, 'bench')
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] ?? fallback : fallback
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`)

const SIZES = {
  small: { graphNodes: 100_000, graphEdges: 1_000_000, textMb: 128, orders: 500_000, customers: 20_000, sortMb: 128, tinyTasks: 10_000, oneTaskRuns: 30, fleetWorkers: 200, fleetTasks: 10_000, fleetIdleS: 5, timeoutMs: 20 * 60_000 },
  standard: { graphNodes: 500_000, graphEdges: 5_000_000, textMb: 1024, orders: 5_000_000, customers: 200_000, sortMb: 1024, tinyTasks: 10_000, oneTaskRuns: 50, fleetWorkers: 1000, fleetTasks: 50_000, fleetIdleS: 10, timeoutMs: 90 * 60_000 },
} as const
type Size = keyof typeof SIZES

/** verify.sh outputs for the standard data (../shared/bench/README.md). */
const EXPECTED_STANDARD: Record<string, string> = {
  W1: '66cbdf747cb15f5866b120294bb76d13615b5b7d2520dc46ad6e582a10365b3c',
  W2: '301935',
  W3: 'ebac9b629eb50f3d4efae3def0ff8e6e479d56ca8181ddcc15b1c89354528a65',
  W4: 'records=10737418 sorted=yes sha256=e8c26f034273236d97cb2ed08ee07ee68b8cc45b99cef6b95844b8232d5a65a2',
  W5: 'nodes=332227 sum=368841.06 top100=ee4856d16c124446a9f20b545d3311be9d7543f4055528d758921e4987f08c85',
}

if (flag('scaling')) {
  // The scaling curve has its own harness (W1 and W4 by input size): bench/scaling.ts.
  const r = Bun.spawnSync([process.execPath, join(benchDir, 'scaling.ts'), ...process.argv.slice(2).filter(a => a !== '--scaling')], { stdout: 'inherit', stderr: 'inherit' })
  process.exit(r.exitCode ?? 1)
}
if (flag('render-only')) {
  // BENCHMARKS.md again from bench/latest/*.json, targets recomputed.
  for (const sz of ['small', 'standard']) {
    const path = join(benchDir, 'latest', `${sz}.json`)
    const r = readResults(path)
    if (r === null) continue
    r.targets = targets(r.rows, r.control, r.machine.max_mem)
    writeFileSync(path, JSON.stringify(r, null, 2) + '\n')
  }
  writeBenchmarksMd(root)
  process.exit(0)
}
const size = arg('size', 'small') as Size
if (!(size in SIZES)) { console.error(`bench: --size must be small or standard, not ${size}`); process.exit(2) }
const S = SIZES[size]
const ALL = ['W1', 'W2', 'W3', 'W4', 'W5', 'CP', 'FLEET']
const selected = arg('workloads', ALL.join(',')).split(',').map(w => w.trim().toUpperCase()).filter(Boolean)
const unknown = selected.filter(w => !ALL.includes(w))
if (unknown.length > 0) { console.error(`bench: unknown workloads ${unknown.join(', ')}; choose from ${ALL.join(', ')}`); process.exit(2) }
const MAX_MEM = arg('max-mem', '1GiB')
const fleetWorkers = Number(arg('fleet-workers', String(S.fleetWorkers)))
const fleetTasks = Number(arg('fleet-tasks', String(S.fleetTasks)))

const dataDir = join(benchDir, '.data', size)
const tmpRoot = join(benchDir, '.data', 'tmp')
const outDir = join(dataDir, 'out')
mkdirSync(tmpRoot, { recursive: true })
mkdirSync(outDir, { recursive: true })
const bun = process.execPath
const say = (s: string): void => console.error(`bench: ${s}`)
const verifySh = join(benchDir, 'gen', 'verify.sh')

// ---- data ----------------------------------------------------------------------------------

function generate(name: string, args: string[]): void {
  const marker = join(dataDir, `.generated-${name}`)
  const want = JSON.stringify(args)
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return
  say(`generating ${name} (${args.join(' ')})`)
  rmSync(join(dataDir, name), { recursive: true, force: true })
  const r = Bun.spawnSync(['node', join(benchDir, 'gen', `gen-${name}.mjs`), '--out', join(dataDir, name), ...args], { stdout: 'inherit', stderr: 'inherit' })
  if (r.exitCode !== 0) throw new Error(`generator ${name} failed`)
  writeFileSync(marker, want)
}

function tinyInputs(): void {
  mkdirSync(join(dataDir, 'tiny'), { recursive: true })
  // 5-byte lines: split_bytes 5 cuts the file into one task per line.
  writeFileSync(join(dataDir, 'tiny', 'lines.txt'), Array.from({ length: S.tinyTasks }, (_, i) => String(i % 10000).padStart(4, '0') + '\n').join(''))
  writeFileSync(join(dataDir, 'tiny', 'one.txt'), 'one\n')
}

const filesIn = (dir: string, re: RegExp): string[] => readdirSync(join(dataDir, dir)).filter(f => re.test(f)).sort().map(f => join(dataDir, dir, f))
const bytesOf = (files: string[]): number => files.reduce((n, f) => n + statSync(f).size, 0)

// ---- the binary ----------------------------------------------------------------------------

function buildBinary(): { bin: string; engine: string } {
  const given = arg('bin', '')
  const head = run(['git', 'rev-parse', '--short', 'HEAD'], root).stdout.trim()
  if (given !== '') return { bin: given, engine: `${given} (given with --bin; tree at ${head})` }
  const ref = arg('ref', '')
  const binDir = join(benchDir, '.data', 'bin')
  mkdirSync(binDir, { recursive: true })
  if (ref !== '') {
    const commit = run(['git', 'rev-parse', '--short', ref], root).stdout.trim()
    const src = join(binDir, `src-${commit}`)
    if (!existsSync(join(src, 'build.ts'))) {
      mkdirSync(src, { recursive: true })
      const r = Bun.spawnSync(['sh', '-c', `git archive ${commit} | tar -x -C ${src}`], { cwd: root })
      if (r.exitCode !== 0) throw new Error(`git archive ${ref} failed`)
      symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'))
    }
    const bin = join(binDir, `minispark-${commit}`)
    const b = Bun.spawnSync([bun, 'build.ts', bin], { cwd: src, stdout: 'inherit', stderr: 'inherit' })
    if (b.exitCode !== 0) throw new Error('build failed')
    return { bin, engine: `commit ${commit}` }
  }
  const bin = join(binDir, 'minispark')
  const b = Bun.spawnSync([bun, 'build.ts', bin], { cwd: root, stdout: 'inherit', stderr: 'inherit' })
  if (b.exitCode !== 0) throw new Error('build failed')
  const dirty = run(['git', 'status', '--porcelain', '--', 'src', 'build.ts', 'package.json'], root).stdout.trim() !== ''
  return { bin, engine: `commit ${head}${dirty ? ' + uncommitted changes in src' : ''}` }
}

// ---- peers ---------------------------------------------------------------------------------

/** The first python3 that has Dask distributed (Debian's python3-distributed), or null. */
function findDask(): { python: string; version: string } | null {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = Bun.spawnSync([python, '-c', 'import dask, distributed, dask.dataframe, dask.bag, pandas; print(distributed.__version__)'], { stdout: 'pipe', stderr: 'pipe' })
    if (r.exitCode === 0) return { python, version: r.stdout.toString().trim() }
  }
  return null
}

// Dask's processes: the client (with the scheduler), the worker processes, the multiprocessing
// resource tracker.
const daskNamer: Namer = (_pid, argv, isRoot) => isRoot ? 'client' : argv.join(' ').includes('resource_tracker') ? 'tracker' : 'worker'
const procNamer: Namer = (_pid, argv, isRoot) => isRoot ? 'proc' : (argv[0]?.split('/').at(-1) ?? '?')

function lastJson(stdout: string): Record<string, unknown> | null {
  const line = stdout.trim().split('\n').reverse().find(l => l.startsWith('{'))
  try { return line ? JSON.parse(line) as Record<string, unknown> : null } catch { return null }
}

const tail = (s: string, n = 300): string => s.trim().split('\n').slice(-3).join(' ').slice(-n)

// ---- verification --------------------------------------------------------------------------

function fingerprint(w: string, files: string[]): string | null {
  if (files.length === 0) return null
  const r = run([verifySh, w, ...files], root)
  return r.ok ? r.stdout.trim() : null
}

/** Part files of an output folder in partition order (part-00002 before part-00010). */
function parts(dir: string, re = /^part-/): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter(f => re.test(f)).sort((a, b) => Number(/\d+/.exec(a)?.[0] ?? 0) - Number(/\d+/.exec(b)?.[0] ?? 0) || a.localeCompare(b)).map(f => join(dir, f))
}

// ---- Mini-Spark ----------------------------------------------------------------------------

const JOBS: Record<string, string> = { W1: 'w1-wordcount.json', W2: 'w2-grep.json', W3: 'w3-join-aggregate.json', W4: 'w4-sort.json' }
/** The same workloads written with the engine's built-in operators (words, grep, key_by_field,
 *  count_by_value, agg_by_key, sort "by"), UDFs only where no built-in says it. */
const BUILTIN_JOBS: Record<string, string> = { W1: 'w1-wordcount-builtin.json', W2: 'w2-grep-builtin.json', W3: 'w3-join-aggregate-builtin.json', W4: 'w4-sort-builtin.json' }

/** What `local --keep` says once the job has ended: the cluster's URL and its token's file. */
const KEPT = /still up: (\S+) \(its token: MINISPARK_TOKEN=\$\(cat (\S+)\)\)/

/** Done once `local` says the cluster is kept and has printed the job's result (a JSON line), or
 *  a second after it says so without one (the job failed). */
function keptAndPrinted(): (stdout: string, stderr: string) => boolean {
  let keptAt: number | undefined
  return (out, err) => {
    if (!KEPT.test(err)) return false
    keptAt ??= Date.now()
    return /^\{/m.test(out) || Date.now() - keptAt > 1000
  }
}

async function runEngine(w: string, bin: string, inputBytes: number, builtin = false): Promise<Row> {
  const tmp = join(tmpRoot, `local-${w}`)
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  const job = join(benchDir, 'jobs', (builtin ? BUILTIN_JOBS : JOBS)[w]!)
  const system = builtin ? 'Mini-Spark built-ins, local --workers 2' : 'Mini-Spark local --workers 2'
  say(`${w}: ${system}`)
  // --keep leaves the cluster up after the job, so its task metrics and final VmHWM can be read.
  const r = await measure([[bin, 'local', job, '--workers', '2', '--max-mem', MAX_MEM, '--data-dir', dataDir, '--keep', '--json']],
    { cwd: dataDir, env: { TMPDIR: tmp, MINISPARK_TOKEN: undefined }, timeoutMs: S.timeoutMs, doneWhen: keptAndPrinted() })
  const rss = Object.fromEntries(r.peaks)
  for (const [name, pid] of r.pids) { const h = hwmBytes(pid); if (h !== null) rss[name] = Math.max(rss[name] ?? 0, h) }
  const row: Row = { workload: w, system, kind: builtin ? 'builtin' : 'engine', seconds: r.code === 0 ? r.seconds : null, input_bytes: inputBytes, rss, spilled_bytes: null, verdict: 'unchecked', fingerprint: null, verify_note: '', other_cpus: r.otherCpus }
  const kept = KEPT.exec(r.stderr)
  const url = kept?.[1]
  if (url !== undefined) {
    try {
      // the token `local` gave the cluster it started for this run
      const headers = { authorization: `Bearer ${readFileSync(kept![2]!, 'utf8').trim()}` }
      const get = async <T>(path: string): Promise<T> => await (await fetch(`${url}${path}`, { headers })).json() as T
      const jobs = await get<{ job_id: string }[]>('/jobs')
      const id = jobs[0]!.job_id
      const tasks = await get<TaskRow[]>(`/jobs/${id}/tasks`)
      const status = await get<{ stages: { stage_id: number; node_ids: string[] }[] }>(`/jobs/${id}`)
      row.spilled_bytes = tasks.reduce((n, t) => n + t.spilled_bytes, 0)
      row.stages = stageTimes(status.stages, tasks)
    } catch (e) { row.note = `task metrics unavailable: ${(e as Error).message}` }
  }
  // `local` last: it stops its cluster when signalled, and the roles are stopped by pid anyway.
  await stopPids([...r.pids].filter(([n]) => n !== 'local').map(([, pid]) => pid))
  const localPid = r.pids.get('local')
  if (localPid !== undefined) await stopPids([localPid])
  rmSync(tmp, { recursive: true, force: true })
  // `local --json` prints the result only for a job that succeeded
  if (r.code === 0 && lastJson(r.stdout) === null) r.code = 1
  if (r.code !== 0) {
    // The whole story of a failed run is kept: every role's stderr went through `local`.
    const log = join(benchDir, 'results', `${startedAt.replace(/:/g, '-')}-${size}-${w}${builtin ? '-builtin' : ''}-failed.log`)
    mkdirSync(join(benchDir, 'results'), { recursive: true })
    writeFileSync(log, r.stderr)
    row.error = `exit ${r.code}: ${tail(r.stderr)}`
    row.note = `stderr of the run: bench/results/${log.split('/').at(-1)}`
    row.verdict = 'NOT VERIFIED'
    return row
  }
  if (w === 'W2') {
    const result = lastJson(r.stdout) as { sinks?: Record<string, { value?: number }> } | null
    const value = result?.sinks?.matching_lines?.value
    mkdirSync(join(outDir, 'w2'), { recursive: true })
    writeFileSync(join(outDir, 'w2', 'count'), value === undefined ? '' : `${value}\n`)
    row.fingerprint = value === undefined ? null : fingerprint('W2', [join(outDir, 'w2', 'count')])
  } else {
    row.fingerprint = fingerprint(w, parts(join(outDir, w.toLowerCase())))
  }
  return row
}

type TaskRow = { stage_id: number; partition: number; state: string; started_at: string | null; finished_at: string | null; spilled_bytes: number; shuffle_bytes_written: number }

function stageTimes(stages: { stage_id: number; node_ids: string[] }[], tasks: TaskRow[]): StageTime[] {
  return stages.map(st => {
    const mine = tasks.filter(t => t.stage_id === st.stage_id && t.started_at !== null && t.finished_at !== null)
    const ok = mine.filter(t => t.state === 'SUCCEEDED')
    const start = Math.min(...mine.map(t => Date.parse(t.started_at!)))
    const end = Math.max(...mine.map(t => Date.parse(t.finished_at!)))
    const durations = ok.map(t => (Date.parse(t.finished_at!) - Date.parse(t.started_at!)) / 1000).sort((a, b) => a - b)
    return {
      stage_id: st.stage_id, nodes: st.node_ids.join(' → '), tasks: ok.length, attempts: mine.length,
      seconds: mine.length ? (end - start) / 1000 : 0, task_median_s: durations[Math.floor((durations.length - 1) / 2)] ?? 0, task_max_s: durations.at(-1) ?? 0,
      shuffle_written: ok.reduce((n, t) => n + t.shuffle_bytes_written, 0), spilled: mine.reduce((n, t) => n + t.spilled_bytes, 0),
    }
  })
}

// ---- baselines -----------------------------------------------------------------------------

const halves = <T>(xs: T[]): [T[], T[]] => [xs.slice(0, Math.ceil(xs.length / 2)), xs.slice(Math.ceil(xs.length / 2))]

function baselineRow(w: string, system: string, r: Run, inputBytes: number, extraSeconds = 0): Row {
  return {
    workload: w, system, kind: 'baseline', seconds: r.code === 0 ? r.seconds + extraSeconds : null, input_bytes: inputBytes,
    rss: Object.fromEntries(r.peaks), spilled_bytes: null, verdict: 'unchecked', fingerprint: null, verify_note: '', other_cpus: r.otherCpus,
    ...(r.code === 0 ? {} : { error: `exit ${r.code}: ${tail(r.stderr)}` }),
  }
}

/** Sums the `word<TAB>count` files of the two halves into one; returns the seconds it took. */
function mergeCounts(inputs: string[], out: string): number {
  const t0 = performance.now()
  const counts = new Map<string, number>()
  for (const f of inputs) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (line === '') continue
      const tab = line.indexOf('\t')
      const w = line.slice(0, tab)
      counts.set(w, (counts.get(w) ?? 0) + Number(line.slice(tab + 1)))
    }
  }
  let text = ''
  for (const [w, n] of counts) text += `${w}\t${n}\n`
  writeFileSync(out, text)
  return (performance.now() - t0) / 1000
}

async function baselines(w: string, inputBytes: number): Promise<Row[]> {
  const rows: Row[] = []
  const b = (f: string): string => join(benchDir, 'baselines', f)
  const o = { cwd: dataDir, namer: procNamer, timeoutMs: S.timeoutMs }
  const tmp = join(tmpRoot, 'baselines')
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  if (w === 'W1' || w === 'W2') {
    const [a, c] = halves(filesIn('text', /\.txt$/))
    for (const kind of ['idiomatic', 'tuned'] as const) {
      say(`${w}: ${kind} Bun, 2 processes`)
      const system = `${kind} Bun, 2 processes`
      if (w === 'W1') {
        const r = await measure([[bun, b(`w1-${kind}.ts`), join(tmp, 'h0'), ...a], [bun, b(`w1-${kind}.ts`), join(tmp, 'h1'), ...c]], o)
        const out = join(outDir, `w1-${kind}.txt`)
        const extra = r.code === 0 ? mergeCounts([join(tmp, 'h0'), join(tmp, 'h1')], out) : 0
        const row = baselineRow(w, system, r, inputBytes, extra)
        if (r.code === 0) row.fingerprint = fingerprint('W1', [out])
        rows.push(row)
      } else {
        const r = await measure([[bun, b(`w2-${kind}.ts`), ...a], [bun, b(`w2-${kind}.ts`), ...c]], o)
        const row = baselineRow(w, system, r, inputBytes)
        if (r.code === 0) {
          const f = join(outDir, `w2-${kind}.count`)
          writeFileSync(f, r.stdout)
          row.fingerprint = fingerprint('W2', [f])
        }
        rows.push(row)
      }
    }
    if (w === 'W2') {
      say('W2: coreutils grep')
      const r = await measure([['sh', '-c', `LC_ALL=C grep -chiE '\\bth[a-z]*ing\\b' ${[...a, ...c].join(' ')} > ${join(outDir, 'w2-grep.counts')}`]], o)
      const row = baselineRow(w, 'coreutils grep -ciE', r, inputBytes)
      if (r.code === 0) row.fingerprint = fingerprint('W2', [join(outDir, 'w2-grep.counts')])
      rows.push(row)
    }
  } else if (w === 'W3') {
    say('W3: idiomatic Bun, 2 processes')
    const c = join(dataDir, 'join', 'customers.csv'), ord = join(dataDir, 'join', 'orders.csv')
    const r = await measure([[bun, b('w3-idiomatic.ts'), c, ord, '0', '2'], [bun, b('w3-idiomatic.ts'), c, ord, '1', '2']], o)
    let extra = 0
    const row0 = (): Row => baselineRow(w, 'idiomatic Bun, 2 processes', r, inputBytes, extra)
    if (r.code === 0) {
      const t0 = performance.now()
      const totals = new Map<string, number>()
      for (const line of r.stdout.trim().split('\n')) for (const [k, v] of Object.entries(JSON.parse(line) as Record<string, number>)) totals.set(k, (totals.get(k) ?? 0) + v)
      const out = join(outDir, 'w3-idiomatic.tsv')
      writeFileSync(out, [...totals].map(([k, cents]) => `${k}\t${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, '0')}\n`).join(''))
      extra = (performance.now() - t0) / 1000
      const row = row0()
      row.fingerprint = fingerprint('W3', [out])
      rows.push(row)
    } else rows.push(row0())
  } else if (w === 'W4') {
    const files = filesIn('sort', /\.dat$/)
    say('W4: idiomatic Bun, 2 processes')
    const dir = join(outDir, 'w4-idiomatic')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const r = await measure([0, 1].map(p => [bun, b('w4-idiomatic.ts'), join(dir, `part-${p}`), String(p), '2', ...files]), o)
    const row = baselineRow(w, 'idiomatic Bun, 2 processes', r, inputBytes)
    if (r.code === 0) row.fingerprint = fingerprint('W4', parts(dir))
    rows.push(row)
    say('W4: coreutils sort')
    const out = join(outDir, 'w4-coreutils.dat')
    const rs = await measure([['sort', '-T', tmp, '-o', out, ...files]], { ...o, env: { LC_ALL: 'C' } })
    const srow = baselineRow(w, 'coreutils sort (LC_ALL=C)', rs, inputBytes)
    if (rs.code === 0) srow.fingerprint = fingerprint('W4', [out])
    rows.push(srow)
    rmSync(out, { force: true })
  }
  rmSync(tmp, { recursive: true, force: true })
  return rows
}

async function daskRow(w: string, dask: { python: string }, inputBytes: number): Promise<Row> {
  say(`${w}: Dask LocalCluster(2 workers × 1 thread)`)
  const dest = join(outDir, `dask-${w.toLowerCase()}`)
  rmSync(dest, { recursive: true, force: true })
  const local = join(tmpRoot, 'dask')
  mkdirSync(local, { recursive: true })
  const r = await measure([[dask.python, join(benchDir, 'peers', 'dask_peer.py'), w, dataDir, dest]],
    { cwd: dataDir, namer: daskNamer, env: { DASK_LOCAL_DIR: local }, timeoutMs: S.timeoutMs })
  const info = lastJson(r.stdout)
  const row: Row = {
    workload: w, system: 'Dask LocalCluster 2×1', kind: 'peer', seconds: r.code === 0 ? r.seconds : null, input_bytes: inputBytes,
    rss: Object.fromEntries(r.peaks), spilled_bytes: null, verdict: 'unchecked', fingerprint: null, verify_note: '', other_cpus: r.otherCpus,
    ...(info ? { note: `cluster start ${Number(info.cluster_start_s).toFixed(1)} s, work ${Number(info.work_s).toFixed(1)} s` } : {}),
    ...(r.code === 0 ? {} : { error: `exit ${r.code}: ${tail(r.stderr)}` }),
  }
  if (r.code === 0) {
    row.fingerprint = w === 'W2' ? fingerprint('W2', [join(dest, 'count')]) : w === 'W3' ? fingerprint('W3', [join(dest, 'totals.tsv')]) : fingerprint(w, parts(dest, /\.(txt|dat)$/))
  }
  rmSync(local, { recursive: true, force: true })
  if (w === 'W4' || w === 'W1') rmSync(dest, { recursive: true, force: true })
  return row
}

const W5_REFERENCE = 'sequential ref-pagerank.mjs (node, 1 process)'

/** Each row against the expected value: the standard checksum, or else the reference baseline. */
function verify(w: string, rows: Row[]): void {
  const expected = size === 'standard' ? EXPECTED_STANDARD[w]! : null
  // At other sizes, an independent computation is the reference: coreutils where it does the job.
  const refSystem = w === 'W2' ? 'coreutils grep -ciE' : w === 'W4' ? 'coreutils sort (LC_ALL=C)' : w === 'W5' ? W5_REFERENCE : 'idiomatic Bun, 2 processes'
  const ref = expected ?? rows.find(r => r.system === refSystem && r.fingerprint !== null)?.fingerprint ?? null
  for (const r of rows) {
    if (r.fingerprint === null) {
      // No result to check, from a failed run or an output verify.sh could not read: visible as such.
      r.verdict = 'NOT VERIFIED'
      r.verify_note = r.error ? 'the run failed' : 'verify.sh found no output'
      continue
    }
    if (w === 'W4' && !r.fingerprint.includes('sorted=yes')) { r.verdict = 'NOT VERIFIED'; r.verify_note = `${r.fingerprint}`; continue }
    if (ref === null) { r.verdict = 'unchecked'; r.verify_note = 'no reference to compare with'; continue }
    if (expected === null && r.system === refSystem) {
      const agree = rows.filter(o => o !== r && o.fingerprint === r.fingerprint).map(o => o.system)
      r.verdict = agree.length > 0 ? 'verified' : 'reference'
      r.verify_note = agree.length > 0 ? `reference; agrees with ${agree.join(', ')}` : 'reference (no other result agrees)'
      continue
    }
    r.verdict = r.fingerprint === ref ? 'verified' : 'NOT VERIFIED'
    r.verify_note = `${r.fingerprint === ref ? '=' : '≠'} ${expected !== null ? 'the expected standard value' : refSystem}` + (r.fingerprint === ref ? '' : ` (${r.fingerprint.slice(0, 80)} vs ${ref.slice(0, 80)})`)
  }
}

// ---- control plane -------------------------------------------------------------------------

const median = (xs: number[]): number | null => xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!
const pctl = (xs: number[], p: number): number | null => xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!

async function controlPlane(bin: string, dask: { python: string } | null, control: ControlPlane): Promise<void> {
  tinyInputs()
  const tmp = join(tmpRoot, 'cp')
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  say('CP: a 2-worker cluster (1 slot each, as local starts on 2 cores)')
  let cluster
  try {
    cluster = await startCluster({ bin, cwd: tmp, stateDb: join(tmp, 'master.db'), workDir: join(tmp, 'work'), dataDir, workers: 2, slots: 1, maxMem: MAX_MEM })
  } catch (e) {
    control.tiny_tasks = { tasks: S.tinyTasks, seconds: null, ms_per_task: null, state: `cluster did not start: ${(e as Error).message}`, count_ok: false, rss: {}, dask_ms_per_task: null }
    return
  }
  const names = new Map<number, string>([[cluster.master.proc.pid, 'master'], ...cluster.workers.map((w, i) => [w.proc.pid, `worker-${i + 1}`] as [number, string])])
  // The bench polls the master itself: its own process is part of the measurement too.
  const watch = new TreeWatch(() => [process.pid], pid => names.get(pid) ?? (pid === process.pid ? 'bench' : 'other'), 50, new Map([[process.pid, cpuTicks(process.pid) ?? 0]]))
  try {
    say(`CP: ${S.oneTaskRuns} one-task jobs`)
    const one = { name: 'one-task', nodes: [{ id: 'line', op: 'read_text', path: 'tiny/one.txt' }, { id: 'n', op: 'count', input: 'line' }] }
    const lat: number[] = []
    let failures = 0
    for (let i = 0; i < S.oneTaskRuns + 3; i++) {
      const t0 = performance.now()
      const s = await waitJob(cluster.url, await submit(cluster.url, one), 0, 60_000)
      const ms = performance.now() - t0
      if (s.state !== 'SUCCEEDED') failures++
      else if (i >= 3) lat.push(ms)   // the first three warm the cluster up
    }
    control.one_task = { runs: lat.length, median_ms: median(lat), p90_ms: pctl(lat, 0.9), min_ms: lat.length ? Math.min(...lat) : null, failures, dask_median_ms: null }

    say(`CP: one job of ${S.tinyTasks} tiny tasks`)
    const tiny = { name: 'tiny-tasks', split_bytes: 5, nodes: [{ id: 'line', op: 'read_text', path: 'tiny/lines.txt' }, { id: 'n', op: 'count', input: 'line' }] }
    const t0 = performance.now()
    const id = await submit(cluster.url, tiny)
    const s = await waitJob(cluster.url, id, 10, S.timeoutMs)
    const seconds = (performance.now() - t0) / 1000
    const result = s.state === 'SUCCEEDED' ? await (await fetch(`${cluster.url}/jobs/${id}/result`)).json() as { sinks: { n?: { value: number } } } : null
    const stages = await (await fetch(`${cluster.url}/jobs/${id}`)).json() as { stages: { tasks: { total: number } }[] }
    const tasks = stages.stages.reduce((n, st) => n + st.tasks.total, 0)
    control.tiny_tasks = {
      tasks, seconds: s.state === 'SUCCEEDED' ? seconds : null, ms_per_task: s.state === 'SUCCEEDED' ? seconds * 1000 / tasks : null,
      state: s.state + (s.error ? `: ${s.error.message}` : ''), count_ok: result?.sinks.n?.value === S.tinyTasks, rss: {}, dask_ms_per_task: null,
    }
  } catch (e) {
    control.one_task ??= { runs: 0, median_ms: null, p90_ms: null, min_ms: null, failures: 1, dask_median_ms: null }
    control.tiny_tasks ??= { tasks: S.tinyTasks, seconds: null, ms_per_task: null, state: `error: ${(e as Error).message}`, count_ok: false, rss: {}, dask_ms_per_task: null }
  } finally {
    const peaks = watch.stop()
    control.tiny_tasks!.rss = Object.fromEntries([...peaks].filter(([n]) => n === 'master' || n.startsWith('worker-')))
    control.tiny_tasks!.other_cpus = watch.otherCpus
    await cluster.stop()
    rmSync(tmp, { recursive: true, force: true })
  }

  if (dask === null) {
    control.tiny_tasks!.dask_note = control.one_task!.dask_note = 'Dask not installed'
    return
  }
  say(`CP: Dask client.map over ${S.tinyTasks} trivial calls`)
  const local = join(tmpRoot, 'dask')
  mkdirSync(local, { recursive: true })
  const peer = join(benchDir, 'peers', 'dask_peer.py')
  const m = await measure([[dask.python, peer, 'tasks', String(S.tinyTasks)]], { cwd: tmpRoot, namer: daskNamer, env: { DASK_LOCAL_DIR: local }, timeoutMs: S.timeoutMs })
  const mj = lastJson(m.stdout)
  if (mj && typeof mj.tasks_s === 'number') control.tiny_tasks!.dask_ms_per_task = mj.tasks_s * 1000 / S.tinyTasks
  else control.tiny_tasks!.dask_note = `Dask failed: ${tail(m.stderr, 120)}`
  say(`CP: Dask ${S.oneTaskRuns} single-task round trips`)
  const rt = await measure([[dask.python, peer, 'roundtrip', String(S.oneTaskRuns)]], { cwd: tmpRoot, namer: daskNamer, env: { DASK_LOCAL_DIR: local }, timeoutMs: S.timeoutMs })
  const rj = lastJson(rt.stdout)
  if (rj && typeof rj.roundtrip_ms_median === 'number') control.one_task!.dask_median_ms = rj.roundtrip_ms_median
  else control.one_task!.dask_note = `Dask failed: ${tail(rt.stderr, 120)}`
  rmSync(local, { recursive: true, force: true })
}

async function fleet(bin: string, control: ControlPlane): Promise<void> {
  const tmp = join(tmpRoot, 'fleet')
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  say(`FLEET: a real master, ${fleetWorkers} simulated workers, a job of ${fleetTasks} no-op tasks`)
  const base = { workers: fleetWorkers, tasks: fleetTasks, seconds: null, tasks_per_s: null, steady_tasks_per_s: null, hb_idle_p50_ms: null, hb_idle_p99_ms: null, hb_load_p50_ms: null, hb_load_p99_ms: null, hb_load_max_ms: null, hb_failures: 0, master_rss: null }
  let master
  try {
    master = await startRole([bin, 'master', '--port', '0', '--state-db', join(tmp, 'master.db')], tmp)
  } catch (e) {
    control.fleet = { ...base, state: 'master did not start', error: (e as Error).message }
    return
  }
  const watch = new TreeWatch(() => [process.pid], pid => pid === master.proc.pid ? 'master' : pid === process.pid ? 'bench' : 'fleet', 50, new Map([[process.pid, cpuTicks(process.pid) ?? 0]]))
  const out = join(tmp, 'fleet.json')
  const r = await measure([[bun, join(benchDir, 'fleet.ts'), '--master', master.url, '--workers', String(fleetWorkers), '--tasks', String(fleetTasks), '--idle-s', String(S.fleetIdleS), '--out', out]],
    { cwd: tmp, namer: procNamer, timeoutMs: S.timeoutMs })
  const masterRss = watch.stop().get('master') ?? null
  await stopPids([master.proc.pid])
  const j = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) as {
    heartbeat: { idle: { p50_ms: number | null; p99_ms: number | null }; load: { p50_ms: number | null; p99_ms: number | null; max_ms: number | null }; failures: number }
    job: { state: string; seconds: number; tasks_per_s: number; steady_tasks_per_s: number | null }
    tool_event_loop_lag?: { load: { p99_ms: number | null } }
  } : null
  control.fleet = j === null ? { ...base, state: 'no result', master_rss: masterRss, error: `fleet tool exit ${r.code}: ${tail(r.stderr)}` } : {
    ...base, state: j.job.state, seconds: j.job.seconds, tasks_per_s: j.job.state === 'SUCCEEDED' ? j.job.tasks_per_s : null, steady_tasks_per_s: j.job.steady_tasks_per_s,
    hb_idle_p50_ms: j.heartbeat.idle.p50_ms, hb_idle_p99_ms: j.heartbeat.idle.p99_ms, hb_load_p50_ms: j.heartbeat.load.p50_ms, hb_load_p99_ms: j.heartbeat.load.p99_ms,
    hb_load_max_ms: j.heartbeat.load.max_ms, hb_failures: j.heartbeat.failures, master_rss: masterRss, tool_lag_p99_ms: j.tool_event_loop_lag?.load.p99_ms ?? null,
    other_cpus: watch.otherCpus,
  }
  rmSync(tmp, { recursive: true, force: true })
}

// ---- main ----------------------------------------------------------------------------------

let startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')

function machine(engine: string, dask: string | null, loadBefore: string): Machine {
  const mem = totalmem()
  const kernel = run(['uname', '-sr'], root).stdout.trim()
  return {
    date: startedAt, host_cpus: Number(run(['nproc'], root).stdout.trim()) || cpus().length,
    cpu_model: cpus()[0]?.model ?? '?', mem_total: `${(mem / 2 ** 30).toFixed(1)} GiB`, kernel, bun: Bun.version, node: run(['node', '--version'], root).stdout.trim(),
    engine, dask, load_before: loadBefore, load_after: loadavg().map(x => x.toFixed(2)).join(' '), size, max_mem: MAX_MEM,
  }
}

const quietMinutes = Number(arg('wait-quiet', '0'))
if (quietMinutes > 0 && loadavg()[0]! >= 1) {
  say(`waiting up to ${quietMinutes} min for the load average (${loadavg()[0]!.toFixed(2)}) to fall under 1`)
  const until = Date.now() + quietMinutes * 60_000
  while (Date.now() < until && loadavg()[0]! >= 1) await Bun.sleep(5000)
}
startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
const loadBefore = loadavg().map(x => x.toFixed(2)).join(' ')
if (loadavg()[0]! > 1.5) say(`the machine is busy (load average ${loadBefore}): timings will be noisy`)
const workloads = selected.filter(w => w.startsWith('W'))
if (workloads.some(w => w === 'W1' || w === 'W2')) generate('text', ['--mb', String(S.textMb), '--files', '8', '--seed', '42'])
if (workloads.includes('W3')) generate('join', ['--orders', String(S.orders), '--customers', String(S.customers), '--seed', '42'])
if (workloads.includes('W4')) generate('sort', ['--mb', String(S.sortMb), '--files', '8', '--seed', '42'])
if (workloads.includes('W5')) generate('graph', ['--nodes', String(S.graphNodes), '--edges', String(S.graphEdges), '--files', '4', '--seed', '42'])
if (flag('gen-only')) process.exit(0)
const { bin, engine } = buildBinary()
const dask = flag('no-peers') ? null : findDask()
if (dask === null) say(flag('no-peers') ? 'Dask peer skipped (--no-peers)' : 'Dask peer skipped: python3-distributed is not installed (apt-get install python3-distributed)')

const rows: Row[] = []
for (const w of workloads) {
  if (w === 'W5') {
    const these = await w5Rows({
      root, bin, dataDir, tmpRoot, maxMem: MAX_MEM, iterations: 10, timeoutMs: S.timeoutMs, dask, say,
      fingerprint: files => fingerprint('W5', files), parts, daskNamer,
    })
    verify(w, these)
    rows.push(...these)
    console.error(workloadTable(these))
    continue
  }
  const inputBytes = w === 'W1' || w === 'W2' ? bytesOf(filesIn('text', /\.txt$/)) : w === 'W3' ? bytesOf(filesIn('join', /\.csv$/)) : bytesOf(filesIn('sort', /\.dat$/))
  const these: Row[] = [await runEngine(w, bin, inputBytes), await runEngine(w, bin, inputBytes, true), ...await baselines(w, inputBytes)]
  if (dask !== null) these.push(await daskRow(w, dask, inputBytes))
  verify(w, these)
  rows.push(...these)
  console.error(workloadTable(these))
}
const control: ControlPlane = {}
if (selected.includes('CP')) await controlPlane(bin, dask, control)
if (selected.includes('FLEET')) await fleet(bin, control)

const results: Results = { machine: machine(engine, dask?.version ?? null, loadBefore), rows, control, targets: [] }
results.targets = targets(rows, control, MAX_MEM)
console.log(`\nMini-Spark bench, size ${size}: ${results.machine.date}, ${results.machine.host_cpus} CPUs, ${results.machine.mem_total}, Bun ${results.machine.bun}, ${engine}\n`)
if (rows.length > 0) console.log(workloadTable(rows) + '\n')
if (stageTable(rows) !== '') console.log(stageTable(rows) + '\n')
if (Object.keys(control).length > 0) console.log(controlTable(control) + '\n')
console.log(targetTable(results.targets))

const stamp = results.machine.date.replace(/[:]/g, '-')
mkdirSync(join(benchDir, 'results'), { recursive: true })
writeFileSync(join(benchDir, 'results', `${stamp}-${size}.json`), JSON.stringify(results, null, 2) + '\n')
console.log(`\nwritten: bench/results/${stamp}-${size}.json`)
if (!flag('no-record')) {
  mkdirSync(join(benchDir, 'latest'), { recursive: true })
  const latestPath = join(benchDir, 'latest', `${size}.json`)
  const ran = { workloads, control: [...(selected.includes('CP') ? ['tiny_tasks', 'one_task'] as const : []), ...(selected.includes('FLEET') ? ['fleet'] as const : [])] }
  const latest = merge(readResults(latestPath), results, ran)
  latest.targets = targets(latest.rows, latest.control, latest.machine.max_mem)
  writeFileSync(latestPath, JSON.stringify(latest, null, 2) + '\n')
  writeBenchmarksMd(root)
  console.log(`recorded: bench/latest/${size}.json and BENCHMARKS.md`)
}
