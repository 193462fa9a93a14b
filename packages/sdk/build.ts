// Builds the SDK package (packages/sdk/dist): one ES module with every dependency inside (so it
// installs with no registry and runs under Node 20+ and Bun), and one declaration file with the
// types of its dependencies inlined (so a project needs nothing else to type-check against it).
// `npm pack` in this folder runs it (prepack); `bun packages/sdk/build.ts` runs it by hand.
import { rmSync } from 'node:fs'
import { join } from 'node:path'

const here = import.meta.dir
const root = join(here, '..', '..')
const entry = join(root, 'src/sdk/index.ts')
const out = join(here, 'dist')
rmSync(out, { recursive: true, force: true })

const result = await Bun.build({
  entrypoints: [entry],
  outdir: out,
  target: 'node',
  format: 'esm',
  // The bundle says which runtime it is not tied to: local() looks for the minispark binary
  // instead of this repository's CLI source.
  define: { 'process.env.MINISPARK_SDK_BUNDLE': '"1"' },
  plugins: [{
    name: 'typebox-for-elysia',
    setup(b) { b.onResolve({ filter: /^elysia$/ }, () => ({ path: join(here, 'typebox-t.ts') })) },
  }],
})
if (!result.success) {
  for (const log of result.logs) console.error(log)
  process.exit(1)
}

const dts = Bun.spawnSync([process.execPath, 'x', 'dts-bundle-generator', '--silent', '--no-banner', '--no-check',
  '--project', join(here, 'tsconfig.build.json'), '--external-inlines', '@sinclair/typebox', 'elysia',
  '-o', join(out, 'index.d.ts'), entry], { cwd: root, stdout: 'inherit', stderr: 'inherit' })
if (dts.exitCode !== 0) process.exit(dts.exitCode ?? 1)
console.log(`built ${out}`)
