// Spill runs on disk (src/roles/worker/task/run-store.ts): what is written reads back whole, from
// any offset; a long write collects the young generation as it goes (a spill's garbage, made while
// all it spills is alive, would otherwise pile up to the size of the live heap); a run that cannot
// be written leaves no file behind.
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, readdirSync } from 'node:fs'
import { FileRunStore } from '../../../src/roles/worker/task/run-store'
import { YOUNG_COLLECT_BYTES, youngCollector } from '../../../src/roles/worker/task/young-gc'
import { killAll, tempDir } from '../../support/cluster'

afterAll(killAll)

function chunksOf(total: number, size: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0; at < total; at += size) {
    const c = new Uint8Array(Math.min(size, total - at))
    for (let i = 0; i < c.length; i++) c[i] = (at + i) % 251
    out.push(c)
  }
  return out
}

describe('FileRunStore', () => {
  test('a run reads back byte for byte, whole or from an offset', () => {
    const dir = tempDir('ms-run-store-')
    const store = new FileRunStore(dir, 't', () => {})
    const chunks = chunksOf(1_000_003, 65_536)
    const run = store.write(chunks)
    expect(run.size).toBe(1_000_003)
    const back = Buffer.concat([...store.read(run)])
    expect(back.equals(Buffer.concat(chunks))).toBe(true)
    const tail = Buffer.concat([...store.read(run, 999_000)])
    expect(tail.equals(Buffer.concat(chunks).subarray(999_000))).toBe(true)
    store.remove(run)
    expect(existsSync(run.path)).toBe(false)
  })

  test('writing collects the young generation once every YOUNG_COLLECT_BYTES, counted across runs and stores', () => {
    const dir = tempDir('ms-run-store-')
    let collections = 0
    const moved = youngCollector(() => { collections++ })
    const store = new FileRunStore(dir, 't', moved)
    store.write(chunksOf(YOUNG_COLLECT_BYTES - 1, 1 << 20))
    expect(collections).toBe(0)
    // Many small spills make garbage too: the count goes on from the last run.
    store.write(chunksOf(1, 1))
    expect(collections).toBe(1)
    store.write(chunksOf(2.5 * YOUNG_COLLECT_BYTES, 1 << 20))
    expect(collections).toBe(3)
    // A task's other stores (and its fetches) make garbage in the same heap: one count for all.
    const other = new FileRunStore(dir, 'u', moved)
    other.write(chunksOf(0.5 * YOUNG_COLLECT_BYTES, 1 << 20))
    expect(collections).toBe(4)
  })

  test('a write that fails midway removes its file and says why', () => {
    const dir = tempDir('ms-run-store-')
    const store = new FileRunStore(dir, 't', () => {})
    function* failing(): Generator<Uint8Array> {
      yield new Uint8Array(1024)
      throw new Error('the records could not be encoded')
    }
    expect(() => store.write(failing())).toThrow('the records could not be encoded')
    expect(readdirSync(dir)).toEqual([])
  })
})
