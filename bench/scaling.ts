// The scaling curve: W1 (word count) and W4 (sort) at growing input sizes, same generators and seed
// as the standard workloads (bench/gen), on `local --workers 2` of the compiled binary. Per size:
// wall time, seconds per GiB, and the peak RSS (VmHWM) of each worker and of the master. Cost
// should grow linearly with the input (seconds per GiB flat) and memory should stay flat.
//
//   bun bench/scaling.ts [--sizes 0.25,0.5,1,2,4] [--workloads W1,W4] [--bin PATH] [--max-mem 1GiB]
//                        [--keep-data]
//   (or `npm run bench -- --scaling ...`, which hands over to this file)
//
// Writes the raw results to bench/results/<date>-scaling.json, and a table (bench/latest/scaling.md)
// and a plot (bench/latest/scaling.svg, hand-written SVG) that BENCHMARKS.md can include. Each
// result is checked against an independent reference: W1's total of counts against the number of
// tokens coreutils find in the input (tr), W4's output against `sort -c` and the input's record
// count (wc -l). Data goes under bench/.data/scale-<GiB> (ignored by git), removed after each size
// unless --keep-data: 4 GiB of text and 4 GiB of records at once would be a lot of disk.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { hwmBytes, measure, run, stopPids, type Namer } from './lib/proc'

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '')
const benchDir = join(root, 'bench')
const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] ?? fallback : fallback }
const sizes = arg('sizes', '0.25,0.5,1,2,4').split(',').map(Number).filter(x => x > 0)
const workloads = arg('workloads', 'W1,W4').split(',').map(w => w.trim().toUpperCase())
const MAX_MEM = arg('max-mem', '1GiB')
const keepData = process.argv.includes('--keep-data')
const bun = process.execPath
const say = (s: string): void => console.error(`scaling: ${s}`)
const JOBS: Record<string, string> = { W1: 'w1-wordcount.json', W4: 'w4-sort.json' }
for (const w of workloads) if (JOBS[w] === undefined) { console.error(`scaling: workloads are W1 and W4, not ${w}`); process.exit(2) }

const MiB = 2 ** 20
const maxMemBytes = (() => {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g)?i?b?$/i.exec(MAX_MEM.trim())
  return m === null ? 2 ** 30 : Number(m[1]) * 1024 ** ({ k: 1, m: 2, g: 3 }[(m[2] ?? 'g').toLowerCase() as 'k' | 'm' | 'g'])
})()

// ---- the binary ----------------------------------------------------------------------------

function binary(): { bin: string; engine: string } {
  const head = run(['git', 'rev-parse', '--short', 'HEAD'], root).stdout.trim()
  const given = arg('bin', '')
  if (given !== '') return { bin: given, engine: `${given} (tree at ${head})` }
  const bin = join(benchDir, '.data', 'bin', 'minispark')
  mkdirSync(join(benchDir, '.data', 'bin'), { recursive: true })
  const b = Bun.spawnSync([bun, 'build.ts', bin], { cwd: root, stdout: 'inherit', stderr: 'inherit' })
  if (b.exitCode !== 0) throw new Error('build failed')
  const dirty = run(['git', 'status', '--porcelain', '--', 'src', 'build.ts', 'package.json'], root).stdout.trim() !== ''
  return { bin, engine: `commit ${head}${dirty ? ' + uncommitted changes in src' : ''}` }
}

// ---- data ----------------------------------------------------------------------------------

function generate(dataDir: string, name: 'text' | 'sort', mb: number): void {
  const args = ['--mb', String(mb), '--files', '8', '--seed', '42']
  const marker = join(dataDir, `.generated-${name}`)
  if (existsSync(marker) && readFileSync(marker, 'utf8') === JSON.stringify(args)) return
  say(`generating ${name}, ${mb} MiB`)
  rmSync(join(dataDir, name), { recursive: true, force: true })
  const r = Bun.spawnSync(['node', join(benchDir, 'gen', `gen-${name}.mjs`), '--out', join(dataDir, name), ...args], { stdout: 'inherit', stderr: 'inherit' })
  if (r.exitCode !== 0) throw new Error(`generator ${name} failed`)
  writeFileSync(marker, JSON.stringify(args))
}

const filesIn = (dir: string): string[] => existsSync(dir) ? readdirSync(dir).filter(f => !f.startsWith('.')).sort().map(f => join(dir, f)) : []
const sh = (script: string, files: string[]): string => run(['sh', '-c', script, 'sh', ...files], root).stdout.trim()

/** Part files in partition order (part-00002 before part-00010). */
const parts = (dir: string): string[] => existsSync(dir)
  ? readdirSync(dir).filter(f => f.startsWith('part-')).sort((a, b) => Number(/\d+/.exec(a)?.[0] ?? 0) - Number(/\d+/.exec(b)?.[0] ?? 0)).map(f => join(dir, f))
  : []

/** Independent of the engine: what the output must say, from the input alone. */
function reference(w: string, dataDir: string): string {
  if (w === 'W1') {
    // The job's tokens: lower-cased, split on anything but [a-z0-9] (the generator writes ASCII).
    return `tokens=${sh('cat "$@" | tr "A-Z" "a-z" | tr -cs "a-z0-9" "\\n" | grep -c .', filesIn(join(dataDir, 'text')))}`
  }
  return `records=${sh('cat "$@" | wc -l', filesIn(join(dataDir, 'sort')))} sorted=yes`
}

function resultOf(w: string, dataDir: string): string {
  const out = parts(join(dataDir, 'out', w.toLowerCase()))
  if (out.length === 0) return 'no output'
  if (w === 'W1') return `tokens=${sh('cat "$@" | awk -F "\\t" \'{ s += $2 } END { printf "%d", s }\'', out)}`
  const v = sh(`${join(benchDir, 'gen', 'verify.sh')} W4 "$@"`, out)
  return v.replace(/ sha256=.*$/, '')
}

// ---- one run -------------------------------------------------------------------------------

type Point = {
  workload: string; gib: number; input_bytes: number; seconds: number | null; s_per_gib: number | null
  worker_rss_mib: number[]; master_rss_mib: number | null; verified: boolean; result: string; reference: string; other_cpus: number | null; error?: string
}

// Roles by command line; two workers are `worker` and `worker#2`.
const namer: Namer = (_pid, argv, isRoot) => argv.includes('worker') ? 'worker' : argv.includes('master') ? 'master' : argv.includes('local') ? 'local' : isRoot ? 'main' : 'other'
const KEPT = /still up: (\S+) \(its token/

async function runOne(bin: string, w: string, gib: number, dataDir: string): Promise<Point> {
  const tmp = join(benchDir, '.data', 'tmp', `scaling-${w}`)
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  const inputs = filesIn(join(dataDir, w === 'W1' ? 'text' : 'sort'))
  const inputBytes = inputs.reduce((n, f) => n + statSync(f).size, 0)
  say(`${w} at ${gib} GiB`)
  let keptAt: number | undefined
  // --keep holds the roles up after the job, so their final VmHWM can be read before they go.
  const r = await measure([[bin, 'local', join(benchDir, 'jobs', JOBS[w]!), '--workers', '2', '--max-mem', MAX_MEM, '--data-dir', dataDir, '--keep', '--json']], {
    cwd: dataDir, namer, env: { TMPDIR: tmp, MINISPARK_TOKEN: undefined }, timeoutMs: Math.max(20, 60 * gib) * 60_000,
    doneWhen: (out, err) => { if (!KEPT.test(err)) return false; keptAt ??= Date.now(); return /^\{/m.test(out) || Date.now() - keptAt > 1000 },
  })
  const rss = new Map(r.peaks)
  for (const [name, pid] of r.pids) { const h = hwmBytes(pid); if (h !== null) rss.set(name, Math.max(rss.get(name) ?? 0, h)) }
  await stopPids([...r.pids].filter(([n]) => n !== 'local').map(([, pid]) => pid))
  const localPid = r.pids.get('local')
  if (localPid !== undefined) await stopPids([localPid])
  rmSync(tmp, { recursive: true, force: true })
  const ok = r.code === 0 && /^\{/m.test(r.stdout)
  const workerRss = [...rss].filter(([n]) => n.startsWith('worker')).sort(([a], [b]) => a.localeCompare(b)).map(([, b]) => Math.round(b / MiB))
  const point: Point = {
    workload: w, gib, input_bytes: inputBytes, seconds: ok ? r.seconds : null, s_per_gib: ok ? r.seconds / (inputBytes / 2 ** 30) : null,
    worker_rss_mib: workerRss, master_rss_mib: rss.has('master') ? Math.round(rss.get('master')! / MiB) : null,
    verified: false, result: '', reference: '', other_cpus: r.otherCpus,
  }
  if (!ok) { point.error = `exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' ').slice(-300)}`; return point }
  point.result = resultOf(w, dataDir)
  point.reference = reference(w, dataDir)
  point.verified = point.result === point.reference
  rmSync(join(dataDir, 'out', w.toLowerCase()), { recursive: true, force: true })
  return point
}

// ---- table and plot ------------------------------------------------------------------------

function table(points: Point[]): string {
  const rows = [['workload', 'input GiB', 'wall s', 's per GiB', '× the smallest size\'s s/GiB', 'peak RSS MiB per worker', 'master MiB', 'others\' CPUs', 'result']]
  for (const w of workloads) {
    const mine = points.filter(p => p.workload === w)
    const base = mine.find(p => p.s_per_gib !== null)?.s_per_gib ?? null
    for (const p of mine) {
      rows.push([w, (p.input_bytes / 2 ** 30).toFixed(2), p.seconds === null ? 'failed' : p.seconds.toFixed(1), p.s_per_gib === null ? '–' : p.s_per_gib.toFixed(1),
        p.s_per_gib === null || base === null ? '–' : `${(p.s_per_gib / base).toFixed(2)}×`, p.worker_rss_mib.join(' / ') || '–', p.master_rss_mib === null ? '–' : String(p.master_rss_mib),
        p.other_cpus === null ? '–' : p.other_cpus.toFixed(2), p.error !== undefined ? `failed: ${p.error.slice(0, 80)}` : p.verified ? 'verified' : `**NOT VERIFIED** (${p.result} vs ${p.reference})`])
    }
  }
  const width = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(width[i]!)).join(' | ')} |`
  return [line(rows[0]!), `| ${width.map(n => '-'.repeat(n)).join(' | ')} |`, ...rows.slice(1).map(line)].join('\n')
}

const COLORS: Record<string, string> = { W1: '#1f77b4', W4: '#d62728' }
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')

/** Two panels: wall time against input size (with the line a linear cost from the smallest size
 *  would follow), and the largest worker's peak RSS against input size (with --max-mem + 200 MiB). */
function svg(points: Point[], title: string): string {
  const W = 900, H = 380, pad = { l: 60, r: 20, t: 50, b: 50 }, gap = 70
  const pw = (W - pad.l - pad.r - gap) / 2, ph = H - pad.t - pad.b
  const ok = points.filter(p => p.seconds !== null)
  const xMax = Math.max(...sizes, ...ok.map(p => p.input_bytes / 2 ** 30)) * 1.05
  const niceMax = (v: number): number => { const e = 10 ** Math.floor(Math.log10(Math.max(v, 1e-9))); return Math.ceil(v / e) * e }
  const linearMax = Math.max(0, ...workloads.map(w => { const m = ok.filter(p => p.workload === w); return m.length ? m[0]!.s_per_gib! * xMax : 0 }))
  const tMax = niceMax(Math.max(1, ...ok.map(p => p.seconds!), linearMax))
  const capMiB = maxMemBytes / MiB + 200
  const rMax = niceMax(Math.max(capMiB, ...points.map(p => Math.max(0, ...p.worker_rss_mib))) * 1.05)
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`]
  const panel = (x0: number, yMax: number, yLabel: string, series: (w: string) => [number, number][], guide: (w: string) => [number, number][] | null, hline: { y: number; label: string } | null): void => {
    const X = (v: number) => x0 + (v / xMax) * pw
    const Y = (v: number) => pad.t + ph - (v / yMax) * ph
    out.push(`<rect x="${x0}" y="${pad.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`)
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4
      out.push(`<line x1="${x0}" x2="${x0 + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`, `<text x="${x0 - 6}" y="${Y(v) + 4}" text-anchor="end">${+v.toFixed(1)}</text>`)
    }
    for (const s of sizes) out.push(`<line x1="${X(s)}" x2="${X(s)}" y1="${pad.t + ph}" y2="${pad.t + ph + 4}" stroke="#888"/>`, `<text x="${X(s)}" y="${pad.t + ph + 18}" text-anchor="middle">${s}</text>`)
    out.push(`<text x="${x0 + pw / 2}" y="${H - 10}" text-anchor="middle">input GiB</text>`,
      `<text x="${x0 - 45}" y="${pad.t + ph / 2}" text-anchor="middle" transform="rotate(-90 ${x0 - 45} ${pad.t + ph / 2})">${esc(yLabel)}</text>`)
    if (hline !== null) out.push(`<line x1="${x0}" x2="${x0 + pw}" y1="${Y(hline.y)}" y2="${Y(hline.y)}" stroke="#999" stroke-dasharray="6 4"/>`, `<text x="${x0 + pw - 4}" y="${Y(hline.y) - 4}" text-anchor="end" fill="#666">${esc(hline.label)}</text>`)
    workloads.forEach((w, i) => {
      const c = COLORS[w] ?? '#333'
      const g = guide(w)
      if (g !== null && g.length === 2) out.push(`<line x1="${X(g[0]![0])}" y1="${Y(g[0]![1])}" x2="${X(g[1]![0])}" y2="${Y(g[1]![1])}" stroke="${c}" stroke-dasharray="3 3" opacity="0.6"/>`)
      const pts = series(w)
      if (pts.length > 0) out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`)
      for (const [x, y] of pts) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${c}"/>`)
      out.push(`<rect x="${x0 + 10}" y="${pad.t + 10 + i * 18}" width="12" height="3" fill="${c}"/>`, `<text x="${x0 + 28}" y="${pad.t + 15 + i * 18}">${w}</text>`)
    })
  }
  const gibOf = (p: Point) => p.input_bytes / 2 ** 30
  panel(pad.l, tMax, 'wall seconds (dashed: linear from the smallest size)',
    w => ok.filter(p => p.workload === w).map(p => [gibOf(p), p.seconds!]),
    w => { const m = ok.filter(p => p.workload === w); return m.length ? [[0, 0], [xMax, m[0]!.s_per_gib! * xMax]] : null }, null)
  panel(pad.l + pw + gap, rMax, 'peak RSS of the largest worker, MiB',
    w => points.filter(p => p.workload === w && p.worker_rss_mib.length > 0).map(p => [gibOf(p), Math.max(...p.worker_rss_mib)]),
    () => null, { y: capMiB, label: `--max-mem ${MAX_MEM} + 200 MiB` })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

// ---- main ----------------------------------------------------------------------------------

const { bin, engine } = binary()
const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
const loadBefore = loadavg().map(x => x.toFixed(2)).join(' ')
const points: Point[] = []
for (const gib of sizes) {
  const dataDir = join(benchDir, '.data', `scale-${gib}`)
  mkdirSync(join(dataDir, 'out'), { recursive: true })
  const mb = Math.round(gib * 1024)
  for (const w of workloads) {
    generate(dataDir, w === 'W1' ? 'text' : 'sort', mb)
    points.push(await runOne(bin, w, gib, dataDir))
    const p = points.at(-1)!
    say(`${w} ${gib} GiB: ${p.seconds === null ? 'failed' : `${p.seconds.toFixed(1)} s`}, workers ${p.worker_rss_mib.join('/')} MiB, ${p.verified ? 'verified' : `NOT VERIFIED (${p.error ?? `${p.result} vs ${p.reference}`})`}`)
  }
  if (!keepData) rmSync(dataDir, { recursive: true, force: true })
}
points.sort((a, b) => a.workload.localeCompare(b.workload) || a.gib - b.gib)

const machine = {
  date: startedAt, host_cpus: cpus().length, cpu_model: cpus()[0]?.model ?? '?', mem_total: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  kernel: run(['uname', '-sr'], root).stdout.trim(), bun: Bun.version, engine, max_mem: MAX_MEM, load_before: loadBefore, load_after: loadavg().map(x => x.toFixed(2)).join(' '),
}
const stamp = startedAt.replace(/:/g, '-')
mkdirSync(join(benchDir, 'results'), { recursive: true })
writeFileSync(join(benchDir, 'results', `${stamp}-scaling.json`), JSON.stringify({ machine, sizes, workloads, points }, null, 2) + '\n')
const title = `W1 and W4 by input size, local --workers 2, --max-mem ${MAX_MEM} (${machine.date.slice(0, 10)}, ${machine.host_cpus} CPUs, ${engine})`
const md = [`Machine: ${machine.date}; ${machine.host_cpus} CPUs (${machine.cpu_model}), ${machine.mem_total} RAM, ${machine.kernel}; Bun ${machine.bun}; engine ${engine}; --max-mem ${MAX_MEM}; load average before ${machine.load_before}, after ${machine.load_after}`,
  '', table(points), '', '![scaling curve](bench/latest/scaling.svg)', ''].join('\n')
mkdirSync(join(benchDir, 'latest'), { recursive: true })
writeFileSync(join(benchDir, 'latest', 'scaling.md'), md)
writeFileSync(join(benchDir, 'latest', 'scaling.svg'), svg(points, title))
writeFileSync(join(benchDir, 'results', `${stamp}-scaling.svg`), svg(points, title))
console.log(md)
console.log(`written: bench/results/${stamp}-scaling.json, bench/latest/scaling.md, bench/latest/scaling.svg`)
