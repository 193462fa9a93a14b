// Builds dist/minispark: one executable with every role. The task thread's entry is a second
// entrypoint; inside the binary it lives at /$bunfs/root/roles/worker/task/entry.ts (paths are
// relative to the entrypoints' common root, src/), which is where threads.ts looks for it; the file thread likewise.
import { rmSync } from 'node:fs'

const outfile = process.argv[2] ?? 'dist/minispark'
rmSync(outfile, { force: true })
const result = await Bun.build({
  entrypoints: ['./src/cli.ts', './src/roles/worker/task/entry.ts', './src/roles/worker/files/entry.ts'],
  // --smol: JSC's small heap for the main thread of every role. The main thread only does I/O
  // (task threads choose their heap by the worker's budget), so a small heap costs nothing there
  // and keeps an idle worker's resident size low.
  compile: { outfile, execArgv: ['--smol'] },
  minify: { syntax: true, whitespace: true },
  sourcemap: 'linked',
})
if (!result.success) {
  for (const log of result.logs) console.error(log)
  process.exit(1)
}
console.log(`built ${outfile}`)
