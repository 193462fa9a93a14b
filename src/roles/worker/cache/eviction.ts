// Which cached blocks leave memory, pure: least recently used first; a memory_and_disk block moves
// to the work dir, a memory block is dropped (its partition is recomputed when read); disk blocks
// are never in memory. The shell (cache/keeper.ts) reads the budget and RSS and does the writes.
import type { CacheLevel } from '../../../api/jobs'

export type CachedBlockView = { key: string; level: CacheLevel; bytes: number; lastUsedMs: number; spilling?: boolean }
export type Eviction = { key: string; action: 'spill' | 'drop' }

/** After an eviction for memory measured on the process, RSS needs time to come down (a collection,
 *  the allocator giving pages back) before it says whether more must go. */
export const RSS_EVICTION_GRACE_MS = 1_000

export type PressureInput = {
  /** accounted bytes of the worker's tasks (the shared budget without the cache's lane) */
  tasksBytes: number
  /** cached bytes in memory, those being written out included */
  cacheBytes: number
  spillAtBytes: number
  rssBytes: number
  /** the resident size at which the worker pauses (memory.ts pauseMarks) */
  pauseAtBytes: number
  nowMs: number
  lastRssEvictionMs: number
}

/**
 * Bytes of cached memory to free now. Cached data shares the budget with the tasks: together they
 * stay under the spill threshold, the cache giving way (tasks spill on their own). Past the pause
 * mark on the measured resident size, cached data goes first, before the worker pauses: as much
 * as the excess, once per grace period. `rss` says which of the two asked.
 */
export function bytesToFree(p: PressureInput): { bytes: number; rss: boolean } {
  const accounted = Math.max(0, p.tasksBytes + p.cacheBytes - p.spillAtBytes)
  const overRss = p.rssBytes - p.pauseAtBytes
  if (overRss > accounted && p.nowMs - p.lastRssEvictionMs >= RSS_EVICTION_GRACE_MS) return { bytes: Math.min(overRss, p.cacheBytes), rss: true }
  return { bytes: Math.min(accounted, p.cacheBytes), rss: false }
}

/** The blocks to evict to free at least `bytes`, least recently used first (ties: larger first,
 *  fewer moves). Blocks already being written out count as freed and are not chosen again. */
export function chooseEvictions(blocks: readonly CachedBlockView[], bytes: number): Eviction[] {
  let need = bytes
  for (const b of blocks) if (b.spilling === true) need -= b.bytes
  if (need <= 0) return []
  const order = blocks.filter(b => b.spilling !== true && b.level !== 'disk')
    .sort((a, b) => a.lastUsedMs - b.lastUsedMs || b.bytes - a.bytes || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  const out: Eviction[] = []
  for (const b of order) {
    if (need <= 0) break
    out.push({ key: b.key, action: b.level === 'memory' ? 'drop' : 'spill' })
    need -= b.bytes
  }
  return out
}
