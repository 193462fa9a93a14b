// The map side's table of count_by_value over words: counts keyed by the word's bytes, in flat
// typed arrays (open addressing, keys packed in one byte arena), so counting a word allocates
// nothing and makes no JS value. Pure.
//
// Keys are ASCII (words.ts), so a key's bytes are its UTF-16 code units: the hash below is
// keys.ts's hashString computed on bytes, and a word goes to the same reduce partition as the
// same word counted as a string anywhere else (a UDF upstream, another stage of a union).

// The constants and finalizer are keys.ts's own: one definition, so the two hashes cannot drift.
import { FNV_OFFSET, FNV_PRIME, fmix32 } from '../keys'

/** keys.ts's hashKey of the string whose code units are these bytes. */
export function hashAsciiBytes(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET
  for (let i = start; i < end; i++) {
    h ^= buf[i]!
    h = Math.imul(h, FNV_PRIME)
  }
  return fmix32(h ^ (end - start))
}

/** Bytes a new key costs in the table, for the memory budget. */
export const entryBytes = (keyBytes: number): number => 40 + keyBytes

export class ByteCountTable {
  private slots: Int32Array
  private mask: number
  private hashes = new Uint32Array(1024)
  private offsets = new Uint32Array(1024)
  private lengths = new Uint32Array(1024)
  private counts = new Float64Array(1024)
  private arena = new Uint8Array(64 * 1024)
  private arenaUsed = 0
  size = 0

  constructor(initialSlots = 4096) {
    this.slots = new Int32Array(initialSlots).fill(-1)
    this.mask = initialSlots - 1
  }

  /** Adds `n` to the count of the key buf[start, end); true when the key is new. */
  add(buf: Uint8Array, start: number, end: number, n: number): boolean {
    const len = end - start
    const h = hashAsciiBytes(buf, start, end)
    const slots = this.slots
    const mask = this.mask
    let i = h & mask
    for (;;) {
      const e = slots[i]!
      if (e < 0) break
      if (this.hashes[e] === h && this.lengths[e] === len && this.sameBytes(e, buf, start, len)) {
        this.counts[e]! += n
        return false
      }
      i = (i + 1) & mask
    }
    const e = this.size++
    if (e === this.hashes.length) this.growEntries()
    if (this.arenaUsed + len > this.arena.length) this.growArena(len)
    this.arena.set(buf.subarray(start, end), this.arenaUsed)
    this.hashes[e] = h
    this.offsets[e] = this.arenaUsed
    this.lengths[e] = len
    this.counts[e] = n
    this.arenaUsed += len
    slots[i] = e
    if (this.size * 2 > slots.length) this.rehash()
    return true
  }

  /** Takes every key out, grouped by reduce partition (see ByteCountDrain); the table is empty after. */
  drain(parts: number): ByteCountDrain {
    const d = new ByteCountDrain(parts, this.size, this.hashes, this.offsets, this.lengths, this.counts, this.arena)
    this.clear()
    return d
  }

  clear(): void {
    this.size = 0
    this.arenaUsed = 0
    this.slots = new Int32Array(4096).fill(-1)
    this.mask = 4095
    this.hashes = new Uint32Array(1024)
    this.offsets = new Uint32Array(1024)
    this.lengths = new Uint32Array(1024)
    this.counts = new Float64Array(1024)
    this.arena = new Uint8Array(64 * 1024)
  }

  private sameBytes(e: number, buf: Uint8Array, start: number, len: number): boolean {
    const a = this.arena
    const o = this.offsets[e]!
    for (let j = 0; j < len; j++) if (a[o + j] !== buf[start + j]) return false
    return true
  }

  private growEntries(): void {
    const n = this.hashes.length * 2
    const h = new Uint32Array(n); h.set(this.hashes); this.hashes = h
    const o = new Uint32Array(n); o.set(this.offsets); this.offsets = o
    const l = new Uint32Array(n); l.set(this.lengths); this.lengths = l
    const c = new Float64Array(n); c.set(this.counts); this.counts = c
  }

  private growArena(need: number): void {
    let n = this.arena.length * 2
    while (n < this.arenaUsed + need) n *= 2
    const a = new Uint8Array(n)
    a.set(this.arena.subarray(0, this.arenaUsed))
    this.arena = a
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(-1)
    const mask = slots.length - 1
    for (let e = 0; e < this.size; e++) {
      let i = this.hashes[e]! & mask
      while (slots[i]! >= 0) i = (i + 1) & mask
      slots[i] = e
    }
    this.slots = slots
    this.mask = mask
  }
}

/**
 * A drained table's keys by reduce partition, each partition's in insertion order. The pairs
 * [string, count] are made a batch at a time, as a writer asks for them: made all at once, the
 * strings and pairs took about twice the table's own memory at the moment it spilled.
 */
export class ByteCountDrain {
  /** entries by partition: partition p's are order[starts[p], starts[p + 1]) */
  private readonly order: Uint32Array
  private readonly starts: Uint32Array

  constructor(parts: number, size: number, private readonly hashes: Uint32Array, private readonly offsets: Uint32Array,
    private readonly lengths: Uint32Array, private readonly counts: Float64Array, private readonly arena: Uint8Array) {
    // A counting sort by partition: two passes, 4 bytes an entry.
    const starts = new Uint32Array(parts + 1)
    for (let e = 0; e < size; e++) { const i = (hashes[e]! % parts) + 1; starts[i] = starts[i]! + 1 }
    for (let p = 0; p < parts; p++) starts[p + 1]! += starts[p]!
    const next = starts.slice(0, parts)
    const order = new Uint32Array(size)
    for (let e = 0; e < size; e++) { const p = hashes[e]! % parts; order[next[p]!] = e; next[p]!++ }
    this.order = order
    this.starts = starts
  }

  /** Partition p's keys as [string, count], at most `batch` a time. */
  *batches(p: number, toString: (buf: Uint8Array, start: number, end: number) => string, batch: number): Generator<[string, number][]> {
    const end = this.starts[p + 1]!
    for (let at = this.starts[p]!; at < end; at += batch) {
      const n = Math.min(batch, end - at)
      const out = new Array<[string, number]>(n)
      for (let i = 0; i < n; i++) {
        const e = this.order[at + i]!
        const o = this.offsets[e]!
        out[i] = [toString(this.arena, o, o + this.lengths[e]!), this.counts[e]!]
      }
      yield out
    }
  }
}
