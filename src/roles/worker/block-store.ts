// The worker's shuffle outputs and cached blocks, indexed in the main thread and served to peers by
// /shuffle_data. Shuffle outputs are files in the work dir written by task threads. A cached block
// (a cache write's output) is one partition of a cached node, in memory (bytes handed over by the
// task thread, counted in the worker's budget on the cache's own lane) or in files; memory ones
// move to a file or are dropped when the main thread evicts them (cache/eviction.ts decides which).
// Keyed by job and map attempt, so a re-run's blocks never mix with a late attempt's; a cached
// block also has a key of its own (`blockKey`), so that it can outlive its job later. It does not
// decide what is still needed: the master does. Files are removed elsewhere (the driver asks the
// file thread): removing scales with the data.
import type { CacheLevel } from '../../api/jobs'
import type { MemoryBudget } from '../../engine/spill/budget'
import type { BlockFile } from './thread-protocol'

type Entry = BlockFile & { job: string; attempt: string }

/** A cached block's bookkeeping: where it is, how large, when it was last read. */
export type CachedEntry = {
  key: string
  job: string
  shuffleId: string
  attempt: string
  level: CacheLevel
  /** in memory: the encoded frames; null once it is in files only (or dropped) */
  memory: Uint8Array | null
  bytes: number
  lastUsedMs: number
  /** being written to a file by an eviction: not chosen again meanwhile */
  spilling?: boolean
  /** a persisted dataset's block (`job` is the dataset's owner) */
  dataset?: boolean
}

export type Range = { path: string; start: number; end: number } | { bytes: Uint8Array }

const STREAM_PIECE_BYTES = 1 << 20

export const blockKey = (job: string, shuffle: string, attempt: string): string => `${job}\u0000${shuffle}\u0000${attempt}`

export class BlockStore {
  private readonly byJob = new Map<string, Map<string, Entry>>()
  /** cached blocks by blockKey, in memory or in files */
  private readonly cached = new Map<string, CachedEntry>()
  private memoryBytes = 0
  private diskBytes = 0
  /** counts every change to the persisted blocks held (kept, moved to a file, dropped, freed) */
  datasetChanges = 0

  /** `cacheBudget`: the budget lane that cached memory is counted on (never refused). */
  constructor(private readonly cacheBudget?: MemoryBudget, private readonly now: () => number = Date.now) {}

  register(taskJob: string, attempt: string, block: BlockFile): void {
    const job = block.owner ?? taskJob
    let m = this.byJob.get(job)
    if (m === undefined) this.byJob.set(job, m = new Map())
    const { cache, owner: _, ...files } = block
    m.set(`${block.shuffle_id}\u0000${attempt}`, { ...files, job, attempt })
    if (cache === undefined) return
    const key = blockKey(job, block.shuffle_id, attempt)
    const memory = cache.memory ?? null
    const bytes = memory?.length ?? block.segments.reduce((n, s) => n + (s.offsets.at(-1) ?? 0), 0)
    this.forgetCached(key)
    this.cached.set(key, { key, job, shuffleId: block.shuffle_id, attempt, level: cache.level, memory, bytes, lastUsedMs: this.now(), ...(block.owner === undefined ? {} : { dataset: true }) })
    if (block.owner !== undefined) this.datasetChanges++
    if (memory !== null) { this.memoryBytes += bytes; this.cacheBudget?.tryReserve(bytes) } else this.diskBytes += bytes
  }

  /** The ranges of one reduce partition across the given map attempts; `missing` names one not here. */
  locate(job: string, shuffle: string, reduce: number, attempts: readonly string[]): Range[] | { missing: string } {
    const m = this.byJob.get(job)
    const out: Range[] = []
    for (const a of attempts) {
      const e = m?.get(`${shuffle}\u0000${a}`)
      if (e === undefined) return { missing: a }
      const c = this.cached.get(blockKey(job, shuffle, a))
      if (c !== undefined) {
        c.lastUsedMs = this.now()
        if (reduce !== 0) return { missing: a }
        if (c.memory !== null) { if (c.memory.length > 0) out.push({ bytes: c.memory }); continue }
      }
      for (const seg of e.segments) {
        const start = seg.offsets[reduce]
        const end = seg.offsets[reduce + 1]
        if (start === undefined || end === undefined) return { missing: a }
        if (end > start) out.push({ path: seg.path, start, end })
      }
    }
    return out
  }

  /** Streams the ranges one after another, a piece at a time, so that serving a large
   *  partition holds one piece in memory, not the partition. */
  stream(ranges: readonly Range[]): ReadableStream<Uint8Array> {
    let i = 0
    let at = 0
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        for (;;) {
          const r = ranges[i]
          if (r === undefined) { controller.close(); return }
          const start = 'bytes' in r ? 0 : r.start
          const end = 'bytes' in r ? r.bytes.length : r.end
          if (at < start) at = start
          if (at >= end) { i++; at = 0; continue }
          const stop = Math.min(end, at + STREAM_PIECE_BYTES)
          controller.enqueue('bytes' in r ? r.bytes.subarray(at, stop) : await Bun.file(r.path).slice(at, stop).bytes())
          at = stop
          return
        }
      },
    })
  }

  /** Cached blocks held in memory, for the eviction decision. */
  inMemory(): CachedEntry[] { return [...this.cached.values()].filter(c => c.memory !== null) }

  cachedBytes(): { memory: number; disk: number } { return { memory: this.memoryBytes, disk: this.diskBytes } }

  /** A memory block of level memory goes: a reader's fetch then fails as missing, and the master
   *  recomputes only that partition. */
  drop(key: string): void {
    const c = this.cached.get(key)
    if (c === undefined || c.memory === null) return
    this.releaseMemory(c)
    this.byJob.get(c.job)?.delete(`${c.shuffleId}\u0000${c.attempt}`)
    this.cached.delete(key)
    if (c.dataset === true) this.datasetChanges++
  }

  /** A memory block moved to a file (written by the caller): served from there from now on. */
  movedToFile(key: string, path: string): boolean {
    const c = this.cached.get(key)
    const e = c === undefined ? undefined : this.byJob.get(c.job)?.get(`${c.shuffleId}\u0000${c.attempt}`)
    // Its job ended while the file was written: the caller removes the file.
    if (c === undefined || e === undefined || c.memory === null) return false
    e.segments = [{ path, offsets: [0, c.bytes] }]
    this.releaseMemory(c)
    this.diskBytes += c.bytes
    c.spilling = false
    if (c.dataset === true) this.datasetChanges++
    return true
  }

  private releaseMemory(c: CachedEntry): void {
    if (c.memory === null) return
    c.memory = null
    this.memoryBytes -= c.bytes
    this.cacheBudget?.release(c.bytes)
  }

  private forgetCached(key: string): void {
    const c = this.cached.get(key)
    if (c === undefined) return
    if (c.memory !== null) this.releaseMemory(c)
    else this.diskBytes -= c.bytes
    this.cached.delete(key)
    if (c.dataset === true) this.datasetChanges++
  }

  /** The job's blocks are no longer served; their files are removed by the file thread, and the
   *  memory of its cached blocks is given back here. */
  forgetJob(job: string): void {
    this.byJob.delete(job)
    for (const c of [...this.cached.values()]) if (c.job === job) this.forgetCached(c.key)
  }

  jobs(): string[] { return [...this.byJob.keys()] }

  /** The persisted datasets' blocks held here, for the heartbeat: the master marks the ones it
   *  recorded and no longer finds here as lost. */
  datasetBlocks(limit: number): { owner: string; attempt: string; where: 'memory' | 'disk' }[] {
    const out: { owner: string; attempt: string; where: 'memory' | 'disk' }[] = []
    for (const c of this.cached.values()) {
      if (c.dataset !== true) continue
      if (out.length >= limit) break
      out.push({ owner: c.job, attempt: c.attempt, where: c.memory !== null ? 'memory' : 'disk' })
    }
    return out
  }
}
