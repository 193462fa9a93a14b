// The SDK as a user gets it: `npm pack` of packages/sdk (its prepack builds dist/), installed from
// the tarball into a fresh project with no registry, type-checked there with NodeNext resolution
// and no @types at all, and run against a real local cluster (a master and 2 worker processes
// with a token) from Node and from Bun. The word count it computes is checked against a plain
// loop; a misuse of a callback's type must be a type error there (callbacks are not `any`).
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { local, type Session } from 'minispark'
import { ROOT, generateText, killAll, plainLines, plainWordcount, runCommand, tempDir, textFiles } from '../support/cluster'

const SDK_DIR = join(ROOT, 'packages/sdk')
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const NODE = Bun.which('node')

let ms: Session | undefined
let data = ''

beforeAll(async () => {
  data = tempDir('ms-sdk-pkg-data-')
  generateText(join(data, 'books'), 0.2, 2, 17)
  ms = await local({ workers: 2, slots: 1, dataDir: data })
}, 30_000)

afterAll(async () => {
  await ms?.stop()
  killAll()
})

// Written by the test into the fresh project; compiled by tsc there, then run by node and bun.
const MAIN = `import { connect, local, JobFailedError, type Dataset } from 'minispark'

declare const process: { env: Record<string, string | undefined>; exitCode?: number }

const ms = await connect(process.env.MS_URL ?? '')   // the token comes from MINISPARK_TOKEN
const lines: Dataset<string> = ms.textFile('books/*.txt')
// @ts-expect-error a line is a string: callbacks are typed, never any
lines.map(l => l.toFixed(2))
const counts = await lines
  .flatMap(l => l.toLowerCase().split(/[^a-z0-9]+/).filter(w => w !== ''))
  .map(w => [w, 1])
  .reduceByKey((a, b) => a + b)
  .collect()
const total: number = await lines.count()
let failed = ''
try {
  await lines.map(l => { if (l.length >= 0) throw new Error('boom'); return l }).count({ maxTaskAttempts: 1 })
} catch (e) {
  failed = e instanceof JobFailedError ? e.state : String(e)
}
// A constant of the program (in a module with top-level await: Bun's transpiler folds none there).
const limit = 3
let folded = ''
try { lines.filter(l => l.length > limit).toJobRequest(); folded = 'sent' } catch (e) { folded = String(e).includes('withParams({ limit })') ? 'refused' : String(e) }
const ids = lines.map(l => l.length).toJobRequest({ op: 'count' }).nodes.map(n => n.id)
const started = await local().then(() => 'started', (e: unknown) => String(e))
const runtime = 'Bun' in globalThis ? 'bun' : 'node'
console.log(JSON.stringify({ runtime, total, counts, failed, folded, ids, local: started }))
`

test('npm pack holds only the built SDK; installed offline it type-checks with NodeNext and runs from Node and Bun', async () => {
  expect(NODE).not.toBeNull()
  const work = tempDir('ms-sdk-pkg-')
  const took: string[] = []
  let t0 = performance.now()
  const lap = (what: string): void => { took.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`); t0 = performance.now() }
  // ---- pack ----
  const packed = await runCommand(['npm', 'pack', '--json', '--pack-destination', work], { cwd: SDK_DIR, timeoutMs: 240_000 })
  expect(packed.code, packed.stderr).toBe(0)
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; size: number; files: { path: string }[] }[]
  const files = info[0]!.files.map(f => f.path).sort()
  expect(files).toEqual(['LICENSE', 'README.md', 'dist/index.d.ts', 'dist/index.js', 'package.json'])
  expect(info[0]!.size).toBeLessThan(1024 * 1024)
  const manifest = JSON.parse(readFileSync(join(SDK_DIR, 'package.json'), 'utf8')) as Record<string, unknown>
  expect(manifest).toMatchObject({ name: 'minispark', license: expect.any(String), engines: { node: '>=20' } })
  expect(manifest.dependencies).toBeUndefined() // everything is inside dist/index.js: no registry needed
  const tarball = join(work, info[0]!.filename)
  lap('pack')

  // ---- a fresh project: install from the tarball with no registry ----
  const app = join(work, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  const installed = await runCommand(['npm', 'install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: app, timeoutMs: 60_000 })
  expect(installed.code, installed.stderr).toBe(0)
  expect(existsSync(join(app, 'node_modules/minispark/dist/index.js'))).toBe(true)
  lap('install')

  // ---- type check with NodeNext, no @types: the declarations stand alone ----
  writeFileSync(join(app, 'main.ts'), MAIN)
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, types: [], skipLibCheck: false, outDir: 'out' },
    files: ['main.ts'],
  }))
  const tsc = await runCommand([NODE!, TSC, '-p', app], { cwd: app, timeoutMs: 60_000 })
  expect(tsc.stdout + tsc.stderr).toBe('')
  expect(tsc.code).toBe(0)
  lap('tsc')

  // ---- run the compiled program from Node and from Bun against the cluster ----
  const books = textFiles(join(data, 'books'))
  const reference = plainWordcount(books)
  const env = { MS_URL: ms!.url, MINISPARK_TOKEN: ms!.token!, MINISPARK_BIN: '/nonexistent/minispark' }
  for (const runtime of [NODE!, process.execPath]) {
    const r = await runCommand([runtime, join(app, 'out/main.js')], { cwd: app, env, timeoutMs: 60_000 })
    expect(r.code, r.stderr).toBe(0)
    const got = JSON.parse(r.stdout) as { runtime: string; total: number; counts: [string, number][]; failed: string; folded: string; ids: string[]; local: string }
    expect(got.runtime).toBe(runtime === NODE ? 'node' : 'bun')
    expect(got.total).toBe(plainLines(books).length)
    expect(new Map(got.counts)).toEqual(reference)
    expect(got.failed).toBe('FAILED')
    // what the README says of constants: a module with top-level await gets no folding, under
    // Node nor Bun, so the const is a variable of the program like any other
    expect(got.folded).toBe('refused')
    // local(): under Node it says to connect(); under Bun it needs the minispark executable
    expect(got.local).toMatch(runtime === NODE ? /under Bun only.*connect\(url/ : /"\/nonexistent\/minispark" was not found.*local\(\{ bin \}\)/)
    // default step names point at the program's line, from the bundle too
    expect(got.ids).toEqual(['read_text:books/*.txt', expect.stringMatching(/^map@main\.js:\d+$/), expect.stringMatching(/^count@main\.js:\d+$/)])
    lap(got.runtime)
  }
  console.log(`packed SDK: ${took.join(', ')}`)
}, 360_000)
