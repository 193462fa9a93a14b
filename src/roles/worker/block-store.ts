// The worker's shuffle outputs: files in the work dir written by task threads, indexed here in the
// main thread, and served to peers by /shuffle_data. Keyed by map attempt, so a re-run's blocks
// never mix with a late attempt's. It does not decide what is still needed: the master does.
// Files are removed elsewhere (the driver asks the file thread): removing scales with the data.
import type { BlockFile } from './thread-protocol'

type Entry = BlockFile & { job: string; attempt: string }

const STREAM_PIECE_BYTES = 1 << 20

export class BlockStore {
  private readonly byJob = new Map<string, Map<string, Entry>>()


  register(job: string, attempt: string, block: BlockFile): void {
    let m = this.byJob.get(job)
    if (m === undefined) this.byJob.set(job, m = new Map())
    m.set(`${block.shuffle_id}\u0000${attempt}`, { ...block, job, attempt })
  }

  /** The byte ranges of one reduce partition across the given map attempts; null names a missing one. */
  locate(job: string, shuffle: string, reduce: number, attempts: readonly string[]): { path: string; start: number; end: number }[] | { missing: string } {
    const m = this.byJob.get(job)
    const out: { path: string; start: number; end: number }[] = []
    for (const a of attempts) {
      const e = m?.get(`${shuffle}\u0000${a}`)
      if (e === undefined) return { missing: a }
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
  stream(ranges: readonly { path: string; start: number; end: number }[]): ReadableStream<Uint8Array> {
    let i = 0
    let at = ranges[0]?.start ?? 0
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        let r = ranges[i]
        if (r !== undefined && at >= r.end) { r = ranges[++i]; at = r?.start ?? 0 }
        if (r === undefined) { controller.close(); return }
        const end = Math.min(r.end, at + STREAM_PIECE_BYTES)
        controller.enqueue(await Bun.file(r.path).slice(at, end).bytes())
        at = end
      },
    })
  }

  /** The job's blocks are no longer served; their files are removed by the file thread. */
  forgetJob(job: string): void { this.byJob.delete(job) }

  jobs(): string[] { return [...this.byJob.keys()] }
}
