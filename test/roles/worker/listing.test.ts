// Clearing outputs on a worker's disk, with real files in a temporary data dir.
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clearOutputs } from '../../../src/roles/worker/listing'

const dataDir = mkdtempSync(join(tmpdir(), 'ms-listing-'))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

function output(path: string, files: Record<string, number>): string {
  const dir = join(dataDir, path)
  mkdirSync(join(dir, '_temporary'), { recursive: true })
  for (const [name, ageMs] of Object.entries(files)) {
    writeFileSync(join(dir, name), `${name}\n`)
    const t = (Date.now() - ageMs) / 1000
    utimesSync(join(dir, name), t, t)
  }
  return dir
}

describe('clearOutputs', () => {
  test('without an age, each output folder goes whole; paths outside the data dir are left alone', () => {
    const dir = output('out/a', { 'part-00000': 0 })
    writeFileSync(join(dataDir, 'keep.txt'), 'x')
    clearOutputs(dataDir, ['out/a', '../outside', '.', 'out/missing'])
    expect(existsSync(dir)).toBe(false)
    expect(existsSync(join(dataDir, 'keep.txt'))).toBe(true)
  })

  test('with an age, only the files written before it go: the parts of the job that overwrote the output stay', () => {
    const dir = output('out/b', { 'part-00000': 60_000, 'part-00001': 60_000, '_SUCCESS': 60_000, 'part-00002': 1_000 })
    clearOutputs(dataDir, ['out/b', 'out/missing'], 30_000)
    expect(readdirSync(dir).sort()).toEqual(['_temporary', 'part-00002'])
  })
})
