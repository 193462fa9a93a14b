// Runs the TypeScript compiler (`tsc --noEmit`, the project's options) over the SDK's type tests:
// types.check.ts must compile (each of its @ts-expect-error lines is an error, or tsc fails), and a
// file of plain misuses must fail at exactly the lines that misuse it, with the reason.
import { afterAll, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, killAll, runCommand, tempDir } from '../support/cluster'

afterAll(() => killAll())

const MISUSES = `import type { Session } from ${JSON.stringify(join(ROOT, 'src/sdk/index.ts'))}
export function misuse(ms: Session): void {
  const lines = ms.textFile('books/*.txt')
  lines.reduceByKey((a: string, b: string) => a + b)
  lines.map(w => w.length).groupByKey()
  lines.map(w => [w, 1]).reduceByKey((a, b) => a + 'x')
}
`

test('reduceByKey and groupByKey are refused on datasets that are not keyed; types.check.ts compiles', async () => {
  const dir = tempDir('ms-types-')
  const misuses = join(dir, 'misuses.ts')
  writeFileSync(misuses, MISUSES)
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    extends: join(ROOT, 'tsconfig.json'),
    compilerOptions: { noEmit: true, typeRoots: [join(ROOT, 'node_modules/@types')] },
    include: [],
    files: [join(ROOT, 'test/sdk/types.check.ts'), misuses],
  }))
  const r = await runCommand([process.execPath, 'x', 'tsc', '--noEmit', '-p', join(dir, 'tsconfig.json')], { cwd: ROOT, timeoutMs: 60_000 })
  const errors = r.stdout.split('\n').filter(l => l.includes('error TS'))
  // Every error is in the misuse file, none in types.check.ts (its expected errors are all used).
  expect(errors.filter(l => !l.includes('misuses.ts('))).toEqual([])
  const at = (line: number): string => errors.filter(l => l.includes(`misuses.ts(${line},`)).join('\n')
  expect(at(4)).toContain("Property 'reduceByKey' does not exist on type 'Dataset<string, {}>'")
  expect(at(5)).toContain("Property 'groupByKey' does not exist on type 'Dataset<number, {}>'")
  expect(at(6)).toContain("Type 'string' is not assignable to type 'number'")
  expect(errors).toHaveLength(3)
  expect(r.code).toBe(2)
}, 60_000)
