// Which cached blocks leave memory, and how much must go: pure decisions with a fake clock.
import { describe, expect, test } from 'bun:test'
import { RSS_EVICTION_GRACE_MS, bytesToFree, chooseEvictions, type CachedBlockView } from '../../../../src/roles/worker/cache/eviction'

const MiB = 1 << 20
const block = (key: string, level: CachedBlockView['level'], mib: number, lastUsedMs: number, spilling?: boolean): CachedBlockView =>
  ({ key, level, bytes: mib * MiB, lastUsedMs, ...(spilling ? { spilling } : {}) })

describe('chooseEvictions', () => {
  test('least recently used first, until enough is freed; memory_and_disk is spilled, memory is dropped', () => {
    const blocks = [block('new', 'memory', 4, 300), block('old', 'memory_and_disk', 4, 100), block('mid', 'memory', 4, 200)]
    expect(chooseEvictions(blocks, 1 * MiB)).toEqual([{ key: 'old', action: 'spill' }])
    expect(chooseEvictions(blocks, 5 * MiB)).toEqual([{ key: 'old', action: 'spill' }, { key: 'mid', action: 'drop' }])
    expect(chooseEvictions(blocks, 100 * MiB).map(e => e.key)).toEqual(['old', 'mid', 'new'])
    expect(chooseEvictions(blocks, 0)).toEqual([])
  })

  test('a read makes a block recent: it goes after the others', () => {
    const blocks = [block('a', 'memory', 1, 100), block('b', 'memory', 1, 200)]
    expect(chooseEvictions(blocks, 1)[0]!.key).toBe('a')
    blocks[0]!.lastUsedMs = 300          // read at 300
    expect(chooseEvictions(blocks, 1)[0]!.key).toBe('b')
  })

  test('blocks already being written out count as freed and are not chosen again; disk blocks never', () => {
    const blocks = [block('w', 'memory_and_disk', 3, 50, true), block('d', 'disk', 9, 10), block('m', 'memory', 2, 100)]
    expect(chooseEvictions(blocks, 3 * MiB)).toEqual([])
    expect(chooseEvictions(blocks, 4 * MiB)).toEqual([{ key: 'm', action: 'drop' }])
  })
})

describe('bytesToFree', () => {
  const base = { tasksBytes: 0, cacheBytes: 0, spillAtBytes: 70 * MiB, rssBytes: 100 * MiB, pauseAtBytes: 200 * MiB, nowMs: 10_000, lastRssEvictionMs: -Infinity }

  test('cached memory and the tasks share the spill threshold: the cache gives way', () => {
    expect(bytesToFree({ ...base, cacheBytes: 60 * MiB })).toEqual({ bytes: 0, rss: false })
    expect(bytesToFree({ ...base, cacheBytes: 60 * MiB, tasksBytes: 30 * MiB })).toEqual({ bytes: 20 * MiB, rss: false })
    // Never more than the cache holds: the tasks spill their own.
    expect(bytesToFree({ ...base, cacheBytes: 5 * MiB, tasksBytes: 90 * MiB })).toEqual({ bytes: 5 * MiB, rss: false })
  })

  test('past the pause mark on the resident size, cached data goes first, once per grace period', () => {
    const high = { ...base, cacheBytes: 50 * MiB, rssBytes: 230 * MiB }
    expect(bytesToFree(high)).toEqual({ bytes: 30 * MiB, rss: true })
    // Just evicted: the resident size has not come down yet; more is not taken on its word.
    expect(bytesToFree({ ...high, lastRssEvictionMs: high.nowMs - RSS_EVICTION_GRACE_MS + 1 })).toEqual({ bytes: 0, rss: false })
    expect(bytesToFree({ ...high, lastRssEvictionMs: high.nowMs - RSS_EVICTION_GRACE_MS })).toEqual({ bytes: 30 * MiB, rss: true })
  })
})
