// A cache write, in a task thread: every record of the cached node that this task computed, kept as
// one block of msgpack frames (compact, and served as it is). Levels memory and memory_and_disk
// keep the block in memory while the worker's budget allows and hand it to the main thread, which
// counts it against --max-mem; past the budget, and always for level disk, the frames go to a file
// in the work dir. It does not evict anything: the main thread does (cache/eviction.ts).
import type { CacheLevel } from '../../../api/jobs'
import type { ShuffleWrite } from '../../../api/tasks'
import { ByteSink, encodeFrame } from '../../../engine/codec'
import type { Consumer } from '../../../engine/pipeline'
import { Reservation, estimateBytes, type MemoryBudget } from '../../../engine/spill/budget'
import type { RunStore } from '../../../engine/spill/runs'
import type { BlockFile } from '../thread-protocol'

const FRAME_RECORDS = 4096
/** Records waiting to be encoded, estimated: a frame is cut before them. */
const PENDING_BYTES = 1 << 20
/** Level disk writes a file piece once this much is encoded. */
const DISK_PIECE_BYTES = 4 << 20

export class CacheWriter implements Consumer {
  records = 0
  private pending: unknown[] = []
  private pendingBytes = 0
  private readonly held = new ByteSink()
  private readonly reservation: Reservation
  private readonly segments: { path: string; offsets: number[] }[] = []
  /** once a piece is on disk, the rest follows it: a block is all in memory or all in files */
  private onDisk: boolean

  constructor(private readonly write: ShuffleWrite, private readonly store: RunStore, budget: MemoryBudget) {
    this.reservation = new Reservation(budget)
    this.onDisk = this.level === 'disk'
  }

  get shuffleId(): string { return this.write.shuffle_id }
  get level(): CacheLevel { return this.write.cache ?? 'memory_and_disk' }
  /** a persist sink's write: the dataset's name and the persist node */
  get persist(): { name: string; nodeId: string; owner?: string } | undefined {
    return this.write.persist === undefined ? undefined : { name: this.write.persist, nodeId: this.write.node.id, ...(this.write.owner === undefined ? {} : { owner: this.write.owner }) }
  }

  push(batch: unknown[]): void {
    this.records += batch.length
    for (let i = 0; i < batch.length; i++) {
      this.pending.push(batch[i])
      // Sampled: the estimate of every record would cost more than the encoding.
      if ((this.pending.length & 63) === 1) this.pendingBytes += 64 * estimateBytes(batch[i])
      if (this.pending.length >= FRAME_RECORDS || this.pendingBytes >= PENDING_BYTES) this.cutFrame()
    }
  }

  private cutFrame(): void {
    if (this.pending.length === 0) return
    const frame = encodeFrame(this.pending)
    this.pending = []
    this.pendingBytes = 0
    this.held.append(frame)
    if (this.onDisk) {
      if (this.held.length >= DISK_PIECE_BYTES) this.writePiece()
    } else if (!this.reservation.grow(frame.length)) {
      // The budget is out: this block goes to the work dir instead of being dropped, so that a
      // reader finds it (a block that never fits would otherwise be recomputed at every read).
      this.onDisk = true
      this.writePiece()
    }
  }

  private writePiece(): void {
    if (this.held.length === 0) return
    const run = this.store.write([this.held.bytes()])
    this.segments.push({ path: run.path, offsets: [0, run.size] })
    this.held.reset()
    this.reservation.reset()
  }

  /** The block: in memory (an exact-size copy, transferred to the main thread), or its files. */
  finish(): BlockFile {
    this.cutFrame()
    if (this.onDisk) {
      this.writePiece()
      return { shuffle_id: this.shuffleId, segments: this.segments, cache: { level: this.level } }
    }
    const memory = this.held.bytes().slice()
    this.held.reset()
    this.reservation.reset()
    return { shuffle_id: this.shuffleId, segments: [], cache: { level: this.level, memory } }
  }
}
