// Every job starts on a fresh task thread (no job sees another's globals), so what a thread loads
// before its first record is paid by every job: a one-task job waits for it. The HTTP framework and
// its schema compiler are the main thread's business; a task thread must not load them.
import { expect, test } from 'bun:test'

test('the task thread does not load the HTTP framework or the schema library', async () => {
  const entry = new URL('../../../src/roles/worker/task/entry.ts', import.meta.url).pathname
  const out = await Bun.build({ entrypoints: [entry], target: 'bun', sourcemap: 'none' })
  expect(out.success).toBe(true)
  const code = await out.outputs[0]!.text()
  // The bundle names each module it holds in a comment: node_modules/<package>/...
  const packages = new Set([...code.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map(m => m[1]!))
  expect(packages.has('msgpackr')).toBe(true)   // the check sees packages at all
  expect([...packages].filter(p => p === 'elysia' || p.startsWith('@sinclair/'))).toEqual([])
})
