// `bun run bench [--mb 200]`: word count (W1) on the compiled binary as `local --workers 2`,
// against an idiomatic single-process Bun loop over the same files. Reports wall time, MB/s and
// peak RSS (VmHWM) of every process; it never passes or fails.
// The data is generated once with bench/gen and cached in bench/.data (ignored by git).
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] ?? fallback : fallback
}
const mb = Number(arg('mb', '200'))
const dataDir = join(root, 'bench', '.data')
const textDir = `text-${mb}mb`
const bin = join(root, 'dist', 'minispark')

function sh(cmd: string[], cwd = root): void {
  const r = Bun.spawnSync(cmd, { cwd, stdout: 'inherit', stderr: 'inherit' })
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} exited ${r.exitCode}`)
}

if (!existsSync(join(dataDir, textDir))) sh(['node', 'bench/gen/gen-text.mjs', '--out', join(dataDir, textDir), '--mb', String(mb), '--files', '8', '--seed', '42'])
sh([process.execPath, 'build.ts'])
const inputBytes = readdirSync(join(dataDir, textDir)).reduce((n, f) => n + statSync(join(dataDir, textDir, f)).size, 0)

const job = {
  name: 'W1-wordcount',
  nodes: [
    { id: 'lines', op: 'read_text', path: `${textDir}/*.txt` },
    { id: 'words', op: 'flat_map', input: 'lines', fn: 'line => line.toLowerCase().split(/[^a-z0-9]+/).filter(w => w)' },
    { id: 'pairs', op: 'map', input: 'words', fn: 'w => [w, 1]' },
    { id: 'counts', op: 'reduce_by_key', input: 'pairs', fn: '(a, b) => a + b' },
    { id: 'out', op: 'write_text', input: 'counts', path: 'out/w1', overwrite: true },
  ],
}
writeFileSync(join(dataDir, 'w1.json'), JSON.stringify(job))

/** Peak RSS in MiB of a process and its descendants, read from /proc while they live. */
function descendants(pid: number): number[] {
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    try {
      const kids = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim()
      if (kids) out.push(...kids.split(/\s+/).map(Number))
    } catch { /* the process has just exited */ }
  }
  return out
}
const hwmMiB = (pid: number): number | null => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Math.round(Number(m[1]) / 1024) : null
  } catch { return null }
}
/** "master", the worker's --id, or the role word, from the process's command line. */
function roleOf(pid: number): string {
  let argv: string[]
  try { argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') } catch { return '?' }
  const id = argv.indexOf('--id')
  if (argv.includes('worker')) return id >= 0 ? argv[id + 1] ?? 'worker' : 'worker'
  return argv.includes('master') ? 'master' : argv.includes('local') ? 'local' : argv.slice(1).join(' ').slice(0, 30)
}

async function measure(cmd: string[], cwd: string): Promise<{ seconds: number; peaks: Map<string, number>; stdout: string }> {
  const t0 = performance.now()
  const proc = Bun.spawn(cmd, { cwd, stdout: 'pipe', stderr: 'inherit' })
  const peaks = new Map<string, number>()
  const names = new Map<number, string>()
  const poll = setInterval(() => {
    for (const pid of descendants(proc.pid)) {
      if (!names.has(pid)) names.set(pid, roleOf(pid))
      const h = hwmMiB(pid)
      if (h !== null) peaks.set(names.get(pid)!, Math.max(peaks.get(names.get(pid)!) ?? 0, h))
    }
  }, 50)
  const stdout = await new Response(proc.stdout).text()
  await proc.exited
  clearInterval(poll)
  return { seconds: (performance.now() - t0) / 1000, peaks, stdout }
}

const loop = join(root, 'bench', 'baselines', 'w1-idiomatic.ts')
const engine = await measure([bin, 'local', 'w1.json', '--workers', '2', '--data-dir', '.'], dataDir)
const base = await measure([process.execPath, loop, join(dataDir, textDir)], dataDir)
const rows = [
  { system: 'minispark local --workers 2', seconds: engine.seconds, peaks: engine.peaks, note: engine.stdout.trim().split('\n').at(-1) ?? '' },
  { system: 'idiomatic Bun loop, 1 process', seconds: base.seconds, peaks: base.peaks, note: `${base.stdout.trim()} distinct words` },
]
console.log(`\nW1 word count, ${(inputBytes / 2 ** 20).toFixed(0)} MiB of text, ${new Date().toISOString()}`)
for (const r of rows) {
  const mbs = inputBytes / 2 ** 20 / r.seconds
  console.log(`${r.system.padEnd(32)} ${r.seconds.toFixed(1).padStart(7)} s ${mbs.toFixed(1).padStart(7)} MiB/s  peak RSS MiB: ${[...r.peaks].map(([k, v]) => `${k} ${v}`).join(', ')}  (${r.note})`)
}
writeFileSync(join(root, 'bench', '.data', 'last-w1.json'), JSON.stringify(rows.map(r => ({ ...r, peaks: Object.fromEntries(r.peaks) })), null, 2))
