// Every job in examples/ runs as it is with `minispark local --workers 3` on a copy of
// examples/data, and its output equals a reference computed here by plain loops over the same
// sample files (never by the engine).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { cpSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobResult } from '../../src/api/jobs'
import { killAll, partFiles, plainLines, plainWordcount, readParts, ROOT, runCli, tempDir } from '../support/cluster'
import { bag } from '../support/oracle'

const EXAMPLES = join(ROOT, 'examples')
let data = ''

beforeAll(() => {
  data = tempDir('ms-examples-')
  cpSync(join(EXAMPLES, 'data'), data, { recursive: true, filter: src => !src.startsWith(join(EXAMPLES, 'data', 'out')) })
})

afterAll(() => killAll())

const filesOf = (dir: string, ext: string): string[] =>
  readdirSync(join(data, dir)).filter(f => f.endsWith(ext)).sort().map(f => join(data, dir, f))

/** Runs the example file as it is on a fresh local cluster of 3 workers; returns its result. */
async function runExample(file: string): Promise<JobResult> {
  const r = await runCli(['local', join(EXAMPLES, file), '--workers', '3', '--data-dir', data, '--json'], { timeoutMs: 60_000 })
  if (r.code !== 0) throw new Error(`minispark local ${file} exited ${r.code}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`)
  return JSON.parse(r.stdout) as JobResult
}

/** The part files of an output dir are numbered without gaps and _SUCCESS is there. */
function outputLines(out: string): string[] {
  const dir = join(data, out)
  const parts = partFiles(dir)
  expect(parts).toEqual(parts.map((_, i) => `part-${String(i).padStart(5, '0')}`))
  expect(readdirSync(dir).sort()).toEqual([...parts, '_SUCCESS'].sort())
  return readParts(dir)
}

const jsLess = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

const references: Record<string, (result: JobResult) => void> = {
  'wordcount.json': result => {
    const counts = plainWordcount(filesOf('books', '.txt'))
    const want = [...counts].filter(([, n]) => n >= 2)
    expect(bag(outputLines('out/wordcount').map(l => JSON.parse(l)))).toEqual(bag(want))
    expect(result.sinks.words_total).toEqual({ op: 'count', value: [...counts.values()].reduce((a, b) => a + b, 0) })
  },

  'grep.json': result => {
    const re = /\bpeople\b/
    const want = plainLines(filesOf('books', '.txt')).filter(l => re.test(l))
    expect(want.length).toBeGreaterThan(10)
    // a filter keeps the input's order, and parts follow the splits: the output is in file order
    expect(outputLines('out/grep')).toEqual(want)
    expect(result.sinks.n).toEqual({ op: 'count', value: want.length })
  },

  'inverted-index.json': () => {
    const index = new Map<string, Set<string>>()
    for (const file of filesOf('docs', '.txt')) {
      const rel = `docs/${file.slice(file.lastIndexOf('/') + 1)}`
      for (const line of plainLines([file])) {
        for (const w of line.toLowerCase().split(/[^a-z0-9]+/)) {
          if (w === '') continue
          let files = index.get(w)
          if (files === undefined) index.set(w, files = new Set())
          files.add(rel)
        }
      }
    }
    const want = [...index.keys()].sort(jsLess).map(w => [w, [...index.get(w)!].sort()])
    expect(want.some(([, files]) => (files as string[]).length > 1)).toBe(true)
    expect(outputLines('out/inverted-index').map(l => JSON.parse(l))).toEqual(want)
  },

  'join-aggregate.json': result => {
    const rows = (file: string): string[][] => readFileSync(join(data, file), 'utf8').trim().split('\n').slice(1).map(l => l.split(','))
    const countryOf = new Map(rows('shop/customers.csv').map(([id, , country]) => [id!, country!]))
    const cents = new Map<string, number>()
    let orphans = 0
    for (const [, customer, amount] of rows('shop/orders.csv')) {
      const country = countryOf.get(customer!)
      if (country === undefined) { orphans++; continue }
      cents.set(country, (cents.get(country) ?? 0) + Math.round(Number(amount) * 100))
    }
    expect(orphans).toBeGreaterThan(0)   // the inner join must drop these
    const want = [...cents.keys()].sort(jsLess).map(c => `${c}\t${(cents.get(c)! / 100).toFixed(2)}`)
    expect(outputLines('out/country-totals')).toEqual(want)
    expect(result.sinks.top).toEqual({ op: 'collect', values: want.slice(0, 10) })
  },

  'sort.json': () => {
    const lines = plainLines(filesOf('sort', '.dat'))
    const key = (l: string): string => l.slice(0, 10)
    expect(new Set(lines.map(key)).size).toBe(lines.length)   // keys are unique: one right order
    const want = [...lines].sort((a, b) => jsLess(key(a), key(b)))
    expect(outputLines('out/sorted')).toEqual(want)
  },
}

describe('examples/*.json on minispark local --workers 3', () => {
  const files = readdirSync(EXAMPLES).filter(f => f.endsWith('.json')).sort()

  test('every example has a reference here', () => {
    expect(files.filter(f => references[f] === undefined)).toEqual([])
  })

  for (const file of files) {
    test(file, async () => {
      const check = references[file]
      if (check === undefined) throw new Error(`no reference for ${file}`)
      check(await runExample(file))
    }, 90_000)
  }
})
