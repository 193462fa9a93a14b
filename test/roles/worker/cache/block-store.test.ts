// The block store's cached blocks: kept in memory and counted on the budget, served as they are,
// touched when read (LRU), dropped or moved to a file, and given back when their job ends.
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FrameDecoder, encodeFrame } from '../../../../src/engine/codec'
import { UnlimitedBudget } from '../../../../src/engine/spill/budget'
import { BlockStore, blockKey } from '../../../../src/roles/worker/block-store'

const dir = mkdtempSync(join(tmpdir(), 'ms-blocks-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function read(store: BlockStore, job: string, shuffle: string, attempt: string): Promise<unknown[]> {
  const ranges = store.locate(job, shuffle, 0, [attempt])
  if ('missing' in ranges) throw new Error(`missing ${ranges.missing}`)
  const dec = new FrameDecoder()
  const out: unknown[] = []
  const reader = store.stream(ranges).getReader()
  for (let r = await reader.read(); !r.done; r = await reader.read()) for (const b of dec.push(r.value)) out.push(...b)
  return out
}

describe('cached blocks in the block store', () => {
  test('a memory block is served as it is, counted on the budget, touched on each read; dropped, it is missing', async () => {
    let now = 100
    const budget = new UnlimitedBudget()
    const store = new BlockStore(budget, () => now)
    const frames = new Uint8Array([...encodeFrame([1, 'a']), ...encodeFrame([{ b: 2 }])])
    store.register('j', 'a0', { shuffle_id: 'n#cache', segments: [], cache: { level: 'memory', memory: frames } })
    expect(budget.holding).toBe(frames.length)
    expect(store.cachedBytes()).toEqual({ memory: frames.length, disk: 0 })
    now = 250
    expect(await read(store, 'j', 'n#cache', 'a0')).toEqual([1, 'a', { b: 2 }])
    expect(store.inMemory().map(b => b.lastUsedMs)).toEqual([250])
    // A cache block has one partition.
    expect(store.locate('j', 'n#cache', 1, ['a0'])).toEqual({ missing: 'a0' })
    store.drop(blockKey('j', 'n#cache', 'a0'))
    expect(budget.holding).toBe(0)
    expect(store.cachedBytes()).toEqual({ memory: 0, disk: 0 })
    expect(store.locate('j', 'n#cache', 0, ['a0'])).toEqual({ missing: 'a0' })
  })

  test('moved to a file: served from the file, its memory given back; a late move after the job ended is refused', async () => {
    const budget = new UnlimitedBudget()
    const store = new BlockStore(budget)
    const frames = encodeFrame(['x', 'y'])
    store.register('j', 'a1', { shuffle_id: 'n#cache', segments: [], cache: { level: 'memory_and_disk', memory: frames } })
    const path = join(dir, 'a1.blk')
    writeFileSync(path, frames)
    expect(store.movedToFile(blockKey('j', 'n#cache', 'a1'), path)).toBe(true)
    expect(budget.holding).toBe(0)
    expect(store.cachedBytes()).toEqual({ memory: 0, disk: frames.length })
    expect(await read(store, 'j', 'n#cache', 'a1')).toEqual(['x', 'y'])
    store.register('j', 'a2', { shuffle_id: 'n#cache', segments: [], cache: { level: 'memory_and_disk', memory: frames } })
    store.forgetJob('j')
    expect(store.movedToFile(blockKey('j', 'n#cache', 'a2'), path)).toBe(false)
    expect(budget.holding).toBe(0)
    expect(store.cachedBytes()).toEqual({ memory: 0, disk: 0 })
  })

  test('a disk-level block is files from the start; an empty block reads as nothing', async () => {
    const store = new BlockStore(new UnlimitedBudget())
    const frames = encodeFrame([7])
    const path = join(dir, 'd.blk')
    writeFileSync(path, frames)
    store.register('j2', 'b0', { shuffle_id: 'm#cache', segments: [{ path, offsets: [0, frames.length] }], cache: { level: 'disk' } })
    expect(store.cachedBytes()).toEqual({ memory: 0, disk: frames.length })
    expect(store.inMemory()).toEqual([])
    expect(await read(store, 'j2', 'm#cache', 'b0')).toEqual([7])
    store.register('j2', 'b1', { shuffle_id: 'm#cache', segments: [], cache: { level: 'memory', memory: new Uint8Array(0) } })
    expect(await read(store, 'j2', 'm#cache', 'b1')).toEqual([])
  })
})
