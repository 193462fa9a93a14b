// The cache's shell in the worker's main thread: at each memory sample it asks eviction.ts what
// must leave memory and does it (drops, or writes a block to the work dir and serves it from there).
// It owns no decision and no timer: the worker's sampler calls it.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { BlockStore } from '../block-store'
import { jobDir, pathName, shuffleDir } from '../layout'
import { bytesToFree, chooseEvictions } from './eviction'

export type KeeperDeps = {
  blocks: BlockStore
  workDir: string
  spillAtBytes: number
  log: (m: Record<string, unknown>) => void
}

export class CacheKeeper {
  private lastRssEvictionMs = -Infinity
  private collectSoon = false

  constructor(private readonly d: KeeperDeps) {}

  /** `tasksBytes`: what the tasks hold (the budget less the cache's lane). */
  sample(tasksBytes: number, rssBytes: number, pauseAtBytes: number, nowMs: number): void {
    // An evicted block's memory goes back at the main thread's next collection, which a quiet main
    // thread may not have for a long while: one quick collection (its heap is small) per sample.
    if (this.collectSoon) { this.collectSoon = false; Bun.gc(false) }
    const held = this.d.blocks.inMemory()
    if (held.length === 0) return
    const cacheBytes = held.reduce((n, b) => n + b.bytes, 0)
    const free = bytesToFree({ tasksBytes, cacheBytes, spillAtBytes: this.d.spillAtBytes, rssBytes, pauseAtBytes, nowMs, lastRssEvictionMs: this.lastRssEvictionMs })
    if (free.bytes <= 0) return
    const evictions = chooseEvictions(held, free.bytes)
    if (evictions.length === 0) return
    if (free.rss) this.lastRssEvictionMs = nowMs
    let dropped = 0
    for (const e of evictions) {
      if (e.action === 'drop') { this.d.blocks.drop(e.key); dropped++ } else this.spill(e.key)
    }
    this.d.log({ level: 'info', cause: free.rss ? 'cache-evicted-rss' : 'cache-evicted', blocks: evictions.length, dropped, bytes: free.bytes })
    if (dropped > 0) this.collectSoon = true
  }

  private spill(key: string): void {
    const c = this.d.blocks.inMemory().find(b => b.key === key)
    if (c === undefined || c.memory === null) return
    c.spilling = true
    const dir = shuffleDir(this.d.workDir, c.job, c.shuffleId)
    const path = join(dir, `${pathName(c.attempt)}-kept.blk`)
    const bytes = c.memory
    void (async () => {
      try {
        mkdirSync(dir, { recursive: true })
        await Bun.write(path, bytes)
        // Its job ended meanwhile (its folder may be gone already): nothing may stay behind.
        if (!this.d.blocks.movedToFile(key, path)) rmSync(jobDir(this.d.workDir, c.job), { recursive: true, force: true })
        else this.collectSoon = true
      } catch (e) {
        // A full disk: the block stays in memory, and is tried again at a later sample.
        c.spilling = false
        rmSync(path, { force: true })
        this.d.log({ level: 'warn', cause: 'cache-spill-failed', message: (e as Error).message })
      }
    })()
  }
}
