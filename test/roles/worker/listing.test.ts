// Listing inputs and checking, clearing, dropping and finalizing outputs on a worker's disk, with
// real files (and links) in temporary dirs.
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { answerListing, clearOutputs, dropOutputs, finalizeOutputs } from '../../../src/roles/worker/listing'

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

// A data dir with links that leave it: every clear, drop and finalize decides on real paths and
// never deletes or writes through a link out of the data dir, whichever component is the link.
describe('links out of the data dir are never followed by a delete or a write', () => {
  const setup = (): { root: string; outside: string } => {
    const root = mkdtempSync(join(tmpdir(), 'ms-listing-links-'))
    const outside = mkdtempSync(join(tmpdir(), 'ms-listing-outside-'))
    mkdirSync(join(outside, 'victim', '_temporary'), { recursive: true })
    writeFileSync(join(outside, 'victim', 'keep.txt'), 'precious\n')
    symlinkSync(outside, join(root, 'escape'))                  // an ancestor that leaves
    symlinkSync(join(outside, 'victim'), join(root, 'direct'))  // the output itself leaves
    symlinkSync(root, join(root, 'self'))                       // the data dir itself, by another name
    symlinkSync(join(outside, 'nowhere'), join(root, 'dangling'))
    mkdirSync(join(root, 'work'))
    writeFileSync(join(root, 'work', 'block'), 'shuffle\n')
    afterAll(() => { rmSync(root, { recursive: true, force: true }); rmSync(outside, { recursive: true, force: true }) })
    return { root, outside }
  }
  const bad = ['escape/victim', 'direct', 'self', 'self/.', 'dangling/x', 'escape/victim/_temporary']

  test('clearOutputs, with and without an age', () => {
    const { root, outside } = setup()
    for (const p of bad) {
      clearOutputs(root, [p])
      clearOutputs(root, [p], 0)
    }
    expect(readFileSync(join(outside, 'victim', 'keep.txt'), 'utf8')).toBe('precious\n')
    expect(existsSync(join(root, 'work', 'block'))).toBe(true)
  })

  test('dropOutputs, kept or not', () => {
    const { root, outside } = setup()
    for (const p of bad) { dropOutputs(root, [p], true); dropOutputs(root, [p], false) }
    expect(readFileSync(join(outside, 'victim', 'keep.txt'), 'utf8')).toBe('precious\n')
    expect(existsSync(join(outside, 'victim', '_temporary'))).toBe(true)
    expect(existsSync(join(root, 'work', 'block'))).toBe(true)
  })

  test('finalizeOutputs writes no _SUCCESS and removes nothing outside', () => {
    const { root, outside } = setup()
    for (const p of bad) expect(() => finalizeOutputs(root, [p])).toThrow(/leaves the data dir|is the data dir itself/)
    expect(existsSync(join(outside, 'victim', '_SUCCESS'))).toBe(false)
    expect(existsSync(join(outside, 'victim', '_temporary'))).toBe(true)
    expect(existsSync(join(outside, 'nowhere'))).toBe(false)
    finalizeOutputs(root, ['fine/out'])
    expect(readdirSync(join(root, 'fine', 'out'))).toEqual(['_SUCCESS'])
  })

  test('the work dir is never cleared or dropped, even when a job names it', () => {
    const { root } = setup()
    clearOutputs(root, ['work'], undefined, [{ path: join(root, 'work'), what: "this worker's work dir" }])
    dropOutputs(root, ['work'], false, [{ path: join(root, 'work'), what: "this worker's work dir" }])
    expect(existsSync(join(root, 'work', 'block'))).toBe(true)
  })

  test('the listing refuses such outputs, naming the node, with or without overwrite', () => {
    const { root } = setup()
    for (const p of bad) {
      for (const overwrite of [false, true]) {
        const a = answerListing(root, { inputs: [], outputs: [{ node_id: 'w', path: p, overwrite }] })
        expect({ p, codes: a.errors.map(e => e.code) }).toEqual({ p, codes: [p.startsWith('self') ? 'OUTPUT_CONFLICT' : 'PATH_OUTSIDE_DATA_DIR'] })
        expect(a.errors[0]!.message).toContain('"w"')
      }
    }
  })
})

describe('listing inputs: each file once, by real path', () => {
  test('`**` through an in-tree link and a link loop lists each file once, by its own path', () => {
    const root = mkdtempSync(join(tmpdir(), 'ms-listing-dedupe-'))
    afterAll(() => rmSync(root, { recursive: true, force: true }))
    mkdirSync(join(root, 'a', 'b'), { recursive: true })
    writeFileSync(join(root, 'a', 'b', 'x.txt'), 'x\n')
    writeFileSync(join(root, 'top.txt'), 'top\n')
    symlinkSync(join(root, 'a'), join(root, 'a', 'b', 'loop'))
    symlinkSync('b', join(root, 'a', 'alias'))
    symlinkSync('top.txt', join(root, 'same.txt'))
    const a = answerListing(root, { inputs: [{ node_id: 'l', path: '**/*.txt' }, { node_id: 'd', path: '.' }], outputs: [] })
    expect(a.errors).toEqual([])
    expect(a.inputs.find(i => i.node_id === 'l')!.files.map(f => f.path)).toEqual(['a/b/x.txt', 'top.txt'])
    expect(a.inputs.find(i => i.node_id === 'd')!.files.map(f => f.path)).toEqual(['top.txt'])
  })
})

describe('an input that matches no file is refused, naming the data dir, unless allow_empty', () => {
  test('a glob that matches nothing, and an empty folder', () => {
    const root = mkdtempSync(join(tmpdir(), 'ms-listing-empty-'))
    afterAll(() => rmSync(root, { recursive: true, force: true }))
    mkdirSync(join(root, 'empty'))
    writeFileSync(join(root, 'empty', '_SUCCESS'), '')
    for (const path of ['books/*.txt', '**/*.csv', 'empty']) {
      const a = answerListing(root, { inputs: [{ node_id: 'l', path }], outputs: [] })
      expect({ path, codes: a.errors.map(e => e.code) }).toEqual({ path, codes: ['INPUT_NOT_FOUND'] })
      expect(a.errors[0]!.message).toContain(realpathSync(root))
      expect(a.errors[0]!.message).toContain('"l"')
      const allowed = answerListing(root, { inputs: [{ node_id: 'l', path, allow_empty: true }], outputs: [] })
      expect(allowed.errors).toEqual([])
      expect(allowed.inputs).toEqual([{ node_id: 'l', files: [] }])
    }
  })
})
